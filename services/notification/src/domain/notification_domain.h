// The notification service's pure domain: what happened (Fact) -> who is told what
// (PlannedNotification), when and on which channel (preferences, quiet hours), the identity
// that makes a notification exist once, webhook retry timing and signing.
//
// No I/O, no clock, no randomness: time and jitter are parameters. Facts carry routing facts
// only (ids, program, team) — never notes, answers, scores or descriptions — so nothing built
// from them can carry PHI.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/common/v1/envelope.pb.h"

namespace clinical::notification {

// What kind of occurrence a rule reacts to.
enum class Trigger {
  kCaseAssigned,            // a case got a (new) case manager
  kAssignmentDeclined,      // a case manager declined an assignment
  kHighRisk,                // an assessment had a high-risk result
  kEscalation,              // a case was escalated
  kClosureAwaitingApproval, // closure requested, approval required
  kAppointmentBooked,
  kAppointmentRescheduled,
  kAppointmentCancelled,
  kReminderDue,             // the scheduling service's reminder became due
  kNoShow,                  // an appointment occurrence became NOSHOW
  kTaskOverdue,             // a timer: a care task passed its due time
  kTaskOverdueEscalation,   // a timer: still overdue N days later
  kNoContact,               // a timer: no contact with the case for N days
  kEmergencyAccessGranted,  // someone broke the glass on a case (EmergencyAccessGranted)
};

// Who a rule addresses, resolved against the fact (and the tenant's team directory).
enum class Audience {
  kCaseManager,
  kPreviousCaseManager,
  kDecliningManager,
  kSupervisor,
  kParticipants,
  kTaskOwner,
  // From the case service's organisation topic, filled in by the engine
  // (Fact::privacy_officer_ids, Fact::team_supervisor_ids).
  kPrivacyOfficers,  // the tenant's privacy officers
  kTeamSupervisors,  // the supervisors of the case's team
};

enum class Priority { kNormal, kUrgent };

enum class Channel { kInApp, kWebhook };

std::string TriggerName(Trigger trigger);
std::optional<Trigger> TriggerFromName(const std::string& name);
std::string AudienceName(Audience audience);
std::optional<Audience> AudienceFromName(const std::string& name);

// The routing facts of one event (or one fired timer). Built from an envelope by
// FactsFromEnvelope or from a timer by the engine.
struct Fact {
  Trigger trigger = Trigger::kCaseAssigned;
  std::string source_id;  // the causing event's id (or the timer's id): part of the identity
  std::string tenant_id;
  std::string program;
  std::string team_id;
  std::string case_id;     // opaque aggregate id
  std::string subject_id;  // appointment / task / escalation / assessment id, if any
  std::string case_manager_id;
  std::string previous_case_manager_id;
  std::string declining_manager_id;
  std::string task_owner_id;
  std::vector<std::string> participant_ids;
  std::vector<std::string> privacy_officer_ids;
  std::vector<std::string> team_supervisor_ids;
  // Ids and times only, for what a fixed title cannot say (emergency access: which grant,
  // who, until when).
  std::string detail;
  bool urgent = false;     // e.g. escalation severity critical
  absl::Time occurred_at = absl::InfinitePast();
  absl::Time due_at = absl::InfinitePast();  // tasks: their due time
};

// One rule: data, not code. Rules are chosen per tenant and program.
struct Rule {
  std::string id;             // stable: part of every notification's identity
  Trigger trigger = Trigger::kCaseAssigned;
  std::string program;        // empty = every program
  std::vector<Audience> audiences;
  std::string type;           // notification type, what recipients opt out of
  Priority priority = Priority::kNormal;
  std::string title;          // fixed text, no PHI (never built from event content)
  bool enabled = true;
};

// A tenant's rule book: rules, the team -> supervisor directory, timer lengths.
struct TenantRules {
  std::vector<Rule> rules;
  std::map<std::string, std::string> supervisor_by_team;
  absl::Duration task_escalation_after = absl::Hours(72);
  absl::Duration no_contact_after = absl::Hours(24 * 14);
};

struct RuleBook {
  TenantRules defaults;
  std::map<std::string, TenantRules> by_tenant;  // replaces defaults for that tenant
  const TenantRules& For(const std::string& tenant_id) const;
};

// The built-in rules (the list). Deployments override them with a JSON file.
RuleBook DefaultRuleBook();

// Parses a rule book from JSON (see docs/notification-service.md). INVALID_ARGUMENT naming
// the offending path on error.
absl::StatusOr<RuleBook> ParseRuleBook(const std::string& json);

// The notification types a tenant's rules produce (what recipients may opt out of).
std::set<std::string> NotificationTypes(const TenantRules& tenant);

struct PlannedNotification {
  std::string notification_id;  // NotificationId(source, rule, recipient)
  std::string rule_id;
  std::string type;
  Priority priority = Priority::kNormal;
  std::string recipient_id;
  std::string tenant_id;
  std::string case_id;
  std::string subject_id;
  std::string title;
  std::string link;             // a path into the product, ids only
  std::string detail;           // Fact::detail: ids and times only
  std::string source_id;
  absl::Time occurred_at = absl::InfinitePast();
};

// Every notification the fact causes: for each matching, enabled rule, each resolved
// recipient once (empty ids dropped; a recipient addressed twice by one rule gets one).
// The actor who caused the event is not notified of their own action (`actor_id`).
std::vector<PlannedNotification> Evaluate(const Fact& fact, const RuleBook& book,
                                          const std::string& actor_id);

// The identity of a notification: a name-based UUID (RFC 9562 v8 layout over SHA-256) of
// (source id, rule id, recipient). Same inputs, same id, in every process and after every
// restart; used as aggregate id and command id, so a replay appends nothing new.
std::string NotificationId(const std::string& source_id, const std::string& rule_id,
                           const std::string& recipient_id);

// Derives a stable id for anything else (timers): same scheme as NotificationId.
std::string DerivedId(const std::vector<std::string>& parts);

// ---- Facts from events ----

// The facts an event of the case or scheduling topic causes (zero or more). Events the
// rules do not react to yield none. Payloads that do not decode: INVALID_ARGUMENT.
absl::StatusOr<std::vector<Fact>> FactsFromEnvelope(const common::v1::EventEnvelope& envelope);

// What the service remembers about a case to route facts that do not carry it (closure,
// tasks, appointments): folded from the case topic in order, per case.
struct CaseRouting {
  std::string program;
  std::string team_id;
  std::string case_manager_id;
  bool open = true;
  // Current owner per task (tasks can be handed over): overdue timers address them.
  std::map<std::string, std::string> task_owner_by_task;
};

// Folds one case-topic envelope into the routing of its case (no-op for other events).
void FoldRouting(const common::v1::EventEnvelope& envelope, CaseRouting& routing);

// Fills the fact's empty routing fields from what is known about its case; a task's timer
// fact gets the task's current owner.
void Enrich(Fact& fact, const CaseRouting& routing);

// What the service remembers about an appointment (from AppointmentBooked): its case and the
// participants who are users (case managers, providers; never the patient or a room).
struct AppointmentRouting {
  std::string case_id;
  std::vector<std::string> participant_ids;
};

// Folds one scheduling-topic envelope into the routing of its appointment.
void FoldAppointment(const common::v1::EventEnvelope& envelope, AppointmentRouting& routing);

// Fills the fact's empty case id and participants from its appointment.
void Enrich(Fact& fact, const AppointmentRouting& routing);

// ---- Durable timers (task overdue, escalation, no contact) ----

struct Timer {
  std::string timer_id;  // DerivedId of kind + subject (+ generation): setting twice = once
  Trigger trigger = Trigger::kTaskOverdue;
  absl::Time fire_at = absl::InfinitePast();
  Fact fact;             // the fact to evaluate when it fires (source_id = timer_id)
};

struct TimerPlan {
  std::vector<Timer> set;
  std::vector<std::string> cancel;  // timer ids
};

// What an event does to timers: a task with a due time sets its overdue and escalation
// timers; a completed or cancelled task cancels them; a contact (note) moves the case's
// no-contact timer; a closed case cancels it. Pure: the engine stores the plan durably.
TimerPlan PlanTimers(const common::v1::EventEnvelope& envelope, const RuleBook& book);

// ---- Preferences and quiet hours ----

struct Preferences {
  std::set<Channel> channels = {Channel::kInApp};
  std::string time_zone = "UTC";  // IANA name
  // Quiet hours in local wall-clock minutes since midnight, [start, end); start > end spans
  // midnight; start == end means none.
  int quiet_start_minute = 0;
  int quiet_end_minute = 0;
  std::set<std::string> opted_out_types;
};

struct DeliveryPlan {
  bool suppressed = false;                 // opted out: nothing is sent or stored
  std::map<Channel, absl::Time> send_at;   // per channel, when to send
};

// Decides per channel when a notification goes out. The in-app inbox always gets it at once
// (silently during quiet hours); other channels wait until quiet hours end in the recipient's
// time zone, unless urgent. Urgent notifications cannot be opted out of: a high-risk result
// must reach someone. An unknown time zone is treated as UTC.
DeliveryPlan PlanDelivery(const PlannedNotification& notification, const Preferences& prefs,
                          absl::Time now);

// True if `at` falls inside the quiet hours; if so, `*ends` is when they end.
bool InQuietHours(const Preferences& prefs, absl::Time at, absl::Time* ends);

// ---- Webhook retries and signing ----

struct BackoffPolicy {
  absl::Duration initial = absl::Seconds(1);
  absl::Duration max = absl::Minutes(5);
  int max_attempts = 6;  // then dead-letter
};

// Delay before attempt `attempt + 1` after `attempt` failed (attempt >= 1): exponential
// (initial * 2^(attempt-1), capped at max) with "equal jitter": half fixed, half scaled by
// `jitter` in [0, 1) from an injected source. Never below half the exponential step.
absl::Duration BackoffDelay(int attempt, const BackoffPolicy& policy, double jitter);

// True when `attempts_made` failed attempts exhaust the policy.
bool ShouldDeadLetter(int attempts_made, const BackoffPolicy& policy);

// The webhook body: ids, type, priority, title and link only (no PHI, no event content).
std::string WebhookBody(const PlannedNotification& notification, int attempt);

// Lower-case hex HMAC-SHA256 of "<timestamp>.<body>" under `secret`. Receivers recompute it
// and reject stale timestamps (replay protection).
std::string WebhookSignature(const std::string& secret, int64_t unix_seconds,
                             const std::string& body);

// Constant-time check of a received signature (hex), plus the timestamp's freshness.
bool VerifyWebhookSignature(const std::string& secret, int64_t unix_seconds,
                            const std::string& body, const std::string& signature_hex,
                            absl::Time now, absl::Duration tolerance);

}  // namespace clinical::notification

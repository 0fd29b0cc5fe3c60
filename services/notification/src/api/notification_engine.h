#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/eventstore/types.h"
#include "clinical/grpcx/caller.h"
#include "clinical/logging/logger.h"
#include "clinical/notification/v1/events.pb.h"
#include "clinical/notification/v1/notification_service.pb.h"
#include "clinical/relations/facts.h"
#include "notification_domain.h"

namespace clinical::notification {

// Appends to the notification topic (the EventStore in production, a fake in unit tests).
using Appender =
    std::function<absl::StatusOr<eventstore::AppendResult>(eventstore::AppendRequest)>;

// A webhook endpoint the deployment configures (URL and signing secret); preferences name
// it by id, so secrets never travel through the API or live in events.
struct WebhookEndpoint {
  std::string url;
  std::string secret;
};

// A recipient's delivery settings beyond the inbox: from SetPreferences (events) if ever
// set, else from the deployment's recipients file.
struct RecipientSettings {
  Preferences preferences;
  std::string webhook_url;  // empty: in-app only
  std::string webhook_secret;
};

// One webhook attempt that is due.
struct DueWebhook {
  PlannedNotification notification;
  std::string webhook_url;
  std::string webhook_secret;
  int attempt = 1;  // the attempt about to be made (in this series)
  int generation = 0;
};

struct EngineOptions {
  // Keyed by RecipientKey(tenant, recipient).
  std::map<std::string, RecipientSettings> recipients;
  // Keyed by RecipientKey(tenant, endpoint id).
  std::map<std::string, WebhookEndpoint> endpoints;
  BackoffPolicy backoff;
  RuleBook rules = DefaultRuleBook();
  // Events older than this (by occurred_at) only update routing: a rule added today does
  // not page people about last year's history when the case topic is re-read.
  absl::Duration max_event_age = absl::Hours(24);
  std::string topic;  // for log positions in answers
  // The tenant's organisation as of now (read-your-writes: the follower of the case
  // service's organisation topic), for the emergency-access rule's privacy officers and team
  // supervisors. UNAVAILABLE retries the event. Empty: nobody is known to tell.
  std::function<absl::StatusOr<relations::OrganisationFacts>(const std::string& tenant_id)> organisation;
};

// Fills an emergency-access fact's privacy officers and team supervisors from the tenant's
// organisation (the supervisors of the grant's team). Other facts are left as they are. Pure.
void EnrichFromOrganisation(Fact& fact, const relations::OrganisationFacts& organisation);

// The notification service's application layer, in memory: the inbox of every recipient
// (rebuilt at start from the notification topic with Replay), the routing facts of cases
// and appointments (folded from their topics), and rule evaluation of every source event.
//
// Exactly once: a notification's id derives from (cause, rule, recipient) and is appended as
// aggregate id and command id with expected version "no stream". Re-reading a source event
// (a restart re-reads the source topics from the start) finds it in memory and appends
// nothing; were memory behind the log, the store answers ABORTED/duplicate, again nothing.
//
// Who may read or change an inbox is decided before the engine is called (the policies in
// notification_service.proto: the recipient themself; Resend also an administrator of the
// tenant), so the engine takes the caller's tenant and the request's recipient as given.
//
// Thread-safe. Status codes: INVALID_ARGUMENT (with field violations), NOT_FOUND,
// ABORTED, UNAVAILABLE (broker).
class NotificationEngine {
 public:
  NotificationEngine(Appender append, EngineOptions options,
                     std::function<absl::Time()> clock, logging::Logger& logger);

  // Applies one event of the notification topic (startup replay).
  absl::Status Replay(const eventstore::LoggedEvent& logged);
  // After the last Replay: decides the webhook queue with the final preferences (a
  // recipient's PreferencesSet may be replayed after their notifications).
  void FinishReplay();

  // Handles one event of the case or scheduling topic: folds routing, stores the timers it
  // sets or cancels (TimerScheduled / TimerCancelled, once per causing event), evaluates the
  // rules, creates the notifications that do not exist yet. UNAVAILABLE: retry the same event.
  absl::Status OnSourceEvent(const common::v1::EventEnvelope& envelope);

  // Durable timers. Pending timers are rebuilt by Replay; none is handed out before
  // SetTimersReady (called once the case topic has been re-read to its end, so a timer
  // cancelled while the service was down is known to be cancelled, and routing is current).
  void SetTimersReady();
  // The earliest pending timer due at `now`, if any; `*next_due` = the earliest not yet due.
  std::optional<Timer> NextDueTimer(absl::Time now, absl::Time* next_due) const;
  // Creates the timer's notifications (identity from the timer's source id, so a repeat
  // creates nothing), then appends TimerFired. A timer cancelled or moved meanwhile: no-op.
  absl::Status FireTimer(const Timer& timer);
  size_t pending_timer_count() const;
  struct TimerStats {
    size_t pending = 0;
    bool armed = false;
    absl::Time earliest_due = absl::InfiniteFuture();
    int64_t fired_here = 0;  // fired by this process
  };
  TimerStats timer_stats() const;

  // Preferences (validated; PreferencesSet events). Same access rule as the inbox.
  absl::StatusOr<v1::GetPreferencesResponse> GetPreferences(
      const grpcx::Caller& caller, const v1::GetPreferencesRequest& request) const;
  absl::StatusOr<v1::SetPreferencesResponse> SetPreferences(
      const grpcx::Caller& caller, const v1::SetPreferencesRequest& request);

  absl::StatusOr<v1::ListInboxResponse> ListInbox(const grpcx::Caller& caller,
                                                  const v1::ListInboxRequest& request) const;
  absl::StatusOr<int> UnreadCount(const grpcx::Caller& caller,
                                  const v1::GetUnreadCountRequest& request) const;
  absl::StatusOr<v1::ResendResponse> Resend(const grpcx::Caller& caller,
                                            const v1::ResendRequest& request);
  absl::StatusOr<v1::MarkReadResponse> MarkRead(const grpcx::Caller& caller,
                                                const v1::MarkReadRequest& request);

  // For subscriptions: checks the request (the recipient is required).
  absl::Status CheckSubscribe(const grpcx::Caller& caller,
                              const v1::SubscribeInboxRequest& request) const;
  // The recipient's notifications created after position `*cursor` (an index into their
  // inbox in creation order), waiting until `deadline` for one; advances `*cursor`.
  // `*cursor` = 0 with include_unread returns the unread ones first.
  std::vector<v1::Notification> WaitForNew(const std::string& tenant_id,
                                           const std::string& recipient_id, size_t* cursor,
                                           bool unread_only, absl::Time deadline);
  // Current end of the recipient's inbox (a cursor that skips everything so far).
  size_t InboxEnd(const std::string& tenant_id, const std::string& recipient_id) const;
  // Webhook delivery. The queue is derived from the log (a created notification for a
  // webhook recipient with neither NotificationDelivered nor NotificationDeadLettered is
  // pending), so a restart resumes it. NextDueWebhook returns the earliest due one;
  // RecordWebhookAttempt appends the attempt's outcome (delivered, failed with the next
  // attempt time from the backoff policy and `jitter`, or dead-lettered).
  std::optional<DueWebhook> NextDueWebhook(absl::Time now, absl::Time* next_due) const;
  absl::Status RecordWebhookAttempt(const DueWebhook& due, bool delivered,
                                    const std::string& reason, double jitter);
  static std::string RecipientKey(const std::string& tenant_id, const std::string& recipient_id);

  // Wakes every waiter for shutdown; WaitForNew returns at once from then on.
  void Stop();
  bool stopped() const;

  size_t notification_count() const;
  int64_t created_count() const;

 private:
  static std::string InboxKey(const std::string& tenant_id, const std::string& recipient_id);
  void ApplyLocked(const common::v1::EventEnvelope& envelope, int64_t version)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // When the first webhook attempt of `n` is due (quiet hours), or none (no webhook, opted out).
  std::optional<absl::Time> FirstWebhookAttemptLocked(const v1::Notification& n) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  std::optional<RecipientSettings> SettingsLocked(const std::string& tenant_id,
                                                  const std::string& recipient_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Appends NotificationCreated for `n` (no stream; ABORTED = exists already, not an error).
  absl::Status AppendCreated(const PlannedNotification& n, const common::v1::EventEnvelope& cause,
                             absl::Time now);
  absl::Status StoreTimerPlan(const common::v1::EventEnvelope& envelope, absl::Time now);
  // Appends one service-authored event to `aggregate_id` and applies it.
  absl::StatusOr<eventstore::AppendResult> AppendAndApply(const std::string& aggregate_id,
                                                          const std::string& command_id,
                                                          common::v1::EventEnvelope event);

  const Appender append_;
  const EngineOptions options_;
  const std::function<absl::Time()> clock_;
  logging::Logger& logger_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, v1::Notification> notifications_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::vector<std::string>> inbox_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, CaseRouting> cases_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, AppointmentRouting> appointments_ ABSL_GUARDED_BY(mutex_);
  struct PendingWebhook {
    int attempts_made = 0;
    absl::Time not_before;
    int generation = 0;  // resends so far: part of each attempt's command id
  };
  std::map<std::string, PendingWebhook> pending_webhooks_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, int> resends_done_ ABSL_GUARDED_BY(mutex_);  // id -> generation
  struct TimerState {
    Timer timer;
    bool pending = false;
    std::set<std::string> causes;  // source events already stored (re-reads are skipped)
  };
  std::map<std::string, TimerState> timers_ ABSL_GUARDED_BY(mutex_);
  // Pending timers ordered by due time (the min-heap the timer worker reads).
  std::set<std::pair<absl::Time, std::string>> due_ ABSL_GUARDED_BY(mutex_);
  bool timers_ready_ ABSL_GUARDED_BY(mutex_) = false;
  bool replaying_ ABSL_GUARDED_BY(mutex_) = false;
  int64_t timers_fired_ ABSL_GUARDED_BY(mutex_) = 0;
  struct StoredPreferences {
    v1::RecipientPreferences preferences;
    int64_t version = 0;
  };
  std::map<std::string, StoredPreferences> preferences_ ABSL_GUARDED_BY(mutex_);
  int64_t created_ ABSL_GUARDED_BY(mutex_) = 0;
  bool stopped_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace clinical::notification

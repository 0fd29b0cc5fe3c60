// Unit tests of the pure notification domain: facts from events, rule evaluation, identity,
// timers, quiet hours across time zones, backoff and webhook signing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "clinical/case/v1/events.pb.h"
#include "clinical/scheduling/v1/events.pb.h"
#include "notification_domain.h"

namespace clinical::notification {
namespace {

namespace cv1 = clinical::case_::v1;
namespace sv1 = clinical::scheduling::v1;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

template <typename T>
common::v1::EventEnvelope Envelope(const T& payload, const std::string& event_id,
                                   const std::string& aggregate_id,
                                   const std::string& tenant = "t1") {
  common::v1::EventEnvelope envelope;
  envelope.set_event_id(event_id);
  envelope.set_aggregate_id(aggregate_id);
  envelope.set_tenant_id(tenant);
  envelope.mutable_occurred_at()->set_seconds(1'700'000'000);
  envelope.mutable_payload()->PackFrom(payload);
  return envelope;
}

RuleBook BookWithSupervisor() {
  RuleBook book = DefaultRuleBook();
  book.defaults.supervisor_by_team["team-a"] = "sup-a";
  return book;
}

std::vector<std::string> Recipients(const std::vector<PlannedNotification>& planned) {
  std::vector<std::string> out;
  for (const auto& n : planned) out.push_back(n.recipient_id);
  return out;
}

Fact SingleFact(const common::v1::EventEnvelope& envelope) {
  auto facts = FactsFromEnvelope(envelope);
  EXPECT_TRUE(facts.ok());
  EXPECT_EQ(facts->size(), 1u);
  return facts->empty() ? Fact{} : facts->front();
}

TEST(NotificationRulesTest, ReassignmentNotifiesNewAndPreviousManager) {
  cv1::CaseAssigned assigned;
  assigned.set_case_manager_id("cm-new");
  assigned.set_previous_case_manager_id("cm-old");
  assigned.set_team_id("team-a");
  Fact fact = SingleFact(Envelope(assigned, "ev-1", "case-1"));
  auto planned = Evaluate(fact, BookWithSupervisor(), "dispatcher");
  ASSERT_EQ(planned.size(), 2u);
  EXPECT_EQ(planned[0].recipient_id, "cm-new");
  EXPECT_EQ(planned[0].rule_id, "assignment.new");
  EXPECT_EQ(planned[0].link, "/cases/case-1");
  EXPECT_EQ(planned[1].recipient_id, "cm-old");
  EXPECT_EQ(planned[1].rule_id, "assignment.previous");
}

TEST(NotificationRulesTest, FirstAssignmentNotifiesOnlyTheNewManager) {
  cv1::CaseAssigned assigned;
  assigned.set_case_manager_id("cm-new");
  auto planned = Evaluate(SingleFact(Envelope(assigned, "ev-1", "case-1")),
                          BookWithSupervisor(), "dispatcher");
  EXPECT_THAT(Recipients(planned), ElementsAre("cm-new"));
}

TEST(NotificationRulesTest, ActorIsNotNotifiedOfTheirOwnAction) {
  cv1::CaseAssigned assigned;
  assigned.set_case_manager_id("cm-self");
  auto planned = Evaluate(SingleFact(Envelope(assigned, "ev-1", "case-1")),
                          BookWithSupervisor(), "cm-self");
  EXPECT_TRUE(planned.empty());
}

TEST(NotificationRulesTest, DeclineGoesToTheTeamSupervisorFromRouting) {
  cv1::AssignmentDeclined declined;
  declined.set_case_manager_id("cm-1");
  Fact fact = SingleFact(Envelope(declined, "ev-2", "case-1"));
  CaseRouting routing;
  routing.team_id = "team-a";
  routing.program = "p";
  Enrich(fact, routing);
  auto planned = Evaluate(fact, BookWithSupervisor(), "cm-1");
  EXPECT_THAT(Recipients(planned), ElementsAre("sup-a"));
}

TEST(NotificationRulesTest, HighRiskIsUrgentToManagerAndSupervisor) {
  cv1::HighRiskIdentified risk;
  risk.set_case_manager_id("cm-1");
  risk.set_team_id("team-a");
  risk.set_assessment_id("as-1");
  auto planned = Evaluate(SingleFact(Envelope(risk, "ev-3", "case-1")), BookWithSupervisor(),
                          "clinician");
  EXPECT_THAT(Recipients(planned), ElementsAre("cm-1", "sup-a"));
  for (const auto& n : planned) EXPECT_EQ(n.priority, Priority::kUrgent);
}

TEST(NotificationRulesTest, EmergencyAccessIsUrgentToPrivacyOfficersAndTeamSupervisorsWithoutTheReason) {
  cv1::EmergencyAccessGranted granted;
  cv1::EmergencyAccessGrant* grant = granted.mutable_grant();
  grant->set_grant_id("emergency-1");
  grant->set_user_id("cm-x");
  grant->set_role(common::v1::ROLE_CASE_MANAGER);
  grant->set_reason("patient collapsed at home");  // free text: never in a notification
  grant->mutable_expires_at()->set_seconds(1'700'003'600);
  grant->set_team_id("team-a");
  Fact fact = SingleFact(Envelope(granted, "ev-g", "case-1"));
  EXPECT_EQ(fact.trigger, Trigger::kEmergencyAccessGranted);
  EXPECT_EQ(fact.team_id, "team-a");
  EXPECT_EQ(fact.detail, "grant emergency-1 to cm-x (ROLE_CASE_MANAGER) until 2023-11-14T23:13:20Z");
  // Filled in by the engine from the organisation; a privacy officer who also supervises
  // the team is told once, and whoever broke the glass is not told of their own act.
  fact.privacy_officer_ids = {"po-1", "po-2"};
  fact.team_supervisor_ids = {"sup-a", "po-1", "cm-x"};
  auto planned = Evaluate(fact, DefaultRuleBook(), "cm-x");
  EXPECT_THAT(Recipients(planned), ElementsAre("po-1", "po-2", "sup-a"));
  for (const PlannedNotification& n : planned) {
    EXPECT_EQ(n.priority, Priority::kUrgent);
    EXPECT_EQ(n.rule_id, "emergency.access");
    EXPECT_EQ(n.subject_id, "emergency-1");
    EXPECT_EQ(n.case_id, "case-1");
    EXPECT_EQ(n.detail, fact.detail);
    EXPECT_EQ(n.title.find("collapsed"), std::string::npos);
    EXPECT_EQ(WebhookBody(n, 1).find("collapsed"), std::string::npos);
  }
  // Urgent: not held by quiet hours, not suppressed by an opt-out.
  Preferences quiet;
  quiet.channels = {Channel::kInApp, Channel::kWebhook};
  quiet.quiet_start_minute = 0;
  quiet.quiet_end_minute = 1439;
  quiet.opted_out_types = {"emergency_access"};
  const absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  DeliveryPlan delivery = PlanDelivery(planned.front(), quiet, now);
  EXPECT_FALSE(delivery.suppressed);
  EXPECT_EQ(delivery.send_at[Channel::kWebhook], now);
  // Nobody known to tell (no organisation yet): nothing planned.
  fact.privacy_officer_ids.clear();
  fact.team_supervisor_ids.clear();
  EXPECT_TRUE(Evaluate(fact, DefaultRuleBook(), "cm-x").empty());
}

TEST(NotificationRulesTest, SupervisorWhoIsAlsoManagerGetsOneNotificationPerRule) {
  cv1::HighRiskIdentified risk;
  risk.set_case_manager_id("sup-a");
  risk.set_team_id("team-a");
  auto planned = Evaluate(SingleFact(Envelope(risk, "ev-3", "case-1")), BookWithSupervisor(),
                          "clinician");
  EXPECT_THAT(Recipients(planned), ElementsAre("sup-a"));
}

TEST(NotificationRulesTest, UrgentEscalationIsUrgentModerateIsNot) {
  cv1::CaseEscalated escalated;
  escalated.set_case_manager_id("cm-1");
  escalated.set_severity(cv1::ESCALATION_SEVERITY_URGENT);
  auto urgent = Evaluate(SingleFact(Envelope(escalated, "ev-4", "case-1")),
                         BookWithSupervisor(), "x");
  ASSERT_EQ(urgent.size(), 1u);  // team unknown: no supervisor resolves
  EXPECT_EQ(urgent[0].priority, Priority::kUrgent);
  escalated.set_severity(cv1::ESCALATION_SEVERITY_MODERATE);
  auto moderate = Evaluate(SingleFact(Envelope(escalated, "ev-5", "case-1")),
                           BookWithSupervisor(), "x");
  ASSERT_EQ(moderate.size(), 1u);
  EXPECT_EQ(moderate[0].priority, Priority::kNormal);
}

TEST(NotificationRulesTest, ClosureWithoutApprovalNotifiesNobody) {
  cv1::ClosureRequested closure;
  closure.set_requires_approval(false);
  auto facts = FactsFromEnvelope(Envelope(closure, "ev-6", "case-1"));
  ASSERT_TRUE(facts.ok());
  EXPECT_TRUE(facts->empty());
  closure.set_requires_approval(true);
  Fact fact = SingleFact(Envelope(closure, "ev-7", "case-1"));
  fact.team_id = "team-a";
  EXPECT_THAT(Recipients(Evaluate(fact, BookWithSupervisor(), "cm-1")), ElementsAre("sup-a"));
}

TEST(NotificationRulesTest, AppointmentEventsReachUserParticipantsOnly) {
  sv1::AppointmentBooked booked;
  booked.set_case_id("case-1");
  auto* p = booked.add_participants();
  p->set_kind(sv1::PARTICIPANT_KIND_PATIENT);
  p = booked.add_participants();
  p->set_kind(sv1::PARTICIPANT_KIND_CASE_MANAGER);
  p->set_participant_id("cm-1");
  p = booked.add_participants();
  p->set_kind(sv1::PARTICIPANT_KIND_ROOM);
  p->set_participant_id("room-9");
  p = booked.add_participants();
  p->set_kind(sv1::PARTICIPANT_KIND_PROVIDER);
  p->set_participant_id("dr-2");
  const auto booked_env = Envelope(booked, "ev-8", "appt-1");
  auto planned = Evaluate(SingleFact(booked_env), BookWithSupervisor(), "scheduler");
  EXPECT_THAT(Recipients(planned), ElementsAre("cm-1", "dr-2"));
  EXPECT_EQ(planned[0].link, "/appointments/appt-1");

  // Later events of the appointment carry no participants: the fold supplies them.
  AppointmentRouting routing;
  FoldAppointment(booked_env, routing);
  sv1::ReminderDue reminder;
  Fact fact = SingleFact(Envelope(reminder, "ev-9", "appt-1"));
  Enrich(fact, routing);
  EXPECT_EQ(fact.case_id, "case-1");
  EXPECT_THAT(Recipients(Evaluate(fact, BookWithSupervisor(), "")), ElementsAre("cm-1", "dr-2"));
}

TEST(NotificationRulesTest, NoShowNotifiesTheCaseManager) {
  sv1::AppointmentStatusChanged changed;
  changed.set_to(sv1::APPOINTMENT_STATUS_FULFILLED);
  auto none = FactsFromEnvelope(Envelope(changed, "ev-10", "appt-1"));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  changed.set_to(sv1::APPOINTMENT_STATUS_NOSHOW);
  Fact fact = SingleFact(Envelope(changed, "ev-11", "appt-1"));
  CaseRouting routing;
  routing.case_manager_id = "cm-1";
  Enrich(fact, routing);
  EXPECT_THAT(Recipients(Evaluate(fact, BookWithSupervisor(), "")), ElementsAre("cm-1"));
}

TEST(NotificationRulesTest, ProgramScopedRuleAndPerTenantBook) {
  auto book = ParseRuleBook(R"json({
    "defaults": {"rules": [
      {"id": "a", "trigger": "case_assigned", "audiences": ["case_manager"],
       "type": "assignment", "title": "Assigned"}]},
    "tenants": {"t2": {"supervisors": {"*": "sup-any"}, "rules": [
      {"id": "b", "trigger": "case_assigned", "audiences": ["case_manager", "supervisor"],
       "type": "assignment", "title": "Assigned (BH)", "program": "behavioral-health"}]}}
  })json");
  ASSERT_TRUE(book.ok()) << book.status();
  cv1::CaseAssigned assigned;
  assigned.set_case_manager_id("cm-1");
  Fact t1 = SingleFact(Envelope(assigned, "ev-1", "case-1", "t1"));
  EXPECT_THAT(Recipients(Evaluate(t1, *book, "")), ElementsAre("cm-1"));
  Fact t2 = SingleFact(Envelope(assigned, "ev-1", "case-1", "t2"));
  t2.program = "housing";
  EXPECT_TRUE(Evaluate(t2, *book, "").empty());
  t2.program = "behavioral-health";
  EXPECT_THAT(Recipients(Evaluate(t2, *book, "")), ElementsAre("cm-1", "sup-any"));
}

TEST(NotificationRulesTest, RuleBookErrorsNameThePath) {
  auto bad = ParseRuleBook(R"json({"defaults": {"rules": [
      {"id": "a", "trigger": "nope", "audiences": ["case_manager"], "type": "x", "title": "y"}]}})json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("rules[0].trigger"));
  EXPECT_FALSE(ParseRuleBook("not json").ok());
  EXPECT_FALSE(ParseRuleBook(R"json({"defaults": {"rules": [
      {"id": "a", "trigger": "case_assigned", "audiences": [], "type": "x", "title": "y"}]}})json")
                   .ok());
}

// Issue #9's list, rule by rule: every trigger has a built-in rule (data) and reaches the
// audience the issue names, given a fact with every routing field filled.
TEST(NotificationRulesTest, EveryRuleOfTheIssueExistsAsDataWithItsAudience) {
  using T = Trigger;
  const std::vector<std::pair<T, std::vector<std::string>>> expected = {
      {T::kCaseAssigned, {"cm", "cm-prev"}},          // new and previous manager
      {T::kAssignmentDeclined, {"sup-a"}},            // supervisor
      {T::kHighRisk, {"cm", "sup-a"}},                // manager and supervisor
      {T::kEscalation, {"cm", "sup-a"}},              // manager and supervisor
      {T::kClosureAwaitingApproval, {"sup-a"}},       // supervisor
      {T::kAppointmentBooked, {"p-1", "p-2"}},        // participants
      {T::kAppointmentRescheduled, {"p-1", "p-2"}},
      {T::kAppointmentCancelled, {"p-1", "p-2"}},
      {T::kReminderDue, {"p-1", "p-2"}},              // reminder-due events
      {T::kNoShow, {"cm"}},                           // manager
      {T::kTaskOverdue, {"owner"}},                   // owner
      {T::kTaskOverdueEscalation, {"sup-a"}},         // escalation to the supervisor
      {T::kNoContact, {"cm"}},                        // no contact for N days
  };
  std::set<std::string> covered;
  for (const auto& [trigger, recipients] : expected) {
    Fact fact;
    fact.trigger = trigger;
    fact.source_id = "ev-" + TriggerName(trigger);
    fact.tenant_id = "t1";
    fact.team_id = "team-a";
    fact.case_id = "case-1";
    fact.subject_id = "subject-1";
    fact.case_manager_id = "cm";
    fact.previous_case_manager_id = "cm-prev";
    fact.declining_manager_id = "cm-decl";
    fact.task_owner_id = "owner";
    fact.participant_ids = {"p-1", "p-2"};
    auto planned = Evaluate(fact, BookWithSupervisor(), "");
    EXPECT_THAT(Recipients(planned), ::testing::UnorderedElementsAreArray(recipients))
        << TriggerName(trigger);
    for (const auto& n : planned) {
      EXPECT_FALSE(n.title.empty());
      EXPECT_FALSE(n.type.empty());
    }
    covered.insert(TriggerName(trigger));
  }
  for (int t = 0; t <= static_cast<int>(T::kNoContact); ++t) {
    EXPECT_EQ(covered.count(TriggerName(static_cast<T>(t))), 1u) << t;
  }
  // High risk is urgent whatever the event says; the issue's "urgent ones bypass".
  Fact risk;
  risk.trigger = T::kHighRisk;
  risk.case_manager_id = "cm";
  EXPECT_EQ(Evaluate(risk, BookWithSupervisor(), "")[0].priority, Priority::kUrgent);
}

TEST(NotificationRulesTest, TimerLengthsInHoursOrSecondsNotBoth) {
  const std::string rules =
      R"("rules": [{"id": "a", "trigger": "no_contact", "audiences": ["case_manager"],
                    "type": "no_contact", "title": "t"}])";
  auto hours = ParseRuleBook(R"({"defaults": {"no_contact_after_hours": 48, )" + rules + "}}");
  ASSERT_TRUE(hours.ok()) << hours.status();
  EXPECT_EQ(hours->defaults.no_contact_after, absl::Hours(48));
  auto seconds = ParseRuleBook(
      R"({"defaults": {"task_escalation_after_seconds": 5, "no_contact_after_seconds": 7, )" +
      rules + "}}");
  ASSERT_TRUE(seconds.ok()) << seconds.status();
  EXPECT_EQ(seconds->defaults.task_escalation_after, absl::Seconds(5));
  EXPECT_EQ(seconds->defaults.no_contact_after, absl::Seconds(7));
  auto both = ParseRuleBook(
      R"({"defaults": {"no_contact_after_hours": 1, "no_contact_after_seconds": 7, )" + rules +
      "}}");
  ASSERT_FALSE(both.ok());
  EXPECT_THAT(std::string(both.status().message()),
              ::testing::HasSubstr("$.defaults.no_contact_after_seconds"));
  auto zero = ParseRuleBook(R"({"defaults": {"task_escalation_after_seconds": 0, )" + rules +
                            "}}");
  EXPECT_FALSE(zero.ok());
  EXPECT_EQ(NotificationTypes(seconds->defaults), std::set<std::string>{"no_contact"});
}

TEST(NotificationIdentityTest, SameCauseRuleAndRecipientGiveTheSameId) {
  const std::string id = NotificationId("ev-1", "assignment.new", "cm-1");
  EXPECT_EQ(id, NotificationId("ev-1", "assignment.new", "cm-1"));
  EXPECT_EQ(id.size(), 36u);
  EXPECT_EQ(id[14], '8');  // version 8
  EXPECT_NE(id, NotificationId("ev-2", "assignment.new", "cm-1"));
  EXPECT_NE(id, NotificationId("ev-1", "assignment.previous", "cm-1"));
  EXPECT_NE(id, NotificationId("ev-1", "assignment.new", "cm-2"));
  // Concatenation ambiguity does not collide.
  EXPECT_NE(NotificationId("ab", "c", "d"), NotificationId("a", "bc", "d"));
}

TEST(NotificationIdentityTest, ReEvaluatingAReplayedEventPlansTheSameIds) {
  cv1::CaseAssigned assigned;
  assigned.set_case_manager_id("cm-new");
  assigned.set_previous_case_manager_id("cm-old");
  const auto env = Envelope(assigned, "ev-1", "case-1");
  auto first = Evaluate(SingleFact(env), BookWithSupervisor(), "");
  auto again = Evaluate(SingleFact(env), BookWithSupervisor(), "");
  ASSERT_EQ(first.size(), again.size());
  std::set<std::string> ids;
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].notification_id, again[i].notification_id);
    ids.insert(first[i].notification_id);
  }
  EXPECT_EQ(ids.size(), first.size());
}

TEST(NotificationTimersTest, TaskWithDueTimeSetsOverdueAndEscalationTimers) {
  cv1::CareTaskAdded task;
  task.set_task_id("task-1");
  task.set_owner_id("cm-1");
  task.mutable_due_at()->set_seconds(1'700'100'000);
  RuleBook book = BookWithSupervisor();
  book.defaults.task_escalation_after = absl::Hours(48);
  TimerPlan plan = PlanTimers(Envelope(task, "ev-1", "case-1"), book);
  ASSERT_EQ(plan.set.size(), 2u);
  EXPECT_EQ(plan.set[0].trigger, Trigger::kTaskOverdue);
  EXPECT_EQ(plan.set[0].fire_at, absl::FromUnixSeconds(1'700'100'000));
  EXPECT_EQ(plan.set[1].trigger, Trigger::kTaskOverdueEscalation);
  EXPECT_EQ(plan.set[1].fire_at, absl::FromUnixSeconds(1'700'100'000) + absl::Hours(48));
  EXPECT_NE(plan.set[0].timer_id, plan.set[1].timer_id);
  // The same event planned again (a replay) yields the same timer ids: stored once.
  EXPECT_EQ(PlanTimers(Envelope(task, "ev-1", "case-1"), book).set[0].timer_id,
            plan.set[0].timer_id);
  // When fired: the owner, then the supervisor.
  EXPECT_THAT(Recipients(Evaluate(plan.set[0].fact, book, "")), ElementsAre("cm-1"));
  Fact escalation = plan.set[1].fact;
  escalation.team_id = "team-a";
  EXPECT_THAT(Recipients(Evaluate(escalation, book, "")), ElementsAre("sup-a"));

  cv1::CareTaskStatusChanged done;
  done.set_task_id("task-1");
  done.set_to(cv1::TASK_STATUS_COMPLETED);
  TimerPlan cancel = PlanTimers(Envelope(done, "ev-2", "case-1"), book);
  EXPECT_THAT(cancel.cancel, UnorderedElementsAre(plan.set[0].timer_id, plan.set[1].timer_id));
  done.set_to(cv1::TASK_STATUS_IN_PROGRESS);
  EXPECT_TRUE(PlanTimers(Envelope(done, "ev-3", "case-1"), book).cancel.empty());
}

TEST(NotificationTimersTest, EachContactMovesTheNoContactTimerAndStartsANewPeriod) {
  RuleBook book = BookWithSupervisor();
  book.defaults.no_contact_after = absl::Hours(24 * 7);
  cv1::NoteAdded note;
  note.set_kind(cv1::NOTE_KIND_CONTACT);
  note.mutable_occurred_at()->set_seconds(1'700'000'000);
  TimerPlan first = PlanTimers(Envelope(note, "ev-1", "case-1"), book);
  ASSERT_EQ(first.set.size(), 1u);
  EXPECT_EQ(first.set[0].fire_at, absl::FromUnixSeconds(1'700'000'000) + absl::Hours(24 * 7));
  TimerPlan second = PlanTimers(Envelope(note, "ev-2", "case-1"), book);
  ASSERT_EQ(second.set.size(), 1u);
  EXPECT_EQ(first.set[0].timer_id, second.set[0].timer_id);      // replaces
  EXPECT_NE(first.set[0].fact.source_id, second.set[0].fact.source_id);  // new identity
  note.set_kind(cv1::NOTE_KIND_PROGRESS);
  EXPECT_TRUE(PlanTimers(Envelope(note, "ev-3", "case-1"), book).set.empty());
  cv1::CaseClosed closed;
  EXPECT_THAT(PlanTimers(Envelope(closed, "ev-4", "case-1"), book).cancel,
              ElementsAre(first.set[0].timer_id));
}

PlannedNotification Normal(const std::string& type = "assignment") {
  PlannedNotification n;
  n.type = type;
  n.priority = Priority::kNormal;
  return n;
}

TEST(QuietHoursTest, WindowAcrossMidnightInTheRecipientsZone) {
  Preferences prefs;
  prefs.time_zone = "America/New_York";
  prefs.quiet_start_minute = 22 * 60;
  prefs.quiet_end_minute = 7 * 60;
  absl::TimeZone ny;
  ASSERT_TRUE(absl::LoadTimeZone("America/New_York", &ny));
  absl::Time ends;
  // 23:30 local (04:30 UTC next day): quiet until 07:00 local next day.
  const absl::Time late = absl::FromCivil(absl::CivilMinute(2026, 3, 2, 23, 30), ny);
  ASSERT_TRUE(InQuietHours(prefs, late, &ends));
  EXPECT_EQ(ends, absl::FromCivil(absl::CivilMinute(2026, 3, 3, 7, 0), ny));
  // 05:00 local: quiet until 07:00 the same day.
  const absl::Time early = absl::FromCivil(absl::CivilMinute(2026, 3, 3, 5, 0), ny);
  ASSERT_TRUE(InQuietHours(prefs, early, &ends));
  EXPECT_EQ(ends, absl::FromCivil(absl::CivilMinute(2026, 3, 3, 7, 0), ny));
  // 12:00 local is not quiet, although it is 17:00 UTC.
  EXPECT_FALSE(InQuietHours(prefs, absl::FromCivil(absl::CivilMinute(2026, 3, 3, 12, 0), ny),
                            nullptr));
  // The same instant is quiet for a recipient in Tokyo (02:00 local).
  prefs.time_zone = "Asia/Tokyo";
  EXPECT_TRUE(InQuietHours(prefs, absl::FromCivil(absl::CivilMinute(2026, 3, 3, 12, 0), ny),
                           nullptr));
}

TEST(QuietHoursTest, EndAcrossDaylightSavingChangeIsLocalWallTime) {
  Preferences prefs;
  prefs.time_zone = "Europe/Berlin";
  prefs.quiet_start_minute = 22 * 60;
  prefs.quiet_end_minute = 7 * 60;
  absl::TimeZone berlin;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Berlin", &berlin));
  // Night of 2026-03-28/29: clocks go 02:00 -> 03:00. 23:00 CET = 22:00 UTC; 07:00 CEST =
  // 05:00 UTC: the quiet period is 7 hours long, not 8.
  const absl::Time start = absl::FromCivil(absl::CivilMinute(2026, 3, 28, 23, 0), berlin);
  absl::Time ends;
  ASSERT_TRUE(InQuietHours(prefs, start, &ends));
  EXPECT_EQ(ends - start, absl::Hours(7));
  EXPECT_EQ(ends, absl::FromCivil(absl::CivilSecond(2026, 3, 29, 5, 0, 0), absl::UTCTimeZone()));
}

TEST(QuietHoursTest, WebhookWaitsUrgentBypassesInboxIsImmediate) {
  Preferences prefs;
  prefs.channels = {Channel::kInApp, Channel::kWebhook};
  prefs.time_zone = "UTC";
  prefs.quiet_start_minute = 20 * 60;
  prefs.quiet_end_minute = 8 * 60;
  const absl::Time now = absl::FromCivil(absl::CivilMinute(2026, 5, 1, 21, 0),
                                         absl::UTCTimeZone());
  const absl::Time morning = absl::FromCivil(absl::CivilMinute(2026, 5, 2, 8, 0),
                                             absl::UTCTimeZone());
  DeliveryPlan normal = PlanDelivery(Normal(), prefs, now);
  EXPECT_FALSE(normal.suppressed);
  EXPECT_EQ(normal.send_at.at(Channel::kInApp), now);
  EXPECT_EQ(normal.send_at.at(Channel::kWebhook), morning);
  PlannedNotification urgent = Normal("high_risk");
  urgent.priority = Priority::kUrgent;
  EXPECT_EQ(PlanDelivery(urgent, prefs, now).send_at.at(Channel::kWebhook), now);
  prefs.channels = {Channel::kInApp};
  EXPECT_EQ(PlanDelivery(Normal(), prefs, now).send_at.count(Channel::kWebhook), 0u);
}

TEST(QuietHoursTest, OptOutSuppressesExceptUrgent) {
  Preferences prefs;
  prefs.opted_out_types = {"reminder", "high_risk"};
  EXPECT_TRUE(PlanDelivery(Normal("reminder"), prefs, absl::UnixEpoch()).suppressed);
  EXPECT_FALSE(PlanDelivery(Normal("assignment"), prefs, absl::UnixEpoch()).suppressed);
  PlannedNotification urgent = Normal("high_risk");
  urgent.priority = Priority::kUrgent;
  EXPECT_FALSE(PlanDelivery(urgent, prefs, absl::UnixEpoch()).suppressed);
}

TEST(QuietHoursTest, NoWindowAndUnknownZone) {
  Preferences prefs;
  EXPECT_FALSE(InQuietHours(prefs, absl::UnixEpoch(), nullptr));
  prefs.time_zone = "Not/AZone";
  prefs.quiet_start_minute = 0;
  prefs.quiet_end_minute = 60;
  EXPECT_TRUE(InQuietHours(prefs, absl::UnixEpoch() + absl::Minutes(30), nullptr));  // as UTC
}

TEST(BackoffTest, ExponentialWithEqualJitterAndCap) {
  BackoffPolicy policy;
  policy.initial = absl::Seconds(2);
  policy.max = absl::Seconds(30);
  EXPECT_EQ(BackoffDelay(1, policy, 0.0), absl::Seconds(1));
  EXPECT_EQ(BackoffDelay(1, policy, 0.5), absl::Milliseconds(1500));
  EXPECT_EQ(BackoffDelay(2, policy, 0.0), absl::Seconds(2));
  EXPECT_EQ(BackoffDelay(3, policy, 0.0), absl::Seconds(4));
  EXPECT_EQ(BackoffDelay(4, policy, 0.999999), absl::Nanoseconds(15'999'992'000));
  EXPECT_EQ(BackoffDelay(5, policy, 0.0), absl::Seconds(15));   // capped at 30 s
  EXPECT_EQ(BackoffDelay(60, policy, 1.0), absl::Seconds(30));  // no overflow
  // Every delay lies in [step/2, step].
  for (int attempt = 1; attempt <= 10; ++attempt) {
    for (double j : {0.0, 0.25, 0.75, 0.99}) {
      const absl::Duration d = BackoffDelay(attempt, policy, j);
      EXPECT_GE(d, absl::Seconds(1));
      EXPECT_LE(d, absl::Seconds(30));
    }
  }
}

TEST(BackoffTest, DeadLetterAfterMaxAttempts) {
  BackoffPolicy policy;
  policy.max_attempts = 3;
  EXPECT_FALSE(ShouldDeadLetter(2, policy));
  EXPECT_TRUE(ShouldDeadLetter(3, policy));
}

TEST(WebhookTest, BodyCarriesIdsAndNoEventContent) {
  cv1::HighRiskIdentified risk;
  risk.set_case_manager_id("cm-1");
  risk.set_assessment_id("as-1");
  risk.set_instrument(cv1::ASSESSMENT_INSTRUMENT_PHQ9);
  auto planned = Evaluate(SingleFact(Envelope(risk, "ev-1", "case-1")), DefaultRuleBook(), "");
  ASSERT_EQ(planned.size(), 1u);
  const std::string body = WebhookBody(planned[0], 1);
  EXPECT_THAT(body, ::testing::HasSubstr(planned[0].notification_id));
  EXPECT_THAT(body, ::testing::HasSubstr("\"link\":\"/cases/case-1\""));
  EXPECT_THAT(body, ::testing::HasSubstr("\"priority\":\"urgent\""));
  EXPECT_THAT(body, ::testing::Not(::testing::HasSubstr("PHQ")));
  EXPECT_THAT(body, ::testing::Not(::testing::HasSubstr("as-1")));
}

TEST(WebhookTest, SignatureMatchesKnownVectorAndVerifies) {
  // Expected value computed independently:
  //   printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
  const std::string sig = WebhookSignature("secret", 1'700'000'000, "{\"a\":1}");
  EXPECT_EQ(sig, "49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686");
  const absl::Time now = absl::FromUnixSeconds(1'700'000'010);
  EXPECT_TRUE(VerifyWebhookSignature("secret", 1'700'000'000, "{\"a\":1}", sig, now,
                                     absl::Minutes(5)));
  EXPECT_FALSE(VerifyWebhookSignature("other", 1'700'000'000, "{\"a\":1}", sig, now,
                                      absl::Minutes(5)));
  EXPECT_FALSE(VerifyWebhookSignature("secret", 1'700'000'000, "{\"a\":2}", sig, now,
                                      absl::Minutes(5)));
  EXPECT_FALSE(VerifyWebhookSignature("secret", 1'700'000'001, "{\"a\":1}", sig, now,
                                      absl::Minutes(5)));
  EXPECT_FALSE(VerifyWebhookSignature("secret", 1'700'000'000, "{\"a\":1}", sig,
                                      now + absl::Hours(1), absl::Minutes(5)));
}

}  // namespace
}  // namespace clinical::notification

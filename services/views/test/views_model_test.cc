// The pure parts of the views: the model's translation (no Redis), periods, order
// statistics, the worklist rule and balancing.
#include "absl/strings/str_cat.h"
#include "brute_force.h"
#include "case_domain.h"
#include "figures.h"
#include "gtest/gtest.h"
#include "scheduling_domain.h"
#include "view_model.h"

namespace clinical::views {
namespace {

namespace v1 = ::clinical::case_::v1;
namespace sv1 = ::clinical::scheduling::v1;

common::v1::EventEnvelope Scheduling(const sv1::SchedulingEvent& body, const std::string& appointment,
                                     int64_t version, const std::string& tenant = "tenant-a") {
  common::v1::EventEnvelope envelope;
  scheduling::ToEnvelope(body, &envelope);
  envelope.set_tenant_id(tenant);
  envelope.set_aggregate_id(appointment);
  envelope.set_aggregate_version(version);
  return envelope;
}

sv1::SchedulingEvent Booked(const std::string& case_id, std::vector<int64_t> starts) {
  sv1::SchedulingEvent e;
  auto* b = e.mutable_appointment_booked();
  b->set_case_id(case_id);
  b->set_status(sv1::APPOINTMENT_STATUS_BOOKED);
  for (size_t i = 0; i < starts.size(); ++i) {
    auto* o = b->add_occurrences();
    o->set_index(static_cast<int32_t>(i));
    o->mutable_start_time()->set_seconds(starts[i]);
    o->mutable_end_time()->set_seconds(starts[i] + 3600);
  }
  return e;
}

sv1::SchedulingEvent StatusTo(int index, sv1::AppointmentStatus to) {
  sv1::SchedulingEvent e;
  e.mutable_appointment_status_changed()->set_index(index);
  e.mutable_appointment_status_changed()->set_to(to);
  return e;
}

common::v1::EventEnvelope Envelope(const v1::CaseEvent& body, const std::string& tenant = "tenant-a",
                                   const std::string& case_id = "case-1") {
  case_service::Event event{body, absl::FromUnixSeconds(1'767'225'600), {}};
  common::v1::EventEnvelope envelope;
  case_service::ToEnvelope(event, &envelope);
  envelope.set_tenant_id(tenant);
  envelope.set_aggregate_id(case_id);
  envelope.set_aggregate_version(1);
  return envelope;
}

v1::CaseEvent Opened(const std::string& program = "elder_care") {
  v1::CaseEvent e;
  e.mutable_case_opened()->set_program(program);
  e.mutable_case_opened()->set_acuity(3);
  e.mutable_case_opened()->set_status(v1::CASE_STATUS_ACTIVE);
  e.mutable_case_opened()->mutable_patient()->set_family_name("Secret-Surname");
  return e;
}

TEST(CaseViewModelTest, TranslatesToOneScriptCallUnderTheVersionPrefixWithoutPatientData) {
  CaseViewModel model("clinical.case.events.v1", "clinical.scheduling.events.v1");
  auto keys = projection::KeySpace::Create("views", "v7");
  ASSERT_TRUE(keys.ok());
  std::vector<projection::RedisCommand> out;
  ASSERT_TRUE(model.Translate(Envelope(Opened()), *keys, out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0][0], "EVALSHA");
  EXPECT_EQ(out[0][1], model.Scripts()[0].sha1());
  EXPECT_EQ(out[0][2], "0");
  EXPECT_EQ(out[0][3], "views:v7:");
  EXPECT_EQ(out[0][4], "tenant-a");
  EXPECT_EQ(out[0][6], "open");
  EXPECT_EQ(out[0][8], "2026-W01");
  EXPECT_EQ(out[0][9], "2026-01");
  EXPECT_EQ(out[0][10], "2026-Q1");
  for (const auto& arg : out[0]) EXPECT_EQ(arg.find("Secret-Surname"), std::string::npos);
  // Pure: the same event gives the same bytes.
  std::vector<projection::RedisCommand> again;
  ASSERT_TRUE(model.Translate(Envelope(Opened()), *keys, again).ok());
  EXPECT_EQ(out, again);
}

TEST(CaseViewModelTest, DeadLettersIdsThatCouldForgeKeysAndUndecodablePayloads) {
  CaseViewModel model("t", "s");
  auto keys = projection::KeySpace::Create("views", "v1");
  std::vector<projection::RedisCommand> out;
  EXPECT_EQ(model.Translate(Envelope(Opened(), "tenant:b"), *keys, out).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model.Translate(Envelope(Opened(), ""), *keys, out).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model.Translate(Envelope(Opened("elder care")), *keys, out).code(),
            absl::StatusCode::kInvalidArgument);
  common::v1::EventEnvelope garbage = Envelope(Opened());
  garbage.set_event_type("clinical.case.v1.NoSuchEvent");
  EXPECT_EQ(model.Translate(garbage, *keys, out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(out.empty());
}

TEST(CaseViewModelTest, IgnoresEventsTheViewsDoNotShow) {
  CaseViewModel model("t", "s");
  auto keys = projection::KeySpace::Create("views", "v1");
  std::vector<projection::RedisCommand> out;
  v1::CaseEvent approved;
  approved.mutable_closure_approved()->set_comment("ok");
  ASSERT_TRUE(model.Translate(Envelope(approved), *keys, out).ok());
  EXPECT_TRUE(out.empty());
}

TEST(CaseViewModelTest, ReadsTheSchedulingTopicToo) {
  CaseViewModel model("cases", "appointments");
  EXPECT_EQ(model.Topics(), (std::vector<std::string>{"cases", "appointments"}));
  auto keys = projection::KeySpace::Create("views", "v1");
  ASSERT_TRUE(keys.ok());
  std::vector<projection::RedisCommand> out;
  ASSERT_TRUE(model.Translate(Scheduling(Booked("case-1", {1'767'225'600, 1'767'830'400}), "appt-1", 1),
                              *keys, out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0][1], model.Scripts()[1].sha1());
  // prefix, tenant, appointment, op, case, status, then 5 per occurrence.
  EXPECT_EQ(std::vector<std::string>(out[0].begin() + 3, out[0].end()),
            (std::vector<std::string>{"views:v1:", "tenant-a", "appt-1", "book", "case-1", "3",
                                      "0", "1767225600", "2026-W01", "2026-01", "2026-Q1",
                                      "1", "1767830400", "2026-W02", "2026-01", "2026-Q1"}));
  out.clear();
  ASSERT_TRUE(model.Translate(Scheduling(StatusTo(1, sv1::APPOINTMENT_STATUS_NOSHOW), "appt-1", 2),
                              *keys, out).ok());
  EXPECT_EQ(std::vector<std::string>(out[0].begin() + 6, out[0].end()),
            (std::vector<std::string>{"status", "1", "8"}));
  // A case id that could forge a key is dead-lettered; calendars change nothing.
  out.clear();
  EXPECT_EQ(model.Translate(Scheduling(Booked("case:x", {1}), "appt-2", 1), *keys, out).code(),
            absl::StatusCode::kInvalidArgument);
  sv1::SchedulingEvent calendar;
  calendar.mutable_calendar_created()->set_owner_id("cm-1");
  ASSERT_TRUE(model.Translate(Scheduling(calendar, "cal-1", 1), *keys, out).ok());
  EXPECT_TRUE(out.empty());
}

TEST(CaseViewModelTest, GoalsTasksAndClosureFacts) {
  CaseViewModel model("t", "s");
  auto keys = projection::KeySpace::Create("views", "v1");
  std::vector<projection::RedisCommand> out;
  v1::CaseEvent goal;
  goal.mutable_goal_added()->set_goal_id("goal-1");
  goal.mutable_goal_added()->set_target_date("2026-01-31");
  goal.mutable_goal_added()->set_lifecycle_status(v1::GOAL_LIFECYCLE_STATUS_ACTIVE);
  goal.mutable_goal_added()->set_description("Secret goal text");
  ASSERT_TRUE(model.Translate(Envelope(goal), *keys, out).ok());
  // ... due_add, kind, id, open, due = end of 2026-01-31 UTC.
  EXPECT_EQ(std::vector<std::string>(out[0].begin() + 6, out[0].begin() + 7), std::vector<std::string>{"due_add"});
  EXPECT_EQ(std::vector<std::string>(out[0].end() - 4, out[0].end()),
            (std::vector<std::string>{"g", "goal-1", "1", "1769904000"}));
  for (const auto& arg : out[0]) EXPECT_EQ(arg.find("Secret"), std::string::npos);
  out.clear();
  v1::CaseEvent closed;
  closed.mutable_case_closed()->set_reason(v1::CLOSURE_REASON_GOALS_MET);
  closed.mutable_case_closed()->mutable_delivered_cost()->set_currency_code("USD");
  closed.mutable_case_closed()->mutable_delivered_cost()->set_minor_units(12345);
  closed.mutable_case_closed()->set_goals_total(3);
  closed.mutable_case_closed()->set_goals_achieved(2);
  ASSERT_TRUE(model.Translate(Envelope(closed), *keys, out).ok());
  EXPECT_EQ(std::vector<std::string>(out[0].end() - 5, out[0].end()),
            (std::vector<std::string>{"1", "12345", "USD", "3", "2"}));
  EXPECT_EQ(GoalDueAt("2026-01-31"), 1'769'904'000);
  EXPECT_EQ(GoalDueAt("31/01/2026"), std::nullopt);
  EXPECT_TRUE(IsOpenGoal(v1::GOAL_LIFECYCLE_STATUS_ON_HOLD));
  EXPECT_FALSE(IsOpenGoal(v1::GOAL_LIFECYCLE_STATUS_COMPLETED));
  EXPECT_TRUE(IsOpenTask(v1::TASK_STATUS_IN_PROGRESS));
  EXPECT_FALSE(IsOpenTask(v1::TASK_STATUS_FAILED));
}

TEST(PeriodLabelTest, IsoWeeksMonthsQuarters) {
  auto at = [](int y, int m, int d) {
    return absl::FromCivil(absl::CivilDay(y, m, d), absl::UTCTimeZone());
  };
  EXPECT_EQ(PeriodLabel(Period::kWeek, at(2026, 1, 1)), "2026-W01");   // Thursday
  EXPECT_EQ(PeriodLabel(Period::kWeek, at(2027, 1, 1)), "2026-W53");   // Friday: last year's
  EXPECT_EQ(PeriodLabel(Period::kWeek, at(2024, 12, 30)), "2025-W01"); // Monday: next year's
  EXPECT_EQ(PeriodLabel(Period::kWeek, at(2026, 11, 27)), "2026-W48");
  EXPECT_EQ(PeriodLabel(Period::kMonth, at(2026, 11, 27)), "2026-11");
  EXPECT_EQ(PeriodLabel(Period::kQuarter, at(2026, 11, 27)), "2026-Q4");
  EXPECT_EQ(PeriodLabel(Period::kQuarter, at(2026, 3, 31)), "2026-Q1");
}

TEST(NearestRankTest, ExactOrderStatistics) {
  EXPECT_EQ(NearestRank({5}, 50), 5);
  EXPECT_EQ(NearestRank({5}, 90), 5);
  EXPECT_EQ(NearestRank({1, 2, 3, 4}, 50), 2);
  EXPECT_EQ(NearestRank({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90), 9);
  EXPECT_EQ(NearestRank({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 90), 10);
}

TEST(WorklistTest, UnacceptedThenEscalatedThenOverdueContactThenPriority) {
  const absl::Time now = absl::FromUnixSeconds(1'767'225'600);
  const int64_t day = 86400;
  const int64_t t = absl::ToUnixSeconds(now);
  CaseFacts base;
  base.case_manager_id = "cm-1";
  base.accepted = true;
  base.acuity = 2;
  base.priority = 1;
  base.assigned_at = t - 40 * day;
  base.last_contact_at = t - day;
  base.program = "elder_care";
  CaseFacts unaccepted = base, escalated = base, overdue = base, calm = base, urgent = base;
  unaccepted.case_id = "a";
  unaccepted.accepted = false;
  escalated.case_id = "b";
  escalated.escalations = 1;
  overdue.case_id = "c";
  overdue.last_contact_at = t - 20 * day;
  calm.case_id = "d";
  urgent.case_id = "e";
  urgent.priority = 5;
  const auto ranked = RankWorklist({calm, overdue, urgent, escalated, unaccepted}, now,
                                   {{"elder_care", 14}}, 30);
  ASSERT_EQ(ranked.size(), 5u);
  EXPECT_EQ(ranked[0].facts.case_id, "a");
  EXPECT_EQ(ranked[1].facts.case_id, "b");
  EXPECT_EQ(ranked[2].facts.case_id, "c");
  EXPECT_TRUE(ranked[2].contact_overdue);
  EXPECT_EQ(ranked[2].days_since_contact, 20);
  EXPECT_EQ(ranked[2].reasons, std::vector<std::string>{"no contact for 20 days (threshold 14)"});
  EXPECT_EQ(ranked[3].facts.case_id, "e");
  EXPECT_EQ(ranked[4].facts.case_id, "d");
  // The default threshold applies to programs without their own.
  overdue.program = "hiv";
  EXPECT_FALSE(RankWorklist({overdue}, now, {{"elder_care", 14}}, 30)[0].contact_overdue);
}

TEST(WorklistTest, OverdueTasksGoalsAndAnAppointmentTomorrowRaiseACase) {
  const absl::Time now = absl::FromUnixSeconds(1'767'225'600);
  const int64_t t = absl::ToUnixSeconds(now);
  CaseFacts base;
  base.case_manager_id = "cm-1";
  base.accepted = true;
  base.priority = 1;
  base.assigned_at = t - 86400;
  base.last_contact_at = t - 3600;
  CaseFacts tasks = base, goals = base, soon = base, visit = base, later = base;
  tasks.case_id = "tasks";
  tasks.overdue_tasks = 5;  // capped at 300
  goals.case_id = "goals";
  goals.goals_overdue = 2;
  soon.case_id = "soon";
  soon.goals_due_soon = 1;
  visit.case_id = "visit";
  visit.next_appointment_at = t + 5 * 3600;
  later.case_id = "later";
  later.next_appointment_at = t + 3 * 86400;  // not within 24 h
  const auto ranked = RankWorklist({later, soon, visit, goals, tasks}, now, {}, 14);
  ASSERT_EQ(ranked.size(), 5u);
  EXPECT_EQ(ranked[0].facts.case_id, "tasks");
  EXPECT_EQ(ranked[0].score, 300 + 20);
  EXPECT_EQ(ranked[0].reasons, std::vector<std::string>{"5 overdue task(s)"});
  EXPECT_EQ(ranked[1].facts.case_id, "goals");
  EXPECT_EQ(ranked[1].score, 100 + 20);
  EXPECT_EQ(ranked[2].facts.case_id, "visit");
  EXPECT_EQ(ranked[2].reasons, std::vector<std::string>{"appointment in 5 hour(s)"});
  EXPECT_EQ(ranked[3].facts.case_id, "soon");
  EXPECT_EQ(ranked[3].score, 20 + 20);
  EXPECT_EQ(ranked[4].facts.case_id, "later");
  EXPECT_TRUE(ranked[4].reasons.empty());
}

TEST(CountersTest, SupervisorSumsTeams) {
  Counters a, b;
  a.open = 2;
  a.load = 5;
  a.by_status[3] = 2;
  b.open = 1;
  b.load = 4;
  b.high_risk = 1;
  b.by_status[3] = 1;
  b.by_stage[2] = 1;
  a += b;
  EXPECT_EQ(a.open, 3);
  EXPECT_EQ(a.load, 9);
  EXPECT_EQ(a.high_risk, 1);
  EXPECT_EQ(a.by_status.at(3), 3);
  EXPECT_EQ(a.by_stage.at(2), 1);
}

TEST(SuggestManagersTest, OnlyThoseWithRoomLeastLoadedFirstWithReason) {
  Counters light, heavy, full, light_risky;
  light.load = 10;
  heavy.load = 40;
  full.load = 58;
  light_risky.load = 10;
  light_risky.high_risk = 2;
  int without_room = -1;
  const auto s = SuggestManagers({{"cm-heavy", heavy}, {"cm-full", full}, {"cm-risky", light_risky},
                                  {"cm-light", light}},
                                 5, 60, &without_room);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].case_manager_id, "cm-light");
  EXPECT_EQ(s[1].case_manager_id, "cm-risky");
  EXPECT_EQ(s[2].case_manager_id, "cm-heavy");
  EXPECT_EQ(without_room, 1);
  EXPECT_EQ(s[0].load_after_percent, 25);
  EXPECT_EQ(s[0].reason, "load 10 + 5 = 15 of 60 (25%), 0 high-risk, 0 unaccepted");
}

TEST(BruteForceTest, CountsAnOpenAssignedCaseAndItsOutcome) {
  v1::CaseEvent assigned;
  assigned.mutable_case_assigned()->set_case_manager_id("cm-1");
  auto e1 = Envelope(Opened());
  auto e2 = Envelope(assigned);
  e2.set_aggregate_version(2);
  const ViewFigures f = BruteForce({e1, e2}, CaseClock{});
  const Counters& cm = f.counters.at({"tenant-a", kDimCaseManager, "cm-1"});
  EXPECT_EQ(cm.open, 1);
  EXPECT_EQ(cm.load, 3);
  EXPECT_EQ(cm.unaccepted, 1);
  EXPECT_EQ(f.outcomes.at({{"tenant-a", kDimTenant, kTenantGroup}, "2026-01"}).opened, 1);
  EXPECT_EQ(f.outcomes.at({{"tenant-a", kDimCaseManager, "cm-1"}, "2026-Q1"}).assigned, 1);
  EXPECT_EQ(f.caseloads.at({"tenant-a", "cm-1"}).size(), 1u);
}

TEST(BruteForceTest, AppointmentsCountToTheCaseGroupsWhateverTheOrderOfTopics) {
  v1::CaseEvent assigned;
  assigned.mutable_case_assigned()->set_case_manager_id("cm-1");
  auto e1 = Envelope(Opened());
  auto e2 = Envelope(assigned);
  e2.set_aggregate_version(2);
  const int64_t jan5 = 1'767'571'200;  // 2026-01-05, W02
  auto b = Scheduling(Booked("case-1", {jan5, jan5 + 7 * 86400, jan5 + 14 * 86400}), "appt-1", 1);
  auto kept = Scheduling(StatusTo(0, sv1::APPOINTMENT_STATUS_FULFILLED), "appt-1", 2);
  auto noshow = Scheduling(StatusTo(1, sv1::APPOINTMENT_STATUS_NOSHOW), "appt-1", 3);
  CaseClock clock;
  clock.now = jan5 + 8 * 86400;  // after the first two, before the third
  for (const auto& events : {std::vector<common::v1::EventEnvelope>{b, kept, noshow, e1, e2},
                             std::vector<common::v1::EventEnvelope>{e1, b, e2, kept, noshow}}) {
    const ViewFigures f = BruteForce(events, clock);
    const Outcome& month = f.outcomes.at({{"tenant-a", kDimCaseManager, "cm-1"}, "2026-01"});
    EXPECT_EQ(month.appointments_kept, 1);
    EXPECT_EQ(month.appointments_no_show, 1);
    EXPECT_EQ(f.outcomes.at({{"tenant-a", kDimProgram, "elder_care"}, "2026-W02"}).appointments_kept, 1);
    EXPECT_EQ(f.caseloads.at({"tenant-a", "cm-1"})[0].next_appointment_at, jan5 + 14 * 86400);
  }
}

}  // namespace
}  // namespace clinical::views

// The pure parts of the views: the model's translation (no Redis), periods, order
// statistics, the worklist rule and balancing.
#include "absl/strings/str_cat.h"
#include "brute_force.h"
#include "case_domain.h"
#include "figures.h"
#include "gtest/gtest.h"
#include "view_model.h"

namespace clinical::views {
namespace {

namespace v1 = ::clinical::case_::v1;

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
  CaseViewModel model("clinical.case.events.v1");
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
  CaseViewModel model("t");
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
  CaseViewModel model("t");
  auto keys = projection::KeySpace::Create("views", "v1");
  std::vector<projection::RedisCommand> out;
  v1::CaseEvent approved;
  approved.mutable_closure_approved()->set_comment("ok");
  ASSERT_TRUE(model.Translate(Envelope(approved), *keys, out).ok());
  EXPECT_TRUE(out.empty());
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
  const ViewFigures f = BruteForce({e1, e2});
  const Counters& cm = f.counters.at({"tenant-a", kDimCaseManager, "cm-1"});
  EXPECT_EQ(cm.open, 1);
  EXPECT_EQ(cm.load, 3);
  EXPECT_EQ(cm.unaccepted, 1);
  EXPECT_EQ(f.outcomes.at({{"tenant-a", kDimTenant, kTenantGroup}, "2026-01"}).opened, 1);
  EXPECT_EQ(f.outcomes.at({{"tenant-a", kDimCaseManager, "cm-1"}, "2026-Q1"}).assigned, 1);
  EXPECT_EQ(f.caseloads.at({"tenant-a", "cm-1"}).size(), 1u);
}

}  // namespace
}  // namespace clinical::views

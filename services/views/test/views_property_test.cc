// The property the issue asks for: for random valid event sequences (thousands of cases,
// many managers, two tenants), every figure the views hold in Redis — applied by the real
// Lua scripts on the real redis-server — equals a brute-force recomputation from the same
// events (case service's Evolve + straight counting). Several seeds; each run also checks
// that Redis holds no outcome the events do not explain, and that a second tenant's
// figures never leak into the first's.
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "brute_force.h"
#include "clinical/projection/versions.h"
#include "clinical/redis/connection.h"
#include "clinical/testing/platform.h"
#include "event_generator.h"
#include "gtest/gtest.h"
#include "view_model.h"
#include "view_reader.h"

namespace clinical::views {
namespace {

using clinical::testing::Platform;

std::string Describe(const Counters& c) {
  std::string s = absl::StrCat("open=", c.open, " load=", c.load, " hr=", c.high_risk,
                               " unacc=", c.unaccepted, " unassigned=", c.unassigned,
                               " esc=", c.escalations, " status{");
  for (auto [k, v] : c.by_status) absl::StrAppend(&s, k, ":", v, " ");
  absl::StrAppend(&s, "} stage{");
  for (auto [k, v] : c.by_stage) absl::StrAppend(&s, k, ":", v, " ");
  return s + "}";
}

std::string Describe(const Outcome& o) {
  return absl::StrCat("opened=", o.opened, " assigned=", o.assigned, " closed=", o.closed,
                      " cancelled=", o.cancelled, " eie=", o.entered_in_error,
                      " goals_met=", o.goals_met, " sat=", o.satisfaction_sum, "/",
                      o.satisfaction_count, " reopen30=", o.reopened_30, " reopen90=",
                      o.reopened_90, " minutes=", o.contact_minutes, " close n/p50/p90=",
                      o.close_count, "/", o.close_p50, "/", o.close_p90, " first n/p50=",
                      o.first_contact_count, "/", o.first_contact_p50, " reasons=",
                      o.reasons.size(), " appt kept/noshow=", o.appointments_kept, "/",
                      o.appointments_no_show, " goals=", o.goals_achieved, "/", o.goals_total,
                      " cost currencies=", o.delivered_cost.size());
}

bool HasStoredCount(const Outcome& o) {
  return o.opened || o.assigned || o.closed || o.cancelled || o.entered_in_error ||
         o.goals_met || o.satisfaction_count || o.reopened_30 || o.reopened_90 ||
         o.contact_minutes || o.appointments_kept || o.appointments_no_show || o.goals_total ||
         !o.delivered_cost.empty();
}

class ViewsPropertyTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ViewsPropertyTest, EveryFigureEqualsBruteForceRecomputation) {
  const Platform& platform = Platform::Get();
  // As the views service's Redis user: the model's commands and scripts must all be within
  // its ACL (its keys, its command categories).
  auto redis = redis::Connection::Connect(platform.RedisAs("views"), absl::Seconds(10));
  ASSERT_TRUE(redis.ok()) << redis.status();

  testing::GeneratorOptions options;
  options.seed = GetParam();
  options.cases = 2500;
  options.managers = 40;
  const auto events = testing::GenerateEvents(options);
  ASSERT_GT(events.size(), static_cast<size_t>(options.cases * 5));

  // Apply through the model, as the projection runtime would (its exactly-once machinery
  // is libs/projection's own tested concern; here the translation and scripts are).
  const std::string root = clinical::testing::UniqueName("views.prop");
  auto keys = projection::KeySpace::Create(root, "v1");
  ASSERT_TRUE(keys.ok());
  CaseViewModel model("clinical.case.events.v1", "clinical.scheduling.events.v1");
  const auto scripts = model.Scripts();
  for (const auto& script : scripts) {
    ASSERT_TRUE(redis->Command({"SCRIPT", "LOAD", script.source()}).ok());
  }
  std::vector<redis::Args> batch;
  size_t applied_commands = 0;
  auto flush = [&] {
    auto replies = redis->Pipeline(batch);
    ASSERT_TRUE(replies.ok()) << replies.status();
    for (const auto& r : *replies) ASSERT_FALSE(r.is_error()) << r.str();
    applied_commands += batch.size();
    batch.clear();
  };
  for (const auto& e : events) {
    std::vector<projection::RedisCommand> out;
    ASSERT_TRUE(model.Translate(e, *keys, out).ok()) << e.event_type();
    for (auto& c : out) batch.push_back(std::move(c));
    if (batch.size() >= 2000) flush();
  }
  flush();
  ASSERT_GT(applied_commands, static_cast<size_t>(options.cases));
  ASSERT_TRUE(projection::SetActiveVersion(*redis, root, "v1").ok());

  // The clock-dependent facts (next appointment, overdue tasks, goals due) at a time inside
  // the generated range, so that some are before it and some after.
  CaseClock clock;
  clock.now = options.start_unix + 200 * 86400;
  const ViewFigures expected = BruteForce(events, clock);
  ViewReader reader(*redis, root);

  // Registries and counters of every group.
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> groups;
  for (const auto& [key, counters] : expected.counters) groups[{key.tenant, key.dim}].push_back(key.id);
  int compared_groups = 0;
  for (const std::string& tenant : options.tenants) {
    for (const char* dim : {kDimTenant, kDimProgram, kDimTeam, kDimCaseManager}) {
      auto ids = reader.Groups(tenant, dim);
      ASSERT_TRUE(ids.ok()) << ids.status();
      std::vector<std::string> want = groups[{tenant, dim}];
      std::sort(want.begin(), want.end());
      EXPECT_EQ(ids->value, want) << tenant << " " << dim;
      auto counters = reader.GroupCounters(tenant, dim, want);
      ASSERT_TRUE(counters.ok()) << counters.status();
      for (size_t i = 0; i < want.size(); ++i) {
        const Counters& w = expected.counters.at({tenant, dim, want[i]});
        EXPECT_EQ(counters->value[i], w)
            << tenant << " " << dim << " " << want[i] << "\n view:  " << Describe(counters->value[i])
            << "\n brute: " << Describe(w);
        ++compared_groups;
      }
    }
  }
  EXPECT_GT(compared_groups, options.managers);

  // Every case manager's open cases, fact by fact.
  int compared_cases = 0;
  int with_next_appointment = 0, with_overdue_tasks = 0, with_goals_overdue = 0,
      with_goals_due_soon = 0;
  for (const auto& [key, counters] : expected.counters) {
    if (key.dim != kDimCaseManager) continue;
    auto caseload = reader.Caseload(key.tenant, key.id, clock);
    ASSERT_TRUE(caseload.ok()) << caseload.status();
    auto found = expected.caseloads.find({key.tenant, key.id});
    const std::vector<CaseFacts> want =
        found == expected.caseloads.end() ? std::vector<CaseFacts>{} : found->second;
    ASSERT_EQ(caseload->value.cases.size(), want.size()) << key.tenant << " " << key.id;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(caseload->value.cases[i], want[i]) << want[i].case_id;
      EXPECT_EQ(caseload->value.cases[i].case_manager_id, key.id);
      ++compared_cases;
      with_next_appointment += want[i].next_appointment_at != 0 ? 1 : 0;
      with_overdue_tasks += want[i].overdue_tasks > 0 ? 1 : 0;
      with_goals_overdue += want[i].goals_overdue > 0 ? 1 : 0;
      with_goals_due_soon += want[i].goals_due_soon > 0 ? 1 : 0;
    }
  }
  EXPECT_GT(compared_cases, 100);
  // The generator exercises every clock-dependent fact (else the comparison proves little).
  EXPECT_GT(with_next_appointment, 10);
  EXPECT_GT(with_overdue_tasks, 10);
  EXPECT_GT(with_goals_overdue, 5);
  EXPECT_GT(with_goals_due_soon, 2);

  // Every outcome of every group and period.
  int compared_outcomes = 0;
  int closures_seen = 0;
  int64_t manager_appointments = 0;
  int with_cost = 0, with_goals = 0;
  for (const auto& [key, want] : expected.outcomes) {
    auto got = reader.GetOutcome(key.first.tenant, key.first.dim, key.first.id, key.second);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->value, want) << key.first.tenant << " " << key.first.dim << " " << key.first.id
                                << " " << key.second << "\n view:  " << Describe(got->value)
                                << "\n brute: " << Describe(want);
    ++compared_outcomes;
    closures_seen += want.close_count > 0 ? 1 : 0;
    if (key.first.dim == kDimCaseManager) {
      manager_appointments += want.appointments_kept + want.appointments_no_show;
    }
    with_cost += want.delivered_cost.empty() ? 0 : 1;
    with_goals += want.goals_total > 0 ? 1 : 0;
  }
  EXPECT_GT(compared_outcomes, 1000);
  EXPECT_GT(closures_seen, 100);
  EXPECT_GT(manager_appointments, 100);
  EXPECT_GT(with_cost, 10);
  EXPECT_GT(with_goals, 10);

  // Nothing in Redis that the events do not explain.
  std::string cursor = "0";
  int scanned = 0;
  do {
    auto scan = redis->Command({"SCAN", cursor, "MATCH", keys->Key("o:*"), "COUNT", "1000"});
    ASSERT_TRUE(scan.ok());
    cursor = scan->elements()[0].str();
    for (const auto& k : scan->elements()[1].elements()) {
      std::vector<std::string> parts =
          absl::StrSplit(k.str().substr(keys->prefix().size()), ':');
      ASSERT_EQ(parts.size(), 5u) << k.str();
      auto it = expected.outcomes.find({{parts[1], parts[2], parts[3]}, parts[4]});
      ASSERT_NE(it, expected.outcomes.end()) << k.str();
      EXPECT_TRUE(HasStoredCount(it->second)) << k.str();
      ++scanned;
    }
  } while (cursor != "0");
  EXPECT_GT(scanned, 1000);
}

INSTANTIATE_TEST_SUITE_P(Seeds, ViewsPropertyTest, ::testing::Values(7u, 1234u, 987654321u));

}  // namespace
}  // namespace clinical::views

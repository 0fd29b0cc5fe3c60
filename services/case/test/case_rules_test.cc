// The rule tables and pure helpers: status and stage transitions, capacity, distribution.
#include "case_domain.h"
#include "gtest/gtest.h"

namespace clinical::case_service {
namespace {

using S = v1::CaseStatus;

TEST(StatusTransitionTableTest, EveryPairIsAllowedOnlyIfListed) {
  const std::vector<StatusAction> actions = {
      StatusAction::kChangeStatus, StatusAction::kHold,   StatusAction::kClose,
      StatusAction::kCancel,       StatusAction::kReopen, StatusAction::kEnteredInError};
  int allowed = 0;
  for (int from = 1; from <= 7; ++from) {
    for (int to = 1; to <= 7; ++to) {
      for (StatusAction action : actions) {
        bool listed = false;
        for (const auto& t : StatusTransitions()) {
          listed |= t.from == from && t.to == to && t.action == action;
        }
        const absl::Status status =
            CheckStatusTransition(static_cast<S>(from), static_cast<S>(to), action);
        EXPECT_EQ(status.ok(), listed) << from << "->" << to;
        if (!status.ok()) {
          EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
        }
        allowed += status.ok();
      }
    }
  }
  EXPECT_EQ(allowed, static_cast<int>(StatusTransitions().size()));
}

TEST(StatusTransitionTableTest, TerminalStatusesOnlyLeaveByReopenOrEnteredInError) {
  for (const auto& t : StatusTransitions()) {
    if (t.from == S::CASE_STATUS_FINISHED) {
      EXPECT_TRUE(t.action == StatusAction::kReopen || t.action == StatusAction::kEnteredInError);
    }
    EXPECT_NE(t.from, S::CASE_STATUS_ENTERED_IN_ERROR) << "entered-in-error is final";
    if (t.from == S::CASE_STATUS_CANCELLED) {
      EXPECT_EQ(t.action, StatusAction::kEnteredInError);
    }
  }
}

TEST(StageTransitionTableTest, ForwardOneStepOrBackToAssessmentOrPlanning) {
  EXPECT_TRUE(CheckStageTransition(v1::CASE_STAGE_INTAKE, v1::CASE_STAGE_ASSESSMENT).ok());
  EXPECT_FALSE(CheckStageTransition(v1::CASE_STAGE_INTAKE, v1::CASE_STAGE_CARE_PLANNING).ok());
  EXPECT_TRUE(CheckStageTransition(v1::CASE_STAGE_MONITORING, v1::CASE_STAGE_CARE_PLANNING).ok());
  EXPECT_TRUE(CheckStageTransition(v1::CASE_STAGE_MONITORING, v1::CASE_STAGE_TRANSITION_CLOSURE).ok());
  EXPECT_FALSE(CheckStageTransition(v1::CASE_STAGE_MONITORING, v1::CASE_STAGE_INTAKE).ok());
  EXPECT_FALSE(CheckStageTransition(v1::CASE_STAGE_ASSESSMENT, v1::CASE_STAGE_ASSESSMENT).ok());
  EXPECT_EQ(CheckStageTransition(v1::CASE_STAGE_CARE_PLANNING, v1::CASE_STAGE_MONITORING).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CapacityRuleTest, LimitIsInclusive) {
  bool overridden = true;
  EXPECT_TRUE(CheckCapacity(7, 3, 10, nullptr, common::v1::ROLE_CASE_MANAGER, &overridden).ok());
  EXPECT_FALSE(overridden);
  EXPECT_EQ(CheckCapacity(8, 3, 10, nullptr, common::v1::ROLE_CASE_MANAGER, &overridden).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CapacityRuleTest, OverrideBySupervisorOrAdministratorWithReason) {
  v1::CapacityOverride with_reason;
  with_reason.set_reason("continuity of care");
  v1::CapacityOverride no_reason;
  bool overridden = false;
  EXPECT_EQ(CheckCapacity(10, 5, 10, &with_reason, common::v1::ROLE_CASE_MANAGER, &overridden).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(CheckCapacity(10, 5, 10, &no_reason, common::v1::ROLE_SUPERVISOR, &overridden).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckCapacity(10, 5, 10, &with_reason, common::v1::ROLE_SUPERVISOR, &overridden).ok());
  EXPECT_TRUE(overridden);
  // Administrators run the platform; they take no clinical decisions (Trust II).
  EXPECT_EQ(CheckCapacity(10, 5, 10, &with_reason, common::v1::ROLE_ADMINISTRATOR, &overridden).code(),
            absl::StatusCode::kPermissionDenied);
}

std::vector<std::string> Managers(const std::vector<Placement>& placements) {
  std::vector<std::string> out;
  for (const auto& p : placements) out.push_back(p.case_manager_id);
  return out;
}

TEST(DistributeTest, RoundRobinTakesTurnsAndSkipsFullManagers) {
  const std::vector<CaseToPlace> cases = {{"c1", 2, 10}, {"c2", 2, 10}, {"c3", 2, 10},
                                          {"c4", 2, 10}, {"c5", 2, 10}};
  EXPECT_EQ(Managers(Distribute(cases, {{"a", 0}, {"b", 0}, {"c", 0}},
                                v1::DISTRIBUTION_STRATEGY_ROUND_ROBIN)),
            (std::vector<std::string>{"a", "b", "c", "a", "b"}));
  // b is nearly full: it is skipped, the turn goes on.
  EXPECT_EQ(Managers(Distribute(cases, {{"a", 0}, {"b", 9}, {"c", 0}},
                                v1::DISTRIBUTION_STRATEGY_ROUND_ROBIN)),
            (std::vector<std::string>{"a", "c", "a", "c", "a"}));
}

TEST(DistributeTest, LeastLoadedEvensOutTheLoad) {
  const std::vector<CaseToPlace> cases = {{"c1", 3, 10}, {"c2", 3, 10}, {"c3", 1, 10}};
  EXPECT_EQ(Managers(Distribute(cases, {{"a", 5}, {"b", 0}, {"c", 2}},
                                v1::DISTRIBUTION_STRATEGY_LEAST_LOADED)),
            (std::vector<std::string>{"b", "c", "b"}));
}

TEST(DistributeTest, CasesThatFitNobodyStayUnplaced) {
  const std::vector<CaseToPlace> cases = {{"c1", 5, 6}, {"c2", 5, 6}, {"c3", 1, 6}};
  for (auto strategy : {v1::DISTRIBUTION_STRATEGY_ROUND_ROBIN, v1::DISTRIBUTION_STRATEGY_LEAST_LOADED}) {
    EXPECT_EQ(Managers(Distribute(cases, {{"a", 0}}, strategy)),
              (std::vector<std::string>{"a", "", "a"}));
  }
  EXPECT_EQ(Managers(Distribute(cases, {}, v1::DISTRIBUTION_STRATEGY_ROUND_ROBIN)),
            (std::vector<std::string>{"", "", ""}));
}

}  // namespace
}  // namespace clinical::case_service

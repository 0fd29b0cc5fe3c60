// The clinical content of a case (issue #5) as plain tests of the pure rules, Decide and
// Evolve: instrument scoring against the published bands, risk escalation, the care plan,
// goal, task and referral state machines (every pair of statuses), consent enforcement and
// override, exact cost arithmetic, overdue tasks, replay through the envelope.
#include <set>
#include <string>
#include <utility>

#include "care_rules.h"
#include "case_domain.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace clinical::case_service {
namespace {

using google::protobuf::RepeatedField;

RepeatedField<int32_t> Answers(std::initializer_list<int32_t> values) {
  RepeatedField<int32_t> field;
  for (int32_t v : values) field.Add(v);
  return field;
}

AssessmentResult Score(v1::AssessmentInstrument instrument, std::initializer_list<int32_t> answers,
                       v1::AdministrativeGender sex = v1::ADMINISTRATIVE_GENDER_FEMALE) {
  auto result = ScoreAssessment(instrument, Answers(answers), sex);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : AssessmentResult{};
}

bool Has(const AssessmentResult& r, v1::AssessmentFlag flag) {
  return std::find(r.flags.begin(), r.flags.end(), flag) != r.flags.end();
}

// ---- Scoring ----

TEST(Phq9, BandsAtEveryPublishedBoundary) {
  constexpr auto kPhq9 = v1::ASSESSMENT_INSTRUMENT_PHQ9;
  struct Case {
    std::initializer_list<int32_t> answers;
    int32_t score;
    v1::AssessmentBand band;
    v1::RiskLevel risk;
  };
  const Case cases[] = {
      {{0, 0, 0, 0, 0, 0, 0, 0, 0}, 0, v1::ASSESSMENT_BAND_MINIMAL, v1::RISK_LEVEL_LOW},
      {{1, 1, 1, 1, 0, 0, 0, 0, 0}, 4, v1::ASSESSMENT_BAND_MINIMAL, v1::RISK_LEVEL_LOW},
      {{1, 1, 1, 1, 1, 0, 0, 0, 0}, 5, v1::ASSESSMENT_BAND_MILD, v1::RISK_LEVEL_LOW},
      // The worked example "several days" on eight items: 8, mild.
      {{1, 1, 1, 1, 1, 1, 1, 1, 0}, 8, v1::ASSESSMENT_BAND_MILD, v1::RISK_LEVEL_LOW},
      {{2, 2, 2, 1, 1, 1, 0, 0, 0}, 9, v1::ASSESSMENT_BAND_MILD, v1::RISK_LEVEL_LOW},
      {{2, 2, 2, 2, 1, 1, 0, 0, 0}, 10, v1::ASSESSMENT_BAND_MODERATE, v1::RISK_LEVEL_MODERATE},
      {{2, 2, 2, 2, 2, 2, 2, 0, 0}, 14, v1::ASSESSMENT_BAND_MODERATE, v1::RISK_LEVEL_MODERATE},
      {{3, 3, 3, 2, 2, 2, 0, 0, 0}, 15, v1::ASSESSMENT_BAND_MODERATELY_SEVERE, v1::RISK_LEVEL_MODERATE},
      {{3, 3, 3, 3, 3, 2, 2, 0, 0}, 19, v1::ASSESSMENT_BAND_MODERATELY_SEVERE, v1::RISK_LEVEL_MODERATE},
      {{3, 3, 3, 3, 3, 3, 2, 0, 0}, 20, v1::ASSESSMENT_BAND_SEVERE, v1::RISK_LEVEL_HIGH},
      {{3, 3, 3, 3, 3, 3, 3, 3, 0}, 24, v1::ASSESSMENT_BAND_SEVERE, v1::RISK_LEVEL_HIGH},
  };
  for (const Case& c : cases) {
    const AssessmentResult r = Score(kPhq9, c.answers);
    EXPECT_EQ(r.score, c.score);
    EXPECT_EQ(r.band, c.band) << "score " << c.score;
    EXPECT_EQ(r.risk, c.risk) << "score " << c.score;
    EXPECT_FALSE(Has(r, v1::ASSESSMENT_FLAG_SUICIDE_RISK)) << "score " << c.score;
    EXPECT_EQ(Has(r, v1::ASSESSMENT_FLAG_SEVERE_SYMPTOMS), c.band == v1::ASSESSMENT_BAND_SEVERE);
  }
  const AssessmentResult max = Score(kPhq9, {3, 3, 3, 3, 3, 3, 3, 3, 3});
  EXPECT_EQ(max.score, 27);
  EXPECT_EQ(max.band, v1::ASSESSMENT_BAND_SEVERE);
}

TEST(Phq9, Item9AboveZeroIsSuicideRiskWhateverTheTotal) {
  const AssessmentResult r = Score(v1::ASSESSMENT_INSTRUMENT_PHQ9, {0, 0, 0, 0, 0, 0, 0, 0, 1});
  EXPECT_EQ(r.score, 1);
  EXPECT_EQ(r.band, v1::ASSESSMENT_BAND_MINIMAL);
  EXPECT_TRUE(Has(r, v1::ASSESSMENT_FLAG_SUICIDE_RISK));
  EXPECT_EQ(r.risk, v1::RISK_LEVEL_HIGH);
}

TEST(Gad7, BandsAtEveryPublishedBoundary) {
  constexpr auto kGad7 = v1::ASSESSMENT_INSTRUMENT_GAD7;
  EXPECT_EQ(Score(kGad7, {0, 0, 0, 0, 0, 0, 0}).band, v1::ASSESSMENT_BAND_MINIMAL);
  EXPECT_EQ(Score(kGad7, {1, 1, 1, 1, 0, 0, 0}).band, v1::ASSESSMENT_BAND_MINIMAL);
  EXPECT_EQ(Score(kGad7, {1, 1, 1, 1, 1, 0, 0}).band, v1::ASSESSMENT_BAND_MILD);
  EXPECT_EQ(Score(kGad7, {2, 2, 2, 1, 1, 1, 0}).band, v1::ASSESSMENT_BAND_MILD);
  const AssessmentResult ten = Score(kGad7, {2, 2, 2, 2, 1, 1, 0});
  EXPECT_EQ(ten.score, 10);
  EXPECT_EQ(ten.band, v1::ASSESSMENT_BAND_MODERATE);
  EXPECT_EQ(ten.risk, v1::RISK_LEVEL_MODERATE);
  EXPECT_EQ(Score(kGad7, {2, 2, 2, 2, 2, 2, 2}).band, v1::ASSESSMENT_BAND_MODERATE);  // 14
  const AssessmentResult fifteen = Score(kGad7, {3, 2, 2, 2, 2, 2, 2});
  EXPECT_EQ(fifteen.score, 15);
  EXPECT_EQ(fifteen.band, v1::ASSESSMENT_BAND_SEVERE);
  EXPECT_EQ(fifteen.risk, v1::RISK_LEVEL_HIGH);
  EXPECT_TRUE(Has(fifteen, v1::ASSESSMENT_FLAG_SEVERE_SYMPTOMS));
  EXPECT_EQ(Score(kGad7, {3, 3, 3, 3, 3, 3, 3}).score, 21);
  EXPECT_EQ(Score(kGad7, {1, 1, 1, 1, 1, 0, 0}).risk, v1::RISK_LEVEL_LOW);
}

TEST(AuditC, CutoffDependsOnSex) {
  constexpr auto kAuditC = v1::ASSESSMENT_INSTRUMENT_AUDIT_C;
  // Worked example: 2-4 times a month (2), 3 or 4 drinks (1), six or more less than
  // monthly (1) = 4: positive for men and women.
  const AssessmentResult four = Score(kAuditC, {2, 1, 1}, v1::ADMINISTRATIVE_GENDER_MALE);
  EXPECT_EQ(four.score, 4);
  EXPECT_EQ(four.band, v1::ASSESSMENT_BAND_SCREEN_POSITIVE);
  EXPECT_TRUE(Has(four, v1::ASSESSMENT_FLAG_POSITIVE_ALCOHOL_SCREEN));
  EXPECT_EQ(four.risk, v1::RISK_LEVEL_MODERATE);
  // 3: positive for women, negative for men.
  EXPECT_EQ(Score(kAuditC, {1, 1, 1}, v1::ADMINISTRATIVE_GENDER_FEMALE).band,
            v1::ASSESSMENT_BAND_SCREEN_POSITIVE);
  const AssessmentResult man3 = Score(kAuditC, {1, 1, 1}, v1::ADMINISTRATIVE_GENDER_MALE);
  EXPECT_EQ(man3.band, v1::ASSESSMENT_BAND_SCREEN_NEGATIVE);
  EXPECT_EQ(man3.risk, v1::RISK_LEVEL_LOW);
  EXPECT_TRUE(man3.flags.empty());
  // Other / unknown sex: the more sensitive cutoff (3).
  EXPECT_EQ(Score(kAuditC, {1, 1, 1}, v1::ADMINISTRATIVE_GENDER_UNKNOWN).band,
            v1::ASSESSMENT_BAND_SCREEN_POSITIVE);
  EXPECT_EQ(Score(kAuditC, {1, 1, 0}, v1::ADMINISTRATIVE_GENDER_FEMALE).band,
            v1::ASSESSMENT_BAND_SCREEN_NEGATIVE);
  EXPECT_EQ(Score(kAuditC, {4, 4, 4}, v1::ADMINISTRATIVE_GENDER_MALE).score, 12);
}

TEST(ReadinessToChange, StageIsTheBand) {
  constexpr auto kReadiness = v1::ASSESSMENT_INSTRUMENT_READINESS_TO_CHANGE;
  EXPECT_EQ(Score(kReadiness, {1}).band, v1::ASSESSMENT_BAND_PRECONTEMPLATION);
  EXPECT_EQ(Score(kReadiness, {2}).band, v1::ASSESSMENT_BAND_CONTEMPLATION);
  EXPECT_EQ(Score(kReadiness, {3}).band, v1::ASSESSMENT_BAND_PREPARATION);
  EXPECT_EQ(Score(kReadiness, {4}).band, v1::ASSESSMENT_BAND_ACTION);
  EXPECT_EQ(Score(kReadiness, {5}).band, v1::ASSESSMENT_BAND_MAINTENANCE);
  EXPECT_EQ(Score(kReadiness, {3}).risk, v1::RISK_LEVEL_UNSPECIFIED);
}

TEST(SocialNeeds, FlagsPerNeedAndSafetyIsHighRisk) {
  constexpr auto kSocial = v1::ASSESSMENT_INSTRUMENT_SOCIAL_NEEDS;
  const AssessmentResult none = Score(kSocial, {0, 0, 0, 0, 0});
  EXPECT_EQ(none.band, v1::ASSESSMENT_BAND_NO_NEEDS);
  EXPECT_EQ(none.risk, v1::RISK_LEVEL_LOW);
  const AssessmentResult two = Score(kSocial, {1, 0, 1, 0, 0});
  EXPECT_EQ(two.score, 2);
  EXPECT_EQ(two.band, v1::ASSESSMENT_BAND_NEEDS_IDENTIFIED);
  EXPECT_EQ(two.flags, (std::vector<v1::AssessmentFlag>{v1::ASSESSMENT_FLAG_HOUSING_NEED,
                                                         v1::ASSESSMENT_FLAG_TRANSPORTATION_NEED}));
  EXPECT_EQ(two.risk, v1::RISK_LEVEL_MODERATE);
  const AssessmentResult unsafe = Score(kSocial, {0, 1, 0, 1, 1});
  EXPECT_EQ(unsafe.flags, (std::vector<v1::AssessmentFlag>{v1::ASSESSMENT_FLAG_FOOD_NEED,
                                                            v1::ASSESSMENT_FLAG_UTILITIES_NEED,
                                                            v1::ASSESSMENT_FLAG_SAFETY_CONCERN}));
  EXPECT_EQ(unsafe.risk, v1::RISK_LEVEL_HIGH);
}

TEST(Scoring, RefusesWrongCountsAndOutOfRangeAnswers) {
  auto short_phq = ScoreAssessment(v1::ASSESSMENT_INSTRUMENT_PHQ9, Answers({1, 1, 1}),
                                   v1::ADMINISTRATIVE_GENDER_FEMALE);
  EXPECT_EQ(short_phq.status().code(), absl::StatusCode::kInvalidArgument);
  const auto violations =
      CheckResponses(v1::ASSESSMENT_INSTRUMENT_GAD7, Answers({0, 4, 0, -1, 0, 0, 0}));
  ASSERT_EQ(violations.size(), 2u);
  EXPECT_EQ(violations[0].field, "responses[1]");
  EXPECT_EQ(violations[1].field, "responses[3]");
  EXPECT_EQ(violations[0].description, "must be between 0 and 3");
  EXPECT_EQ(CheckResponses(v1::ASSESSMENT_INSTRUMENT_AUDIT_C, Answers({5, 0, 0})).size(), 1u);
  EXPECT_EQ(CheckResponses(v1::ASSESSMENT_INSTRUMENT_READINESS_TO_CHANGE, Answers({0})).size(), 1u);
  EXPECT_EQ(CheckResponses(v1::ASSESSMENT_INSTRUMENT_SOCIAL_NEEDS, Answers({2, 0, 0, 0, 0})).size(), 1u);
  EXPECT_EQ(CheckResponses(v1::ASSESSMENT_INSTRUMENT_UNSPECIFIED, Answers({})).front().field,
            "instrument");
  EXPECT_TRUE(CheckResponses(v1::ASSESSMENT_INSTRUMENT_AUDIT_C, Answers({4, 0, 4})).empty());
}

// ---- State machines: every pair, against tables written out independently here ----

template <typename Enum>
void ExpectExactly(const std::set<std::pair<int, int>>& allowed, int max,
                   absl::Status (*check)(Enum, Enum)) {
  int ok = 0;
  for (int from = 1; from <= max; ++from) {
    for (int to = 1; to <= max; ++to) {
      const absl::Status s = check(static_cast<Enum>(from), static_cast<Enum>(to));
      const bool expected = allowed.count({from, to}) > 0;
      EXPECT_EQ(s.ok(), expected) << from << " -> " << to << ": " << s;
      if (!expected) {
        EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << from << " -> " << to;
      }
      ok += s.ok();
    }
  }
  EXPECT_EQ(ok, static_cast<int>(allowed.size()));
}

TEST(CarePlanStatus, EveryAllowedAndRefusedTransition) {
  enum { D = 1, A, H, R, C, E };  // draft, active, on-hold, revoked, completed, entered-in-error
  const std::set<std::pair<int, int>> allowed = {
      {D, A}, {D, R}, {A, H}, {A, C}, {A, R}, {H, A}, {H, C}, {H, R},
      {D, E}, {A, E}, {H, E}, {R, E}, {C, E}};
  ExpectExactly<v1::CarePlanStatus>(allowed, 6, &CheckCarePlanTransition);
  EXPECT_EQ(CheckCarePlanTransition(v1::CARE_PLAN_STATUS_COMPLETED, v1::CARE_PLAN_STATUS_ACTIVE).message(),
            "cannot move care plan from CARE_PLAN_STATUS_COMPLETED to CARE_PLAN_STATUS_ACTIVE; "
            "allowed: CARE_PLAN_STATUS_ENTERED_IN_ERROR");
}

TEST(GoalLifecycle, EveryAllowedAndRefusedTransition) {
  // proposed, planned, accepted, active, on-hold, completed, cancelled, entered-in-error, rejected
  enum { P = 1, L, Acc, A, H, C, X, E, R };
  const std::set<std::pair<int, int>> allowed = {
      {P, L}, {P, Acc}, {P, A}, {P, R}, {P, X}, {L, Acc}, {L, A}, {L, X}, {Acc, A}, {Acc, X},
      {A, H}, {A, C}, {A, X}, {H, A}, {H, X}, {C, A},
      {P, E}, {L, E}, {Acc, E}, {A, E}, {H, E}, {C, E}, {X, E}, {R, E}};
  ExpectExactly<v1::GoalLifecycleStatus>(allowed, 9, &CheckGoalTransition);
}

TEST(TaskStatus, EveryAllowedAndRefusedTransition) {
  // draft, requested, received, accepted, rejected, ready, cancelled, in-progress, on-hold,
  // failed, completed, entered-in-error
  enum { D = 1, Rq, Rc, Ac, Rj, Rd, X, IP, H, F, C, E };
  const std::set<std::pair<int, int>> allowed = {
      {D, Rq}, {D, Rd}, {D, X},
      {Rq, Rc}, {Rq, Ac}, {Rq, Rj}, {Rq, Rd}, {Rq, X},
      {Rc, Ac}, {Rc, Rj}, {Rc, Rd}, {Rc, X},
      {Ac, Rd}, {Ac, IP}, {Ac, X},
      {Rd, IP}, {Rd, X}, {Rd, F},
      {IP, H}, {IP, C}, {IP, F}, {IP, X},
      {H, IP}, {H, X}, {H, F},
      {D, E}, {Rq, E}, {Rc, E}, {Ac, E}, {Rj, E}, {Rd, E}, {X, E}, {IP, E}, {H, E}, {F, E}, {C, E}};
  ExpectExactly<v1::TaskStatus>(allowed, 12, &CheckTaskTransition);
  for (int s = 1; s <= 12; ++s) {
    const bool terminal = s == C || s == X || s == F || s == Rj || s == E;
    EXPECT_EQ(IsTerminal(static_cast<v1::TaskStatus>(s)), terminal) << s;
  }
}

TEST(ServiceReferralStatus, EveryAllowedAndRefusedTransition) {
  enum { Rq = 1, Au, IP, C, D, X };
  const std::set<std::pair<int, int>> allowed = {{Rq, Au}, {Rq, D}, {Rq, X}, {Au, IP},
                                                 {Au, C},  {Au, X}, {IP, C}, {IP, X}};
  ExpectExactly<v1::ServiceReferralStatus>(allowed, 6, &CheckServiceReferralTransition);
}

// ---- Money ----

common::v1::Money Usd(int64_t cents) {
  common::v1::Money m;
  m.set_currency_code("USD");
  m.set_minor_units(cents);
  return m;
}

TEST(Money, ExactIntegerArithmetic) {
  auto product = MultiplyMoney(Usd(12'345), 7);  // $123.45 x 7
  ASSERT_TRUE(product.ok());
  EXPECT_EQ(product->minor_units(), 86'415);
  EXPECT_EQ(product->currency_code(), "USD");
  // 0.10 x 3 is exactly 0.30 (no binary floating point anywhere).
  EXPECT_EQ(MultiplyMoney(Usd(10), 3)->minor_units(), 30);
  auto sum = AddMoney(Usd(10), Usd(20));
  EXPECT_EQ(sum->minor_units(), 30);
  EXPECT_EQ(AddMoney(common::v1::Money(), Usd(5))->currency_code(), "USD");
  common::v1::Money eur = Usd(1);
  eur.set_currency_code("EUR");
  EXPECT_EQ(AddMoney(Usd(1), eur).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(MultiplyMoney(Usd(INT64_MAX / 2 + 1), 2).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AddMoney(Usd(INT64_MAX), Usd(1)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MultiplyMoney(Usd(1), -1).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- Decide/Evolve through a case ----

common::v1::Actor Actor(const std::string& user, common::v1::Role role = common::v1::ROLE_CASE_MANAGER) {
  common::v1::Actor actor;
  actor.set_user_id(user);
  actor.set_role(role);
  return actor;
}

class CareDeciderTest : public ::testing::Test {
 protected:
  CareDeciderTest() : state_(NewCase("case-1", "tenant-a")) {
    context_.now = absl::FromUnixSeconds(1'767'225'600);  // 2026-01-01
    context_.actor = Actor("cm-1");
    context_.tenant_id = "tenant-a";
    context_.case_id = "case-1";
    context_.program = {"behavioral_health", 50, false};
    v1::OpenCaseRequest open;
    open.mutable_patient()->set_mrn("MRN-1");
    open.mutable_patient()->set_gender(v1::ADMINISTRATIVE_GENDER_MALE);
    open.set_program("behavioral_health");
    open.set_priority(2);
    open.set_acuity(3);
    open.set_initial_status(v1::CASE_STATUS_ACTIVE);
    open.set_team_id("team-1");
    Ok(open);
  }

  absl::StatusOr<std::vector<Event>> Run(const Command& command) {
    auto events = Decide(state_, command, context_);
    if (events.ok()) {
      for (const Event& e : *events) {
        log_.push_back(e);
        state_ = Evolve(std::move(state_), e);
      }
      context_.now += absl::Minutes(1);
    }
    return events;
  }
  std::vector<Event> Ok(const Command& command) {
    auto events = Run(command);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.ok() ? *events : std::vector<Event>{};
  }
  absl::Status Fail(const Command& command) {
    const int64_t version = state_.version();
    auto events = Run(command);
    EXPECT_FALSE(events.ok());
    EXPECT_EQ(state_.version(), version);
    return events.status();
  }

  static v1::RecordAssessmentRequest Assess(v1::AssessmentInstrument i, std::initializer_list<int32_t> a) {
    v1::RecordAssessmentRequest r;
    r.set_instrument(i);
    *r.mutable_responses() = Answers(a);
    return r;
  }
  void Plan(v1::CarePlanStatus status = v1::CARE_PLAN_STATUS_ACTIVE) {
    v1::CreateCarePlanRequest r;
    r.set_title("plan");
    r.add_problems("depression");
    r.add_problems("housing instability");
    r.set_status(status);
    Ok(r);
  }
  std::string Goal(v1::GoalLifecycleStatus status = v1::GOAL_LIFECYCLE_STATUS_ACTIVE) {
    v1::AddGoalRequest r;
    r.set_description("reduce depressive symptoms");
    r.set_measure("PHQ-9 total");
    r.set_target_value("<5");
    r.set_target_date("2026-06-30");
    r.set_problem_id("problem-1");
    r.set_lifecycle_status(status);
    Ok(r);
    return state_.goals(state_.goals_size() - 1).goal_id();
  }
  std::string Member(v1::CareTeamRole role) {
    v1::AddCareTeamMemberRequest r;
    r.set_role(role);
    r.set_name("Home Health Co");
    Ok(r);
    return state_.care_team(state_.care_team_size() - 1).member_id();
  }
  v1::ReferToServiceRequest Referral(const std::string& member, int32_t units = 10, int64_t cents = 12'500) {
    v1::ReferToServiceRequest r;
    r.set_member_id(member);
    r.set_service_type(v1::SERVICE_TYPE_HOME_HEALTH);
    r.set_reason("skilled nursing");
    r.set_requested_units(units);
    *r.mutable_unit_cost() = Usd(cents);
    r.add_shared_information(v1::INFORMATION_CATEGORY_CARE_PLAN);
    return r;
  }
  v1::RecordConsentRequest ConsentFor(const std::string& member) {
    v1::RecordConsentRequest r;
    r.add_member_ids(member);
    r.add_categories(v1::INFORMATION_CATEGORY_CARE_PLAN);
    r.add_categories(v1::INFORMATION_CATEGORY_CLINICAL);
    r.add_purposes(v1::CONSENT_PURPOSE_CARE_COORDINATION);
    r.set_source(v1::CONSENT_SOURCE_SIGNED_FORM);
    return r;
  }

  CaseState state_;
  DecisionContext context_;
  std::vector<Event> log_;
};

TEST_F(CareDeciderTest, HighRiskAssessmentRaisesRiskAndEmitsAnEventEveryTime) {
  auto low = Ok(Assess(v1::ASSESSMENT_INSTRUMENT_PHQ9, {1, 1, 0, 0, 0, 0, 0, 0, 0}));
  ASSERT_EQ(low.size(), 1u);
  EXPECT_EQ(state_.risk_level(), v1::RISK_LEVEL_LOW);
  EXPECT_EQ(state_.assessments(0).band(), v1::ASSESSMENT_BAND_MINIMAL);

  auto high = Ok(Assess(v1::ASSESSMENT_INSTRUMENT_PHQ9, {1, 1, 1, 1, 1, 1, 1, 1, 2}));
  ASSERT_EQ(high.size(), 2u);
  ASSERT_TRUE(high[1].body.has_high_risk_identified());
  const auto& h = high[1].body.high_risk_identified();
  EXPECT_EQ(h.previous_level(), v1::RISK_LEVEL_LOW);
  EXPECT_EQ(h.assessment_id(), "assessment-2");
  EXPECT_EQ(h.program(), "behavioral_health");
  EXPECT_EQ(h.team_id(), "team-1");
  EXPECT_EQ(h.flags(0), v1::ASSESSMENT_FLAG_SUICIDE_RISK);
  EXPECT_EQ(state_.risk_level(), v1::RISK_LEVEL_HIGH);
  EXPECT_EQ(state_.assessments(1).score(), 10);

  // A lower result does not lower the level; a second HIGH result alerts again.
  Ok(Assess(v1::ASSESSMENT_INSTRUMENT_GAD7, {0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(state_.risk_level(), v1::RISK_LEVEL_HIGH);
  auto again = Ok(Assess(v1::ASSESSMENT_INSTRUMENT_SOCIAL_NEEDS, {0, 0, 0, 0, 1}));
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[1].body.high_risk_identified().previous_level(), v1::RISK_LEVEL_HIGH);

  // Only a review lowers it, with a reason.
  v1::ReviewRiskLevelRequest review;
  review.set_risk_level(v1::RISK_LEVEL_MODERATE);
  EXPECT_EQ(Fail(review).code(), absl::StatusCode::kInvalidArgument);
  review.set_reason("safety plan in place, crisis line given");
  // Who may review is the access policy's (ReviewRiskLevel in case_service.proto).
  Ok(review);
  EXPECT_EQ(state_.risk_level(), v1::RISK_LEVEL_MODERATE);
  EXPECT_EQ(Fail(review).code(), absl::StatusCode::kFailedPrecondition);

  // AUDIT-C uses the patient's sex from the case (male: 3 is negative).
  auto audit = Ok(Assess(v1::ASSESSMENT_INSTRUMENT_AUDIT_C, {1, 1, 1}));
  EXPECT_EQ(audit[0].body.assessment_recorded().band(), v1::ASSESSMENT_BAND_SCREEN_NEGATIVE);
  EXPECT_EQ(Fail(Assess(v1::ASSESSMENT_INSTRUMENT_PHQ9, {1})).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CareDeciderTest, GoalsNeedAPlanAndAnOutcomeToComplete) {
  v1::AddGoalRequest early;
  early.set_description("x");
  EXPECT_EQ(Fail(early).code(), absl::StatusCode::kFailedPrecondition);
  Plan();
  EXPECT_EQ(state_.care_plan().problems(1).problem_id(), "problem-2");
  const std::string goal = Goal(v1::GOAL_LIFECYCLE_STATUS_PROPOSED);
  EXPECT_EQ(goal, "goal-1");
  EXPECT_EQ(state_.goals(0).priority(), v1::GOAL_PRIORITY_MEDIUM);

  v1::RecordGoalProgressRequest progress;
  progress.set_goal_id(goal);
  progress.set_achievement_status(v1::GOAL_ACHIEVEMENT_STATUS_IMPROVING);
  progress.set_value("12");
  EXPECT_EQ(Fail(progress).code(), absl::StatusCode::kFailedPrecondition);  // not active yet

  v1::ChangeGoalStatusRequest change;
  change.set_goal_id(goal);
  change.set_status(v1::GOAL_LIFECYCLE_STATUS_ACTIVE);
  Ok(change);
  Ok(progress);
  EXPECT_EQ(state_.goals(0).achievement_status(), v1::GOAL_ACHIEVEMENT_STATUS_IMPROVING);
  ASSERT_EQ(state_.goals(0).progress_size(), 1);
  EXPECT_EQ(state_.goals(0).progress(0).value(), "12");

  change.set_status(v1::GOAL_LIFECYCLE_STATUS_COMPLETED);
  EXPECT_EQ(Fail(change).code(), absl::StatusCode::kFailedPrecondition);  // IMPROVING is no outcome
  change.set_achievement_status(v1::GOAL_ACHIEVEMENT_STATUS_ACHIEVED);
  Ok(change);
  EXPECT_EQ(state_.goals(0).lifecycle_status(), v1::GOAL_LIFECYCLE_STATUS_COMPLETED);
  EXPECT_EQ(state_.goals(0).achievement_status(), v1::GOAL_ACHIEVEMENT_STATUS_ACHIEVED);

  // Cancelling needs a reason; unknown goals are NOT_FOUND.
  const std::string second = Goal();
  v1::ChangeGoalStatusRequest cancel;
  cancel.set_goal_id(second);
  cancel.set_status(v1::GOAL_LIFECYCLE_STATUS_CANCELLED);
  EXPECT_EQ(Fail(cancel).code(), absl::StatusCode::kInvalidArgument);
  cancel.set_goal_id("goal-9");
  cancel.set_reason("r");
  EXPECT_EQ(Fail(cancel).code(), absl::StatusCode::kNotFound);

  // The plan completes only when no goal is open.
  v1::ChangeCarePlanStatusRequest complete;
  complete.set_status(v1::CARE_PLAN_STATUS_COMPLETED);
  const absl::Status refused = Fail(complete);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("goal-2"), std::string::npos);
  cancel.set_goal_id(second);
  Ok(cancel);
  Ok(complete);
  EXPECT_EQ(state_.care_plan().status(), v1::CARE_PLAN_STATUS_COMPLETED);
  EXPECT_EQ(Fail(early).code(), absl::StatusCode::kFailedPrecondition);  // plan no longer open
}

TEST_F(CareDeciderTest, TasksFollowFhirTaskAndOverdueIsDerived) {
  Plan();
  const std::string goal = Goal();
  v1::AddCareTaskRequest add;
  add.set_description("book psychiatry intake");
  add.set_goal_id(goal);
  add.set_owner_id("cm-1");
  add.set_priority(v1::TASK_PRIORITY_URGENT);
  *add.mutable_due_at() = google::protobuf::util::TimeUtil::SecondsToTimestamp(
      absl::ToUnixSeconds(context_.now + absl::Hours(48)));
  Ok(add);
  const v1::CareTask& task = state_.tasks(0);
  EXPECT_EQ(task.task_id(), "task-1");
  EXPECT_EQ(task.status(), v1::TASK_STATUS_REQUESTED);
  EXPECT_TRUE(OverdueTaskIds(state_, context_.now).empty());
  EXPECT_EQ(OverdueTaskIds(state_, context_.now + absl::Hours(49)), std::vector<std::string>{"task-1"});

  v1::ChangeCareTaskStatusRequest change;
  change.set_task_id("task-1");
  change.set_status(v1::TASK_STATUS_COMPLETED);  // requested -> completed skips the work
  EXPECT_EQ(Fail(change).code(), absl::StatusCode::kFailedPrecondition);
  for (auto status : {v1::TASK_STATUS_ACCEPTED, v1::TASK_STATUS_IN_PROGRESS, v1::TASK_STATUS_COMPLETED}) {
    change.set_status(status);
    Ok(change);
  }
  EXPECT_EQ(state_.tasks(0).status(), v1::TASK_STATUS_COMPLETED);
  EXPECT_TRUE(OverdueTaskIds(state_, context_.now + absl::Hours(49)).empty());  // done is not overdue
  change.set_status(v1::TASK_STATUS_FAILED);
  EXPECT_EQ(Fail(change).code(), absl::StatusCode::kFailedPrecondition);

  add.set_goal_id("goal-7");
  EXPECT_EQ(Fail(add).code(), absl::StatusCode::kNotFound);
}

TEST_F(CareDeciderTest, DisclosureNeedsValidConsentOrARecordedOverride) {
  const std::string agency = Member(v1::CARE_TEAM_ROLE_COMMUNITY_SERVICE);
  const std::string daughter = Member(v1::CARE_TEAM_ROLE_FAMILY);
  v1::DiscloseInformationRequest disclose;
  disclose.set_member_id(agency);
  disclose.add_categories(v1::INFORMATION_CATEGORY_CARE_PLAN);
  disclose.set_purpose(v1::CONSENT_PURPOSE_CARE_COORDINATION);
  EXPECT_EQ(Fail(disclose).code(), absl::StatusCode::kFailedPrecondition);

  auto consent = ConsentFor(agency);
  *consent.mutable_expires_at() = google::protobuf::util::TimeUtil::SecondsToTimestamp(
      absl::ToUnixSeconds(context_.now + absl::Hours(24)));
  Ok(consent);
  EXPECT_EQ(state_.care_team(0).consent_ids(0), "consent-1");
  Ok(disclose);
  EXPECT_EQ(state_.disclosures(0).consent_id(), "consent-1");

  // Not covered: another category, another purpose, another member.
  disclose.add_categories(v1::INFORMATION_CATEGORY_SUBSTANCE_USE);
  EXPECT_EQ(Fail(disclose).code(), absl::StatusCode::kFailedPrecondition);
  disclose.clear_categories();
  disclose.add_categories(v1::INFORMATION_CATEGORY_CLINICAL);
  disclose.set_purpose(v1::CONSENT_PURPOSE_PAYMENT);
  EXPECT_EQ(Fail(disclose).code(), absl::StatusCode::kFailedPrecondition);
  disclose.set_purpose(v1::CONSENT_PURPOSE_CARE_COORDINATION);
  disclose.set_member_id(daughter);
  EXPECT_EQ(Fail(disclose).code(), absl::StatusCode::kFailedPrecondition);
  disclose.set_member_id("member-9");
  EXPECT_EQ(Fail(disclose).code(), absl::StatusCode::kNotFound);
  disclose.set_member_id(agency);
  Ok(disclose);

  // Expired: refused.
  context_.now += absl::Hours(25);
  EXPECT_EQ(Fail(disclose).code(), absl::StatusCode::kFailedPrecondition);
  // Override: with a reason, and it is recorded (who may disclose at all is the access
  // policy's: DiscloseInformation in case_service.proto).
  disclose.mutable_consent_override()->set_reason("imminent danger: crisis team needs the plan");
  auto overridden = Ok(disclose);
  ASSERT_EQ(overridden.size(), 1u);
  EXPECT_TRUE(overridden[0].body.information_disclosed().consent_id().empty());
  EXPECT_EQ(state_.disclosures(2).consent_override().reason(),
            "imminent danger: crisis team needs the plan");

  // Revoked: refused again without override.
  Ok(ConsentFor(agency));
  disclose.clear_consent_override();
  Ok(disclose);
  v1::RevokeConsentRequest revoke;
  revoke.set_consent_id("consent-2");
  revoke.set_reason("patient withdrew consent");
  Ok(revoke);
  // The expired consent-1 stays listed (expiry is checked at use); consent-2 is gone.
  EXPECT_EQ(std::vector<std::string>(state_.care_team(0).consent_ids().begin(),
                                     state_.care_team(0).consent_ids().end()),
            std::vector<std::string>{"consent-1"});
  EXPECT_EQ(Fail(disclose).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Fail(revoke).code(), absl::StatusCode::kFailedPrecondition);

  // Removed members cannot be disclosed to, even with an override.
  v1::RemoveCareTeamMemberRequest remove;
  remove.set_member_id(agency);
  remove.set_reason("agency closed");
  Ok(remove);
  disclose.mutable_consent_override()->set_reason("x");
  EXPECT_EQ(Fail(disclose).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CareDeciderTest, ReferralsNeedConsentAndCostIsExact) {
  const std::string home_health = Member(v1::CARE_TEAM_ROLE_PROVIDER);
  const std::string payer = Member(v1::CARE_TEAM_ROLE_PAYER);
  EXPECT_EQ(Fail(Referral(home_health)).code(), absl::StatusCode::kFailedPrecondition);  // no consent
  EXPECT_EQ(Fail(Referral(payer)).code(), absl::StatusCode::kFailedPrecondition);  // not a provider
  Ok(ConsentFor(home_health));
  auto referred = Ok(Referral(home_health, 10, 12'345));
  ASSERT_EQ(referred.size(), 2u);
  EXPECT_EQ(referred[1].body.information_disclosed().referral_id(), "referral-1");
  EXPECT_EQ(state_.service_referrals(0).status(), v1::SERVICE_REFERRAL_STATUS_REQUESTED);

  // A second referral in another currency is refused (one currency per case).
  auto eur = Referral(home_health);
  eur.mutable_unit_cost()->set_currency_code("EUR");
  EXPECT_EQ(Fail(eur).code(), absl::StatusCode::kFailedPrecondition);

  v1::RecordServiceDeliveryRequest deliver;
  deliver.set_referral_id("referral-1");
  deliver.set_units(3);
  deliver.set_delivered_on("2025-12-30");
  EXPECT_EQ(Fail(deliver).code(), absl::StatusCode::kFailedPrecondition);  // not authorised

  v1::AuthorizeServiceReferralRequest authorize;
  authorize.set_referral_id("referral-1");
  authorize.set_authorized_units(8);
  authorize.set_authorization_number("AUTH-77");
  Ok(authorize);
  EXPECT_EQ(state_.authorized_cost().minor_units(), 8 * 12'345);

  Ok(deliver);
  EXPECT_EQ(state_.service_referrals(0).status(), v1::SERVICE_REFERRAL_STATUS_IN_PROGRESS);
  deliver.set_units(5);
  Ok(deliver);
  EXPECT_EQ(state_.service_referrals(0).delivered_units(), 8);
  EXPECT_EQ(state_.delivered_cost().minor_units(), 98'760);  // 8 x $123.45 = $987.60 exactly
  EXPECT_EQ(state_.delivered_cost().currency_code(), "USD");
  deliver.set_units(1);
  const absl::Status over = Fail(deliver);
  EXPECT_EQ(over.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(over.message(), "delivery exceeds the authorisation: 8 delivered + 1 > 8 authorised units");

  v1::ChangeServiceReferralStatusRequest done;
  done.set_referral_id("referral-1");
  done.set_status(v1::SERVICE_REFERRAL_STATUS_COMPLETED);
  Ok(done);
  done.set_status(v1::SERVICE_REFERRAL_STATUS_CANCELLED);
  done.set_reason("r");
  EXPECT_EQ(Fail(done).code(), absl::StatusCode::kFailedPrecondition);

  // A denied referral's authorisation does not count.
  Ok(Referral(home_health, 4, 1'000));
  authorize.set_referral_id("referral-2");
  authorize.set_authorized_units(4);
  Ok(authorize);
  EXPECT_EQ(state_.authorized_cost().minor_units(), 8 * 12'345 + 4'000);
  done.set_referral_id("referral-2");
  done.set_status(v1::SERVICE_REFERRAL_STATUS_CANCELLED);
  Ok(done);
  EXPECT_EQ(state_.authorized_cost().minor_units(), 8 * 12'345);

  // Closure carries the delivered cost and the goals' outcome.
  v1::RequestClosureRequest close;
  close.set_reason(v1::CLOSURE_REASON_GOALS_MET);
  auto closed = Ok(close);
  ASSERT_EQ(closed.size(), 2u);
  const auto& facts = closed[1].body.case_closed();
  EXPECT_EQ(facts.delivered_cost().minor_units(), 98'760);
  EXPECT_EQ(facts.goals_total(), 0);
  // A closed case takes no clinical changes.
  EXPECT_EQ(Fail(Assess(v1::ASSESSMENT_INSTRUMENT_GAD7, {0, 0, 0, 0, 0, 0, 0})).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(CareDeciderTest, ReplayThroughTheEnvelopeGivesTheSameState) {
  Plan();
  Goal();
  const std::string member = Member(v1::CARE_TEAM_ROLE_PROVIDER);
  Ok(ConsentFor(member));
  Ok(Referral(member));
  Ok(Assess(v1::ASSESSMENT_INSTRUMENT_PHQ9, {3, 3, 3, 3, 3, 3, 2, 0, 0}));
  CaseState replayed = NewCase("case-1", "tenant-a");
  for (const Event& e : log_) {
    common::v1::EventEnvelope envelope;
    ToEnvelope(e, &envelope);
    auto decoded = FromEnvelope(envelope);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    replayed = Evolve(std::move(replayed), *decoded);
  }
  EXPECT_EQ(replayed.SerializeAsString(), state_.SerializeAsString());
  EXPECT_EQ(replayed.risk_level(), v1::RISK_LEVEL_HIGH);
}

}  // namespace
}  // namespace clinical::case_service

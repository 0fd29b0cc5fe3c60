// Pure rules of the clinical content: instrument scoring, state machines, consent, money.
#include "care_rules.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/time_util.h"

namespace clinical::case_service {
namespace {

using google::protobuf::util::TimeUtil;

struct Shape {
  int items = 0;
  int32_t low = 0;
  int32_t high = 0;
};

Shape ShapeOf(v1::AssessmentInstrument instrument) {
  switch (instrument) {
    case v1::ASSESSMENT_INSTRUMENT_PHQ9: return {9, 0, 3};
    case v1::ASSESSMENT_INSTRUMENT_GAD7: return {7, 0, 3};
    case v1::ASSESSMENT_INSTRUMENT_AUDIT_C: return {3, 0, 4};
    case v1::ASSESSMENT_INSTRUMENT_READINESS_TO_CHANGE: return {1, 1, 5};
    case v1::ASSESSMENT_INSTRUMENT_SOCIAL_NEEDS: return {5, 0, 1};
    default: return {};
  }
}

int32_t Sum(const google::protobuf::RepeatedField<int32_t>& responses) {
  int32_t sum = 0;
  for (int32_t r : responses) sum += r;
  return sum;
}

template <typename Status, typename NameFn>
absl::Status CheckTable(const std::vector<Transition<Status>>& table, Status from, Status to,
                        const char* what, NameFn name) {
  if (from == to) {
    return absl::FailedPreconditionError(absl::StrCat(what, " is already ", name(to)));
  }
  std::vector<std::string> allowed;
  for (const auto& t : table) {
    if (t.from == from && t.to == to) return absl::OkStatus();
    if (t.from == from) allowed.push_back(name(t.to));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "cannot move ", what, " from ", name(from), " to ", name(to), "; allowed: ",
      allowed.empty() ? std::string("none (final)") : absl::StrJoin(allowed, ", ")));
}

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(t));
}

}  // namespace

std::vector<ResponseViolation> CheckResponses(v1::AssessmentInstrument instrument,
                                              const google::protobuf::RepeatedField<int32_t>& responses) {
  std::vector<ResponseViolation> violations;
  const Shape shape = ShapeOf(instrument);
  if (shape.items == 0) {
    violations.push_back({"instrument", instrument == 0 ? "is required" : "is not a known value"});
    return violations;
  }
  if (responses.size() != shape.items) {
    violations.push_back({"responses", absl::StrCat("must have exactly ", shape.items,
                                                    " answers for this instrument")});
    return violations;
  }
  for (int i = 0; i < responses.size(); ++i) {
    if (responses[i] < shape.low || responses[i] > shape.high) {
      violations.push_back({absl::StrCat("responses[", i, "]"),
                            absl::StrCat("must be between ", shape.low, " and ", shape.high)});
    }
  }
  return violations;
}

absl::StatusOr<AssessmentResult> ScoreAssessment(
    v1::AssessmentInstrument instrument, const google::protobuf::RepeatedField<int32_t>& responses,
    v1::AdministrativeGender sex) {
  if (auto violations = CheckResponses(instrument, responses); !violations.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(violations.front().field, " ", violations.front().description));
  }
  AssessmentResult result;
  result.score = Sum(responses);
  const int32_t s = result.score;
  switch (instrument) {
    case v1::ASSESSMENT_INSTRUMENT_PHQ9:
      result.band = s <= 4    ? v1::ASSESSMENT_BAND_MINIMAL
                    : s <= 9  ? v1::ASSESSMENT_BAND_MILD
                    : s <= 14 ? v1::ASSESSMENT_BAND_MODERATE
                    : s <= 19 ? v1::ASSESSMENT_BAND_MODERATELY_SEVERE
                              : v1::ASSESSMENT_BAND_SEVERE;
      if (responses[8] > 0) result.flags.push_back(v1::ASSESSMENT_FLAG_SUICIDE_RISK);
      if (result.band == v1::ASSESSMENT_BAND_SEVERE) {
        result.flags.push_back(v1::ASSESSMENT_FLAG_SEVERE_SYMPTOMS);
      }
      result.risk = !result.flags.empty() ? v1::RISK_LEVEL_HIGH
                    : (result.band == v1::ASSESSMENT_BAND_MODERATE ||
                       result.band == v1::ASSESSMENT_BAND_MODERATELY_SEVERE)
                        ? v1::RISK_LEVEL_MODERATE
                        : v1::RISK_LEVEL_LOW;
      break;
    case v1::ASSESSMENT_INSTRUMENT_GAD7:
      result.band = s <= 4    ? v1::ASSESSMENT_BAND_MINIMAL
                    : s <= 9  ? v1::ASSESSMENT_BAND_MILD
                    : s <= 14 ? v1::ASSESSMENT_BAND_MODERATE
                              : v1::ASSESSMENT_BAND_SEVERE;
      if (result.band == v1::ASSESSMENT_BAND_SEVERE) {
        result.flags.push_back(v1::ASSESSMENT_FLAG_SEVERE_SYMPTOMS);
      }
      result.risk = result.band == v1::ASSESSMENT_BAND_SEVERE     ? v1::RISK_LEVEL_HIGH
                    : result.band == v1::ASSESSMENT_BAND_MODERATE ? v1::RISK_LEVEL_MODERATE
                                                                  : v1::RISK_LEVEL_LOW;
      break;
    case v1::ASSESSMENT_INSTRUMENT_AUDIT_C: {
      const int32_t cutoff = sex == v1::ADMINISTRATIVE_GENDER_MALE ? 4 : 3;
      const bool positive = s >= cutoff;
      result.band = positive ? v1::ASSESSMENT_BAND_SCREEN_POSITIVE : v1::ASSESSMENT_BAND_SCREEN_NEGATIVE;
      if (positive) result.flags.push_back(v1::ASSESSMENT_FLAG_POSITIVE_ALCOHOL_SCREEN);
      result.risk = positive ? v1::RISK_LEVEL_MODERATE : v1::RISK_LEVEL_LOW;
      break;
    }
    case v1::ASSESSMENT_INSTRUMENT_READINESS_TO_CHANGE:
      result.band = static_cast<v1::AssessmentBand>(v1::ASSESSMENT_BAND_PRECONTEMPLATION + s - 1);
      result.risk = v1::RISK_LEVEL_UNSPECIFIED;
      break;
    case v1::ASSESSMENT_INSTRUMENT_SOCIAL_NEEDS: {
      static constexpr v1::AssessmentFlag kNeeds[] = {
          v1::ASSESSMENT_FLAG_HOUSING_NEED, v1::ASSESSMENT_FLAG_FOOD_NEED,
          v1::ASSESSMENT_FLAG_TRANSPORTATION_NEED, v1::ASSESSMENT_FLAG_UTILITIES_NEED,
          v1::ASSESSMENT_FLAG_SAFETY_CONCERN};
      for (int i = 0; i < 5; ++i) {
        if (responses[i] == 1) result.flags.push_back(kNeeds[i]);
      }
      result.band = s == 0 ? v1::ASSESSMENT_BAND_NO_NEEDS : v1::ASSESSMENT_BAND_NEEDS_IDENTIFIED;
      result.risk = responses[4] == 1 ? v1::RISK_LEVEL_HIGH
                    : s > 0           ? v1::RISK_LEVEL_MODERATE
                                      : v1::RISK_LEVEL_LOW;
      break;
    }
    default:
      return absl::InvalidArgumentError("instrument is not a known value");
  }
  return result;
}

// ---- State machines ----

const std::vector<Transition<v1::CarePlanStatus>>& CarePlanTransitions() {
  using P = v1::CarePlanStatus;
  static const auto* table = [] {
    auto* t = new std::vector<Transition<P>>{
        {v1::CARE_PLAN_STATUS_DRAFT, v1::CARE_PLAN_STATUS_ACTIVE},
        {v1::CARE_PLAN_STATUS_DRAFT, v1::CARE_PLAN_STATUS_REVOKED},
        {v1::CARE_PLAN_STATUS_ACTIVE, v1::CARE_PLAN_STATUS_ON_HOLD},
        {v1::CARE_PLAN_STATUS_ACTIVE, v1::CARE_PLAN_STATUS_COMPLETED},
        {v1::CARE_PLAN_STATUS_ACTIVE, v1::CARE_PLAN_STATUS_REVOKED},
        {v1::CARE_PLAN_STATUS_ON_HOLD, v1::CARE_PLAN_STATUS_ACTIVE},
        {v1::CARE_PLAN_STATUS_ON_HOLD, v1::CARE_PLAN_STATUS_COMPLETED},
        {v1::CARE_PLAN_STATUS_ON_HOLD, v1::CARE_PLAN_STATUS_REVOKED},
    };
    for (P from : {v1::CARE_PLAN_STATUS_DRAFT, v1::CARE_PLAN_STATUS_ACTIVE, v1::CARE_PLAN_STATUS_ON_HOLD,
                   v1::CARE_PLAN_STATUS_REVOKED, v1::CARE_PLAN_STATUS_COMPLETED}) {
      t->push_back({from, v1::CARE_PLAN_STATUS_ENTERED_IN_ERROR});
    }
    return t;
  }();
  return *table;
}

absl::Status CheckCarePlanTransition(v1::CarePlanStatus from, v1::CarePlanStatus to) {
  return CheckTable(CarePlanTransitions(), from, to, "care plan",
                    [](v1::CarePlanStatus s) { return v1::CarePlanStatus_Name(s); });
}

const std::vector<Transition<v1::GoalLifecycleStatus>>& GoalTransitions() {
  using G = v1::GoalLifecycleStatus;
  static const auto* table = [] {
    constexpr G kProposed = v1::GOAL_LIFECYCLE_STATUS_PROPOSED, kPlanned = v1::GOAL_LIFECYCLE_STATUS_PLANNED,
                kAccepted = v1::GOAL_LIFECYCLE_STATUS_ACCEPTED, kActive = v1::GOAL_LIFECYCLE_STATUS_ACTIVE,
                kOnHold = v1::GOAL_LIFECYCLE_STATUS_ON_HOLD, kCompleted = v1::GOAL_LIFECYCLE_STATUS_COMPLETED,
                kCancelled = v1::GOAL_LIFECYCLE_STATUS_CANCELLED,
                kError = v1::GOAL_LIFECYCLE_STATUS_ENTERED_IN_ERROR,
                kRejected = v1::GOAL_LIFECYCLE_STATUS_REJECTED;
    auto* t = new std::vector<Transition<G>>{
        {kProposed, kPlanned}, {kProposed, kAccepted}, {kProposed, kActive},
        {kProposed, kRejected}, {kProposed, kCancelled},
        {kPlanned, kAccepted}, {kPlanned, kActive}, {kPlanned, kCancelled},
        {kAccepted, kActive}, {kAccepted, kCancelled},
        {kActive, kOnHold}, {kActive, kCompleted}, {kActive, kCancelled},
        {kOnHold, kActive}, {kOnHold, kCancelled},
        // A completed goal that needs work again (e.g. relapse) becomes active again.
        {kCompleted, kActive},
    };
    for (G from : {kProposed, kPlanned, kAccepted, kActive, kOnHold, kCompleted, kCancelled, kRejected}) {
      t->push_back({from, kError});
    }
    return t;
  }();
  return *table;
}

absl::Status CheckGoalTransition(v1::GoalLifecycleStatus from, v1::GoalLifecycleStatus to) {
  return CheckTable(GoalTransitions(), from, to, "goal",
                    [](v1::GoalLifecycleStatus s) { return v1::GoalLifecycleStatus_Name(s); });
}

const std::vector<Transition<v1::TaskStatus>>& TaskTransitions() {
  using T = v1::TaskStatus;
  static const auto* table = [] {
    constexpr T kDraft = v1::TASK_STATUS_DRAFT, kRequested = v1::TASK_STATUS_REQUESTED,
                kReceived = v1::TASK_STATUS_RECEIVED, kAccepted = v1::TASK_STATUS_ACCEPTED,
                kRejected = v1::TASK_STATUS_REJECTED, kReady = v1::TASK_STATUS_READY,
                kCancelled = v1::TASK_STATUS_CANCELLED, kInProgress = v1::TASK_STATUS_IN_PROGRESS,
                kOnHold = v1::TASK_STATUS_ON_HOLD, kFailed = v1::TASK_STATUS_FAILED,
                kCompleted = v1::TASK_STATUS_COMPLETED, kError = v1::TASK_STATUS_ENTERED_IN_ERROR;
    auto* t = new std::vector<Transition<T>>{
        {kDraft, kRequested}, {kDraft, kReady}, {kDraft, kCancelled},
        {kRequested, kReceived}, {kRequested, kAccepted}, {kRequested, kRejected},
        {kRequested, kReady}, {kRequested, kCancelled},
        {kReceived, kAccepted}, {kReceived, kRejected}, {kReceived, kReady}, {kReceived, kCancelled},
        {kAccepted, kReady}, {kAccepted, kInProgress}, {kAccepted, kCancelled},
        {kReady, kInProgress}, {kReady, kCancelled}, {kReady, kFailed},
        {kInProgress, kOnHold}, {kInProgress, kCompleted}, {kInProgress, kFailed},
        {kInProgress, kCancelled},
        {kOnHold, kInProgress}, {kOnHold, kCancelled}, {kOnHold, kFailed},
    };
    for (T from : {kDraft, kRequested, kReceived, kAccepted, kRejected, kReady, kCancelled,
                   kInProgress, kOnHold, kFailed, kCompleted}) {
      t->push_back({from, kError});
    }
    return t;
  }();
  return *table;
}

absl::Status CheckTaskTransition(v1::TaskStatus from, v1::TaskStatus to) {
  return CheckTable(TaskTransitions(), from, to, "task",
                    [](v1::TaskStatus s) { return v1::TaskStatus_Name(s); });
}

bool IsTerminal(v1::TaskStatus status) {
  return status == v1::TASK_STATUS_COMPLETED || status == v1::TASK_STATUS_CANCELLED ||
         status == v1::TASK_STATUS_FAILED || status == v1::TASK_STATUS_REJECTED ||
         status == v1::TASK_STATUS_ENTERED_IN_ERROR;
}

const std::vector<Transition<v1::ServiceReferralStatus>>& ServiceReferralTransitions() {
  using R = v1::ServiceReferralStatus;
  static const auto* table = new std::vector<Transition<R>>{
      {v1::SERVICE_REFERRAL_STATUS_REQUESTED, v1::SERVICE_REFERRAL_STATUS_AUTHORIZED},
      {v1::SERVICE_REFERRAL_STATUS_REQUESTED, v1::SERVICE_REFERRAL_STATUS_DENIED},
      {v1::SERVICE_REFERRAL_STATUS_REQUESTED, v1::SERVICE_REFERRAL_STATUS_CANCELLED},
      {v1::SERVICE_REFERRAL_STATUS_AUTHORIZED, v1::SERVICE_REFERRAL_STATUS_IN_PROGRESS},
      {v1::SERVICE_REFERRAL_STATUS_AUTHORIZED, v1::SERVICE_REFERRAL_STATUS_COMPLETED},
      {v1::SERVICE_REFERRAL_STATUS_AUTHORIZED, v1::SERVICE_REFERRAL_STATUS_CANCELLED},
      {v1::SERVICE_REFERRAL_STATUS_IN_PROGRESS, v1::SERVICE_REFERRAL_STATUS_COMPLETED},
      {v1::SERVICE_REFERRAL_STATUS_IN_PROGRESS, v1::SERVICE_REFERRAL_STATUS_CANCELLED},
  };
  return *table;
}

absl::Status CheckServiceReferralTransition(v1::ServiceReferralStatus from,
                                            v1::ServiceReferralStatus to) {
  return CheckTable(ServiceReferralTransitions(), from, to, "service referral",
                    [](v1::ServiceReferralStatus s) { return v1::ServiceReferralStatus_Name(s); });
}

std::vector<std::string> OverdueTaskIds(const v1::Case& state, absl::Time now) {
  std::vector<std::string> overdue;
  for (const auto& task : state.tasks()) {
    if (task.has_due_at() && ToTime(task.due_at()) < now && !IsTerminal(task.status())) {
      overdue.push_back(task.task_id());
    }
  }
  return overdue;
}

// ---- Consent ----

absl::StatusOr<std::string> FindValidConsent(const v1::Case& state, const std::string& member_id,
                                             const google::protobuf::RepeatedField<int>& categories,
                                             v1::ConsentPurpose purpose, absl::Time now) {
  bool active_member = false;
  for (const auto& member : state.care_team()) {
    if (member.member_id() == member_id && member.active()) active_member = true;
  }
  if (!active_member) {
    return absl::FailedPreconditionError(
        absl::StrCat("no active care team member ", member_id, " on this case"));
  }
  for (const auto& consent : state.consents()) {
    if (consent.revoked()) continue;
    if (consent.has_expires_at() && ToTime(consent.expires_at()) <= now) continue;
    const auto& members = consent.member_ids();
    if (std::find(members.begin(), members.end(), member_id) == members.end()) continue;
    const auto& purposes = consent.purposes();
    if (std::find(purposes.begin(), purposes.end(), purpose) == purposes.end()) continue;
    bool all = true;
    for (int category : categories) {
      const auto& covered = consent.categories();
      if (std::find(covered.begin(), covered.end(), category) == covered.end()) all = false;
    }
    if (all) return consent.consent_id();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "no valid consent covers sharing this information with ", member_id,
      " for this purpose; record a consent or give consent_override.reason"));
}

// ---- Money ----

absl::StatusOr<common::v1::Money> MultiplyMoney(const common::v1::Money& unit, int64_t units) {
  if (units < 0) return absl::InvalidArgumentError("units must not be negative");
  int64_t product = 0;
  if (__builtin_mul_overflow(unit.minor_units(), units, &product)) {
    return absl::InvalidArgumentError("cost is out of range");
  }
  common::v1::Money result;
  result.set_currency_code(unit.currency_code());
  result.set_minor_units(product);
  return result;
}

absl::StatusOr<common::v1::Money> AddMoney(const common::v1::Money& a, const common::v1::Money& b) {
  if (!a.currency_code().empty() && !b.currency_code().empty() &&
      a.currency_code() != b.currency_code()) {
    return absl::FailedPreconditionError(
        absl::StrCat("currency ", b.currency_code(), " differs from the case's ", a.currency_code()));
  }
  int64_t sum = 0;
  if (__builtin_add_overflow(a.minor_units(), b.minor_units(), &sum)) {
    return absl::InvalidArgumentError("cost is out of range");
  }
  common::v1::Money result;
  result.set_currency_code(a.currency_code().empty() ? b.currency_code() : a.currency_code());
  result.set_minor_units(sum);
  return result;
}

absl::StatusOr<CaseCost> CostOf(const v1::Case& state) {
  CaseCost cost;
  for (const auto& referral : state.service_referrals()) {
    if (referral.status() != v1::SERVICE_REFERRAL_STATUS_DENIED &&
        referral.status() != v1::SERVICE_REFERRAL_STATUS_CANCELLED) {
      auto authorized = MultiplyMoney(referral.unit_cost(), referral.authorized_units());
      if (!authorized.ok()) return authorized.status();
      auto sum = AddMoney(cost.authorized, *authorized);
      if (!sum.ok()) return sum.status();
      cost.authorized = *sum;
    }
    for (const auto& delivery : referral.deliveries()) {
      auto sum = AddMoney(cost.delivered, delivery.cost());
      if (!sum.ok()) return sum.status();
      cost.delivered = *sum;
    }
  }
  return cost;
}

GoalTally TallyGoals(const v1::Case& state) {
  GoalTally tally;
  for (const auto& goal : state.goals()) {
    if (goal.lifecycle_status() == v1::GOAL_LIFECYCLE_STATUS_ENTERED_IN_ERROR) continue;
    ++tally.total;
    if (goal.achievement_status() == v1::GOAL_ACHIEVEMENT_STATUS_ACHIEVED ||
        goal.achievement_status() == v1::GOAL_ACHIEVEMENT_STATUS_SUSTAINING) {
      ++tally.achieved;
    }
  }
  return tally;
}

}  // namespace clinical::case_service

#pragma once

// The clinical content of a case (issue #5): assessments, care plan, goals, tasks, care
// team, consent, services and cost. Same aggregate as the case lifecycle (see
// docs/case-service.md, "Clinical content"): the rules below read the whole case (the
// patient's sex for AUDIT-C, the care team for consent, the referrals for one currency),
// and a risk result, a consent check and the disclosure it allows must be decided
// atomically against one version.
//
// Everything here is pure: no I/O, no clock (time comes in as an argument).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/case/v1/case.pb.h"
#include "clinical/case/v1/case_service.pb.h"
#include "clinical/case/v1/events.pb.h"
#include "clinical/common/v1/types.pb.h"
#include "google/protobuf/repeated_field.h"

namespace clinical::case_service {

namespace v1 = ::clinical::case_::v1;

// ---- Assessment scoring ----

struct ResponseViolation {
  std::string field;        // e.g. "responses[8]" or "responses"
  std::string description;  // never the value
};

// Checks the number of answers and each answer's range for the instrument.
std::vector<ResponseViolation> CheckResponses(v1::AssessmentInstrument instrument,
                                              const google::protobuf::RepeatedField<int32_t>& responses);

struct AssessmentResult {
  int32_t score = 0;
  v1::AssessmentBand band = v1::ASSESSMENT_BAND_UNSPECIFIED;
  std::vector<v1::AssessmentFlag> flags;
  // UNSPECIFIED: the instrument says nothing about risk (readiness to change).
  v1::RiskLevel risk = v1::RISK_LEVEL_UNSPECIFIED;
};

// Scores an instrument as publicly documented:
//   PHQ-9  sum 0-27; 0-4 minimal, 5-9 mild, 10-14 moderate, 15-19 moderately severe,
//          20-27 severe; item 9 > 0 = SUICIDE_RISK. Risk: suicide risk or severe = HIGH,
//          moderate / moderately severe = MODERATE, else LOW.
//   GAD-7  sum 0-21; 0-4 minimal, 5-9 mild, 10-14 moderate, 15-21 severe. Risk: severe =
//          HIGH, moderate = MODERATE, else LOW.
//   AUDIT-C sum 0-12; positive >= 4 for men, >= 3 for women (and, conservatively, for
//          any other or unknown sex). Positive = MODERATE risk, else LOW.
//   READINESS_TO_CHANGE stage 1-5 -> band PRECONTEMPLATION..MAINTENANCE, score = stage,
//          no risk.
//   SOCIAL_NEEDS 5 yes/no items; score = number of needs; a flag per need; safety = HIGH,
//          any other need = MODERATE, none = LOW.
// INVALID_ARGUMENT when CheckResponses finds anything.
absl::StatusOr<AssessmentResult> ScoreAssessment(
    v1::AssessmentInstrument instrument, const google::protobuf::RepeatedField<int32_t>& responses,
    v1::AdministrativeGender sex);

// ---- State machines (data + check) ----

template <typename Status>
struct Transition {
  Status from;
  Status to;
};

// FHIR CarePlan.status: draft -> active/revoked; active -> on-hold/completed/revoked;
// on-hold -> active/completed/revoked; entered-in-error from any other status.
const std::vector<Transition<v1::CarePlanStatus>>& CarePlanTransitions();
absl::Status CheckCarePlanTransition(v1::CarePlanStatus from, v1::CarePlanStatus to);

// FHIR Goal.lifecycleStatus (table in docs/case-service.md).
const std::vector<Transition<v1::GoalLifecycleStatus>>& GoalTransitions();
absl::Status CheckGoalTransition(v1::GoalLifecycleStatus from, v1::GoalLifecycleStatus to);

// FHIR Task.status (the FHIR Task state machine; table in docs/case-service.md).
const std::vector<Transition<v1::TaskStatus>>& TaskTransitions();
absl::Status CheckTaskTransition(v1::TaskStatus from, v1::TaskStatus to);
// completed, cancelled, failed, rejected, entered-in-error.
bool IsTerminal(v1::TaskStatus status);

// COMPLETED, DENIED, CANCELLED are final; REQUESTED -> AUTHORIZED/DENIED/CANCELLED;
// AUTHORIZED -> IN_PROGRESS (by a delivery)/COMPLETED/CANCELLED; IN_PROGRESS ->
// COMPLETED/CANCELLED.
const std::vector<Transition<v1::ServiceReferralStatus>>& ServiceReferralTransitions();
absl::Status CheckServiceReferralTransition(v1::ServiceReferralStatus from,
                                            v1::ServiceReferralStatus to);

// Tasks due before `now` and not in a terminal status, by id. Derivable from events alone
// (CareTaskAdded carries due_at, CareTaskStatusChanged the status).
std::vector<std::string> OverdueTaskIds(const v1::Case& state, absl::Time now);

// ---- Consent ----

// The id of an unrevoked, unexpired consent naming the (active) member, every category and
// the purpose; FAILED_PRECONDITION (naming the member id only) when there is none.
absl::StatusOr<std::string> FindValidConsent(const v1::Case& state, const std::string& member_id,
                                             const google::protobuf::RepeatedField<int>& categories,
                                             v1::ConsentPurpose purpose, absl::Time now);

// ---- Money (exact, integer minor units) ----

// unit x units; INVALID_ARGUMENT on overflow or negative units.
absl::StatusOr<common::v1::Money> MultiplyMoney(const common::v1::Money& unit, int64_t units);
// a + b; FAILED_PRECONDITION on a currency mismatch, INVALID_ARGUMENT on overflow. An
// empty currency (a zero Money) adopts the other's.
absl::StatusOr<common::v1::Money> AddMoney(const common::v1::Money& a, const common::v1::Money& b);

struct CaseCost {
  // authorised units x unit cost over referrals not denied or cancelled.
  common::v1::Money authorized;
  // Sum of the deliveries' costs.
  common::v1::Money delivered;
};
// Recomputes a case's cost from its referrals (what evolve stores in the state).
absl::StatusOr<CaseCost> CostOf(const v1::Case& state);

// Goals counted at closure: not entered-in-error; achieved = ACHIEVED or SUSTAINING.
struct GoalTally {
  int32_t total = 0;
  int32_t achieved = 0;
};
GoalTally TallyGoals(const v1::Case& state);

}  // namespace clinical::case_service

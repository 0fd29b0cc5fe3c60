#pragma once

// The Case aggregate's rules as pure functions (the Decider shape, DESIGN.md):
//
//   Decide(state, command, context) -> events | error
//   Evolve(state, event)            -> state
//
// No I/O, no clock, no randomness: the time, the actor, the program's rules and the
// caseload figures come in through DecisionContext, so every rule is a plain unit test.
// Errors are absl::Status with the platform's meanings; messages never carry patient data
// (only statuses, stages, ids of notes/escalations and numbers).
//
// Commands are the API's request messages: the domain reads their business fields and
// ignores command_id / expected_version, which the application layer handles.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/case/v1/case.pb.h"
#include "clinical/case/v1/case_service.pb.h"
#include "clinical/case/v1/events.pb.h"
#include "clinical/common/v1/envelope.pb.h"
#include "clinical/common/v1/types.pb.h"

namespace clinical::case_service {

namespace v1 = ::clinical::case_::v1;

using CaseState = v1::Case;

// One case of a bulk reassignment, already placed by Distribute().
struct BulkReassignOne {
  std::string case_manager_id;
  std::string bulk_reassignment_id;
  std::string reason;
};

using Command =
    std::variant<v1::OpenCaseRequest, v1::ChangeCaseStatusRequest, v1::ChangeCaseStageRequest,
                 v1::ReprioritizeCaseRequest, v1::AssignCaseRequest, v1::AcceptAssignmentRequest,
                 v1::DeclineAssignmentRequest, v1::TransferCaseRequest, BulkReassignOne,
                 v1::DelegateTasksRequest, v1::AddNoteRequest, v1::AmendNoteRequest,
                 v1::MarkNoteEnteredInErrorRequest, v1::PutCaseOnHoldRequest,
                 v1::EscalateCaseRequest, v1::ResolveEscalationRequest,
                 v1::RequestClosureRequest, v1::ApproveClosureRequest, v1::RejectClosureRequest,
                 v1::ReopenCaseRequest, v1::CancelCaseRequest, v1::MarkCaseEnteredInErrorRequest,
                 // Clinical content (care_decider.cc).
                 v1::RecordAssessmentRequest, v1::ReviewRiskLevelRequest, v1::CreateCarePlanRequest,
                 v1::ChangeCarePlanStatusRequest, v1::AddGoalRequest, v1::ChangeGoalStatusRequest,
                 v1::RecordGoalProgressRequest, v1::AddCareTaskRequest,
                 v1::ChangeCareTaskStatusRequest, v1::AddCareTeamMemberRequest,
                 v1::RemoveCareTeamMemberRequest, v1::RecordConsentRequest,
                 v1::RevokeConsentRequest, v1::DiscloseInformationRequest,
                 v1::ReferToServiceRequest, v1::AuthorizeServiceReferralRequest,
                 v1::RecordServiceDeliveryRequest, v1::ChangeServiceReferralStatusRequest,
                 // Break the glass (access_rules.h).
                 v1::RequestEmergencyAccessRequest, v1::ReviewEmergencyAccessRequest>;

// An event as the domain sees it: the payload plus who and when (from the envelope).
struct Event {
  v1::CaseEvent body;
  absl::Time occurred_at;
  common::v1::Actor actor;
};

// Per-program rules, configured per tenant (services/case/config/programs.json).
struct ProgramRules {
  std::string code;
  // Acuity-weighted caseload limit per case manager: the sum of the acuity of their open
  // cases (pending or accepted) may not exceed it without a supervisor's override.
  int32_t caseload_limit = 0;
  bool closure_requires_approval = false;
};

struct DecisionContext {
  absl::Time now;
  common::v1::Actor actor;
  std::string tenant_id;
  // The case id a new case gets (OpenCase).
  std::string case_id;
  // Rules of the program the command concerns: the case's program, or the target
  // program for OpenCase and TransferCase.
  ProgramRules program;
  // Acuity-weighted load of the case manager the command assigns to, not counting this
  // case (AssignCase, TransferCase with a case manager, BulkReassignOne).
  int32_t assignee_load = 0;
  // How the access policy allowed the call (grpcx::Caller::relationship: "assigned",
  // "care_team", "team_supervisor", "emergency", "tenant", ...). Who may correct a note
  // depends on it.
  std::string relationship;
  // RequestEmergencyAccess only, from the relations directory: whether the caller already
  // stands to the case as its case manager, a care-team member or a supervisor of its team
  // (then there is no glass to break), and the tenant's configured longest grant (0: the
  // platform default).
  bool related_to_case = false;
  int32_t emergency_access_max_minutes = 0;
};

absl::StatusOr<std::vector<Event>> Decide(const CaseState& state, const Command& command,
                                          const DecisionContext& context);

// The clinical-content commands (care_decider.cc), called by Decide once the case exists and
// is open (not finished, cancelled or entered-in-error). They return event bodies; Decide
// stamps time and actor.
using CareEvents = absl::StatusOr<std::vector<v1::CaseEvent>>;
CareEvents DecideCare(const CaseState& s, const v1::RecordAssessmentRequest& c, const DecisionContext& x);
CareEvents DecideCare(const CaseState& s, const v1::ReviewRiskLevelRequest& c, const DecisionContext& x);
CareEvents DecideCare(const CaseState& s, const v1::CreateCarePlanRequest& c, const DecisionContext& x);
CareEvents DecideCare(const CaseState& s, const v1::ChangeCarePlanStatusRequest& c, const DecisionContext& x);
CareEvents DecideCare(const CaseState& s, const v1::AddGoalRequest& c, const DecisionContext& x);
CareEvents DecideCare(const CaseState& s, const v1::ChangeGoalStatusRequest& c, const DecisionContext& x);
CareEvents DecideCare(const CaseState& s, const v1::RecordGoalProgressRequest& c, const DecisionContext& x);
CareEvents DecideCare(const CaseState& s, const v1::AddCareTaskRequest& c, const DecisionContext& x);
CareEvents DecideCare(const CaseState& s, const v1::ChangeCareTaskStatusRequest& c, const DecisionContext& x);
CareEvents DecideCare(const CaseState& s, const v1::AddCareTeamMemberRequest& c, const DecisionContext& x);
CareEvents DecideCare(const CaseState& s, const v1::RemoveCareTeamMemberRequest& c, const DecisionContext& x);
CareEvents DecideCare(const CaseState& s, const v1::RecordConsentRequest& c, const DecisionContext& x);
CareEvents DecideCare(const CaseState& s, const v1::RevokeConsentRequest& c, const DecisionContext& x);
CareEvents DecideCare(const CaseState& s, const v1::DiscloseInformationRequest& c, const DecisionContext& x);
CareEvents DecideCare(const CaseState& s, const v1::ReferToServiceRequest& c, const DecisionContext& x);
CareEvents DecideCare(const CaseState& s, const v1::AuthorizeServiceReferralRequest& c, const DecisionContext& x);
CareEvents DecideCare(const CaseState& s, const v1::RecordServiceDeliveryRequest& c, const DecisionContext& x);
CareEvents DecideCare(const CaseState& s, const v1::ChangeServiceReferralStatusRequest& c, const DecisionContext& x);

// Applies a clinical-content event (care_evolve.cc); called by Evolve.
void EvolveCare(CaseState& state, const Event& event);

// The state before a case's first event: ids set, version 0.
CaseState NewCase(const std::string& case_id, const std::string& tenant_id);

// Applies one event; increments the version. Total: never fails (events are facts).
CaseState Evolve(CaseState state, const Event& event);

// ---- Rules as data and pure functions, exposed for tests and docs ----

// Which lifecycle action moves a case from one status to another.
enum class StatusAction {
  kChangeStatus,    // ChangeCaseStatus (incl. resuming from hold)
  kHold,            // PutCaseOnHold
  kClose,           // RequestClosure / ApproveClosure
  kCancel,          // CancelCase
  kReopen,          // ReopenCase
  kEnteredInError,  // MarkCaseEnteredInError
};
struct StatusTransition {
  v1::CaseStatus from;
  v1::CaseStatus to;
  StatusAction action;
};
// The status transition table (FHIR EpisodeOfCare statuses).
const std::vector<StatusTransition>& StatusTransitions();
// OK, or FAILED_PRECONDITION naming the action, the current status and the allowed ones.
absl::Status CheckStatusTransition(v1::CaseStatus from, v1::CaseStatus to, StatusAction action);

struct StageTransition {
  v1::CaseStage from;
  v1::CaseStage to;
};
// Forward one stage at a time; back to assessment or care planning from any later stage.
const std::vector<StageTransition>& StageTransitions();
absl::Status CheckStageTransition(v1::CaseStage from, v1::CaseStage to);

// Open: counts against a caseload (not finished, cancelled or entered-in-error).
bool IsOpen(v1::CaseStatus status);

// The capacity rule. OK when load + weight <= limit. Over the limit: OK only with an
// override given by a supervisor with a non-empty reason
// (PERMISSION_DENIED for other roles, INVALID_ARGUMENT without a reason), else
// FAILED_PRECONDITION stating the figures. `*overridden` says whether the override was used.
absl::Status CheckCapacity(int32_t load, int32_t weight, int32_t limit,
                           const v1::CapacityOverride* capacity_override, common::v1::Role role,
                           bool* overridden);

// Weight a case adds to its case manager's caseload (its acuity), and to whom; empty
// manager when the case does not count (unassigned or not open).
struct CaseloadContribution {
  std::string case_manager_id;
  int32_t weight = 0;
};
CaseloadContribution ContributionOf(const CaseState& state);

// Bulk reassignment's distribution.
struct CaseToPlace {
  std::string case_id;
  int32_t weight = 0;
  int32_t limit = 0;  // the case's program limit
};
struct CandidateLoad {
  std::string case_manager_id;
  int32_t load = 0;
};
struct Placement {
  std::string case_id;
  std::string case_manager_id;  // empty: fits nobody
};
// Places cases in the given order. ROUND_ROBIN: the next candidate in turn that has room;
// LEAST_LOADED: the candidate with the lowest load that has room (ties: earlier in the
// list). Loads grow as cases are placed.
std::vector<Placement> Distribute(const std::vector<CaseToPlace>& cases,
                                  std::vector<CandidateLoad> candidates,
                                  v1::DistributionStrategy strategy);

// ---- Envelope codec (pure: protobuf only) ----

// Full protobuf name of the event's payload, e.g. "clinical.case.v1.CaseOpened".
std::string EventTypeOf(const v1::CaseEvent& event);
// Packs the payload alone into the envelope (event_type, payload, occurred_at, actor).
void ToEnvelope(const Event& event, common::v1::EventEnvelope* envelope);
// DATA_LOSS when the envelope's payload is not a Case event this code knows.
absl::StatusOr<Event> FromEnvelope(const common::v1::EventEnvelope& envelope);

}  // namespace clinical::case_service

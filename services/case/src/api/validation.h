#pragma once

#include <optional>

#include "absl/time/time.h"
#include "case_domain.h"
#include "clinical/grpcx/status.h"
#include "programs.h"

namespace clinical::case_service {

// Field-by-field checks of each request, before anything is loaded or decided. Every
// violation is collected (the caller sees them all at once); descriptions never repeat the
// value. Rules that depend on the case's state are the decider's.
struct ValidationContext {
  absl::Time now;
  std::string tenant_id;
  const ProgramCatalog* programs = nullptr;
  // Facts a few fields are checked against, looked up for the requests that need them:
  // the named case's latest event in time (LatestEventTime) for a relationship change
  // entered late (the decider checks it again against the state it decides on), and the
  // tenant's configured emergency-access limit (0: the platform default).
  std::optional<absl::Time> case_latest_event;
  int32_t emergency_access_max_minutes = 0;
};

void Validate(const v1::OpenCaseRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::ChangeCaseStatusRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::ChangeCaseStageRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::ReprioritizeCaseRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::AssignCaseRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::AcceptAssignmentRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::DeclineAssignmentRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::TransferCaseRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::BulkReassignCasesRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::DelegateTasksRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::AddNoteRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::AmendNoteRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::MarkNoteEnteredInErrorRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::PutCaseOnHoldRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::EscalateCaseRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::ResolveEscalationRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::RequestClosureRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::ApproveClosureRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::RejectClosureRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::ReopenCaseRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::CancelCaseRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::MarkCaseEnteredInErrorRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::GetCaseRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::ListCaseHistoryRequest& r, const ValidationContext& c, grpcx::Violations& v);

// Clinical content (issue #5).
void Validate(const v1::RecordAssessmentRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::ReviewRiskLevelRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::CreateCarePlanRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::ChangeCarePlanStatusRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::AddGoalRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::ChangeGoalStatusRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::RecordGoalProgressRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::AddCareTaskRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::ChangeCareTaskStatusRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::AddCareTeamMemberRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::RemoveCareTeamMemberRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::RecordConsentRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::RevokeConsentRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::DiscloseInformationRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::ReferToServiceRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::AuthorizeServiceReferralRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::RecordServiceDeliveryRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::ChangeServiceReferralStatusRequest& r, const ValidationContext& c, grpcx::Violations& v);

// The organisation and emergency access (Trust II).
void Validate(const v1::ConfigureOrganisationRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::SetTeamRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::GetOrganisationRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::RequestEmergencyAccessRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::ReviewEmergencyAccessRequest& r, const ValidationContext& c, grpcx::Violations& v);
void Validate(const v1::ListEmergencyAccessRequest& r, const ValidationContext& c, grpcx::Violations& v);

// The longest reason a person may give for breaking the glass.
inline constexpr size_t kMaxEmergencyReason = 1000;

bool IsUuid(const std::string& text);

}  // namespace clinical::case_service

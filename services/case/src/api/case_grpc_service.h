#pragma once

#include "case_engine.h"
#include "organisation_engine.h"
#include "clinical/case/v1/case_service.grpc.pb.h"
#include "clinical/grpcx/caller.h"
#include "validation.h"

namespace clinical::case_service {

// The gRPC edge of clinical.case.v1.CaseService. Every RPC goes the same way:
//   authorization first (grpcx::CallerSource::Authorize: the verified caller, allowed by the
//   method's access policy in case_service.proto given the relations directory's facts;
//   PERMISSION_DENIED, or NOT_FOUND recorded as a refusal for another tenant's case, before
//   anything else is looked at) -> field validation (INVALID_ARGUMENT with every violation)
//   -> engine -> one status mapping (grpcx::ToGrpcStatus). Reads then withhold the 42 CFR
//   Part 2 records the caller may not see (access_rules.h) and say so (MarkMasked).
//
// Synchronous API on purpose: a mutating call blocks until its Kafka transaction commits
// (group commit, a few ms), and gRPC's sync server runs handlers on its own thread pool
// made for blocking work, whereas blocking inside callback reactors would hold gRPC's
// internal executor threads.
//
// Logs carry the RPC name, status code and duration only: never request fields (PHI).
class CaseGrpcService final : public v1::CaseService::Service {
 public:
  CaseGrpcService(CaseEngine& engine, OrganisationEngine& organisations, const grpcx::CallerSource& callers)
      : engine_(engine), organisations_(organisations), callers_(callers) {}

  grpc::Status OpenCase(grpc::ServerContext*, const v1::OpenCaseRequest*, v1::OpenCaseResponse*) override;
  grpc::Status ChangeCaseStatus(grpc::ServerContext*, const v1::ChangeCaseStatusRequest*,
                                v1::ChangeCaseStatusResponse*) override;
  grpc::Status ChangeCaseStage(grpc::ServerContext*, const v1::ChangeCaseStageRequest*,
                               v1::ChangeCaseStageResponse*) override;
  grpc::Status ReprioritizeCase(grpc::ServerContext*, const v1::ReprioritizeCaseRequest*,
                                v1::ReprioritizeCaseResponse*) override;
  grpc::Status AssignCase(grpc::ServerContext*, const v1::AssignCaseRequest*,
                          v1::AssignCaseResponse*) override;
  grpc::Status AcceptAssignment(grpc::ServerContext*, const v1::AcceptAssignmentRequest*,
                                v1::AcceptAssignmentResponse*) override;
  grpc::Status DeclineAssignment(grpc::ServerContext*, const v1::DeclineAssignmentRequest*,
                                 v1::DeclineAssignmentResponse*) override;
  grpc::Status TransferCase(grpc::ServerContext*, const v1::TransferCaseRequest*,
                            v1::TransferCaseResponse*) override;
  grpc::Status BulkReassignCases(grpc::ServerContext*, const v1::BulkReassignCasesRequest*,
                                 v1::BulkReassignCasesResponse*) override;
  grpc::Status DelegateTasks(grpc::ServerContext*, const v1::DelegateTasksRequest*,
                             v1::DelegateTasksResponse*) override;
  grpc::Status AddNote(grpc::ServerContext*, const v1::AddNoteRequest*, v1::AddNoteResponse*) override;
  grpc::Status AmendNote(grpc::ServerContext*, const v1::AmendNoteRequest*,
                         v1::AmendNoteResponse*) override;
  grpc::Status MarkNoteEnteredInError(grpc::ServerContext*, const v1::MarkNoteEnteredInErrorRequest*,
                                      v1::MarkNoteEnteredInErrorResponse*) override;
  grpc::Status PutCaseOnHold(grpc::ServerContext*, const v1::PutCaseOnHoldRequest*,
                             v1::PutCaseOnHoldResponse*) override;
  grpc::Status EscalateCase(grpc::ServerContext*, const v1::EscalateCaseRequest*,
                            v1::EscalateCaseResponse*) override;
  grpc::Status ResolveEscalation(grpc::ServerContext*, const v1::ResolveEscalationRequest*,
                                 v1::ResolveEscalationResponse*) override;
  grpc::Status RequestClosure(grpc::ServerContext*, const v1::RequestClosureRequest*,
                              v1::RequestClosureResponse*) override;
  grpc::Status ApproveClosure(grpc::ServerContext*, const v1::ApproveClosureRequest*,
                              v1::ApproveClosureResponse*) override;
  grpc::Status RejectClosure(grpc::ServerContext*, const v1::RejectClosureRequest*,
                             v1::RejectClosureResponse*) override;
  grpc::Status ReopenCase(grpc::ServerContext*, const v1::ReopenCaseRequest*,
                          v1::ReopenCaseResponse*) override;
  grpc::Status CancelCase(grpc::ServerContext*, const v1::CancelCaseRequest*,
                          v1::CancelCaseResponse*) override;
  grpc::Status MarkCaseEnteredInError(grpc::ServerContext*, const v1::MarkCaseEnteredInErrorRequest*,
                                      v1::MarkCaseEnteredInErrorResponse*) override;
  // Clinical content (issue #5).
  grpc::Status RecordAssessment(grpc::ServerContext*, const v1::RecordAssessmentRequest*, v1::RecordAssessmentResponse*) override;
  grpc::Status ReviewRiskLevel(grpc::ServerContext*, const v1::ReviewRiskLevelRequest*, v1::ReviewRiskLevelResponse*) override;
  grpc::Status CreateCarePlan(grpc::ServerContext*, const v1::CreateCarePlanRequest*, v1::CreateCarePlanResponse*) override;
  grpc::Status ChangeCarePlanStatus(grpc::ServerContext*, const v1::ChangeCarePlanStatusRequest*, v1::ChangeCarePlanStatusResponse*) override;
  grpc::Status AddGoal(grpc::ServerContext*, const v1::AddGoalRequest*, v1::AddGoalResponse*) override;
  grpc::Status ChangeGoalStatus(grpc::ServerContext*, const v1::ChangeGoalStatusRequest*, v1::ChangeGoalStatusResponse*) override;
  grpc::Status RecordGoalProgress(grpc::ServerContext*, const v1::RecordGoalProgressRequest*, v1::RecordGoalProgressResponse*) override;
  grpc::Status AddCareTask(grpc::ServerContext*, const v1::AddCareTaskRequest*, v1::AddCareTaskResponse*) override;
  grpc::Status ChangeCareTaskStatus(grpc::ServerContext*, const v1::ChangeCareTaskStatusRequest*, v1::ChangeCareTaskStatusResponse*) override;
  grpc::Status AddCareTeamMember(grpc::ServerContext*, const v1::AddCareTeamMemberRequest*, v1::AddCareTeamMemberResponse*) override;
  grpc::Status RemoveCareTeamMember(grpc::ServerContext*, const v1::RemoveCareTeamMemberRequest*, v1::RemoveCareTeamMemberResponse*) override;
  grpc::Status RecordConsent(grpc::ServerContext*, const v1::RecordConsentRequest*, v1::RecordConsentResponse*) override;
  grpc::Status RevokeConsent(grpc::ServerContext*, const v1::RevokeConsentRequest*, v1::RevokeConsentResponse*) override;
  grpc::Status DiscloseInformation(grpc::ServerContext*, const v1::DiscloseInformationRequest*, v1::DiscloseInformationResponse*) override;
  grpc::Status ReferToService(grpc::ServerContext*, const v1::ReferToServiceRequest*, v1::ReferToServiceResponse*) override;
  grpc::Status AuthorizeServiceReferral(grpc::ServerContext*, const v1::AuthorizeServiceReferralRequest*, v1::AuthorizeServiceReferralResponse*) override;
  grpc::Status RecordServiceDelivery(grpc::ServerContext*, const v1::RecordServiceDeliveryRequest*, v1::RecordServiceDeliveryResponse*) override;
  grpc::Status ChangeServiceReferralStatus(grpc::ServerContext*, const v1::ChangeServiceReferralStatusRequest*, v1::ChangeServiceReferralStatusResponse*) override;
  // The organisation and emergency access (Trust II).
  grpc::Status ConfigureOrganisation(grpc::ServerContext*, const v1::ConfigureOrganisationRequest*, v1::ConfigureOrganisationResponse*) override;
  grpc::Status SetTeam(grpc::ServerContext*, const v1::SetTeamRequest*, v1::SetTeamResponse*) override;
  grpc::Status GetOrganisation(grpc::ServerContext*, const v1::GetOrganisationRequest*, v1::GetOrganisationResponse*) override;
  grpc::Status RequestEmergencyAccess(grpc::ServerContext*, const v1::RequestEmergencyAccessRequest*, v1::RequestEmergencyAccessResponse*) override;
  grpc::Status ReviewEmergencyAccess(grpc::ServerContext*, const v1::ReviewEmergencyAccessRequest*, v1::ReviewEmergencyAccessResponse*) override;
  grpc::Status ListEmergencyAccess(grpc::ServerContext*, const v1::ListEmergencyAccessRequest*, v1::ListEmergencyAccessResponse*) override;
  grpc::Status GetCase(grpc::ServerContext*, const v1::GetCaseRequest*, v1::GetCaseResponse*) override;
  grpc::Status ListCaseHistory(grpc::ServerContext*, const v1::ListCaseHistoryRequest*,
                               v1::ListCaseHistoryResponse*) override;

 private:
  // The facts a request's fields are validated against (ValidationContext).
  template <typename Request>
  ValidationContext ValidationFor(const grpcx::Caller& caller, const Request& request) const;

  template <typename Request, typename Fn>
  grpc::Status Handle(grpc::ServerContext* context, const Request& request, Fn fn);
  template <typename Request, typename Response>
  grpc::Status ChangeOrganisation(grpc::ServerContext* context, const Request* request, Response* response);
  template <typename Request, typename Response>
  grpc::Status Mutate(grpc::ServerContext* context, const Request* request,
                      Response* response);

  CaseEngine& engine_;
  OrganisationEngine& organisations_;
  const grpcx::CallerSource& callers_;
};

}  // namespace clinical::case_service

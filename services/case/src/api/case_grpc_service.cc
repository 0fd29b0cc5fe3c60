#include "case_grpc_service.h"

#include "care_rules.h"
#include "clinical/grpcx/status.h"
#include "validation.h"

namespace clinical::case_service {

absl::StatusOr<grpcx::Caller> CaseGrpcService::Authenticate(const grpc::ServerContext& context) const {
  return callers_.CallerOf(context);
}

template <typename Request>
bool CaseGrpcService::NamesCaseOfAnotherTenant(const std::string& tenant_id, const Request& request) const {
  if constexpr (requires { request.case_id(); }) {
    if (!request.case_id().empty() && engine_.InAnotherTenant(tenant_id, request.case_id())) return true;
  }
  if constexpr (requires { request.case_ids(); }) {
    for (const std::string& id : request.case_ids()) {
      if (engine_.InAnotherTenant(tenant_id, id)) return true;
    }
  }
  return false;
}

template <typename Request, typename Fn>
grpc::Status CaseGrpcService::Handle(grpc::ServerContext* context, const Request& request, Fn fn) {
  // Counting, timing and logging each RPC is the server's interceptor's job (grpcx).
  absl::Status status;
  auto caller = Authenticate(*context);
  if (!caller.ok()) {
    status = caller.status();
  } else if (NamesCaseOfAnotherTenant(caller->tenant_id, request)) {
    status = grpcx::NotFoundInTenant("case");
  } else {
    grpcx::Violations violations;
    Validate(request, ValidationContext{engine_.Now(), caller->tenant_id, &engine_.programs()},
             violations);
    status = violations.empty() ? fn(*caller) : violations.ToStatus();
  }
  return grpcx::ToGrpcStatus(status, *context);
}

template <typename Request, typename Response>
grpc::Status CaseGrpcService::Mutate(grpc::ServerContext* context, const Request* request, Response* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
    absl::StatusOr<CommandOutcome> outcome;
    if constexpr (std::is_same_v<Request, v1::OpenCaseRequest>) {
      outcome = engine_.Open(caller, *request);
    } else {
      std::optional<int64_t> expected;
      if (request->has_expected_version()) expected = request->expected_version();
      outcome = engine_.Execute(caller, request->case_id(), request->command_id(), expected,
                                Command(*request));
    }
    if (!outcome.ok()) return outcome.status();
    response->set_case_id(outcome->case_id);
    response->set_version(outcome->version);
    *response->mutable_position() = outcome->position;
    if constexpr (requires { response->set_note_id(""); }) response->set_note_id(outcome->detail);
    if constexpr (requires { response->set_delegation_id(""); }) {
      response->set_delegation_id(outcome->detail);
    }
    if constexpr (requires { response->set_escalation_id(""); }) {
      response->set_escalation_id(outcome->detail);
    }
    if constexpr (requires { response->set_assessment_id(""); }) {
      response->set_assessment_id(outcome->detail);
    }
    if constexpr (requires { response->set_goal_id(""); }) response->set_goal_id(outcome->detail);
    if constexpr (requires { response->set_task_id(""); }) response->set_task_id(outcome->detail);
    if constexpr (requires { response->set_member_id(""); }) response->set_member_id(outcome->detail);
    if constexpr (requires { response->set_consent_id(""); }) response->set_consent_id(outcome->detail);
    if constexpr (requires { response->set_disclosure_id(""); }) {
      response->set_disclosure_id(outcome->detail);
    }
    if constexpr (requires { response->set_referral_id(""); }) response->set_referral_id(outcome->detail);
    if constexpr (requires { response->set_pending_approval(true); }) {
      response->set_pending_approval(outcome->detail == "pending_approval");
    }
    return absl::OkStatus();
  });
}

#define CLINICAL_CASE_MUTATION(Rpc)                                                         \
  grpc::Status CaseGrpcService::Rpc(grpc::ServerContext* context, const v1::Rpc##Request* r, \
                                    v1::Rpc##Response* out) {                               \
    return Mutate(context, r, out);                                                          \
  }

CLINICAL_CASE_MUTATION(OpenCase)
CLINICAL_CASE_MUTATION(ChangeCaseStatus)
CLINICAL_CASE_MUTATION(ChangeCaseStage)
CLINICAL_CASE_MUTATION(ReprioritizeCase)
CLINICAL_CASE_MUTATION(AssignCase)
CLINICAL_CASE_MUTATION(AcceptAssignment)
CLINICAL_CASE_MUTATION(DeclineAssignment)
CLINICAL_CASE_MUTATION(TransferCase)
CLINICAL_CASE_MUTATION(DelegateTasks)
CLINICAL_CASE_MUTATION(AddNote)
CLINICAL_CASE_MUTATION(AmendNote)
CLINICAL_CASE_MUTATION(MarkNoteEnteredInError)
CLINICAL_CASE_MUTATION(PutCaseOnHold)
CLINICAL_CASE_MUTATION(EscalateCase)
CLINICAL_CASE_MUTATION(ResolveEscalation)
CLINICAL_CASE_MUTATION(RequestClosure)
CLINICAL_CASE_MUTATION(ApproveClosure)
CLINICAL_CASE_MUTATION(RejectClosure)
CLINICAL_CASE_MUTATION(ReopenCase)
CLINICAL_CASE_MUTATION(CancelCase)
CLINICAL_CASE_MUTATION(MarkCaseEnteredInError)
CLINICAL_CASE_MUTATION(RecordAssessment)
CLINICAL_CASE_MUTATION(ReviewRiskLevel)
CLINICAL_CASE_MUTATION(CreateCarePlan)
CLINICAL_CASE_MUTATION(ChangeCarePlanStatus)
CLINICAL_CASE_MUTATION(AddGoal)
CLINICAL_CASE_MUTATION(ChangeGoalStatus)
CLINICAL_CASE_MUTATION(RecordGoalProgress)
CLINICAL_CASE_MUTATION(AddCareTask)
CLINICAL_CASE_MUTATION(ChangeCareTaskStatus)
CLINICAL_CASE_MUTATION(AddCareTeamMember)
CLINICAL_CASE_MUTATION(RemoveCareTeamMember)
CLINICAL_CASE_MUTATION(RecordConsent)
CLINICAL_CASE_MUTATION(RevokeConsent)
CLINICAL_CASE_MUTATION(DiscloseInformation)
CLINICAL_CASE_MUTATION(ReferToService)
CLINICAL_CASE_MUTATION(AuthorizeServiceReferral)
CLINICAL_CASE_MUTATION(RecordServiceDelivery)
CLINICAL_CASE_MUTATION(ChangeServiceReferralStatus)
#undef CLINICAL_CASE_MUTATION

grpc::Status CaseGrpcService::BulkReassignCases(grpc::ServerContext* context,
                                                const v1::BulkReassignCasesRequest* request,
                                                v1::BulkReassignCasesResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) {
    auto result = engine_.BulkReassign(caller, *request);
    if (!result.ok()) return result.status();
    *response = std::move(*result);
    return absl::OkStatus();
  });
}

grpc::Status CaseGrpcService::GetCase(grpc::ServerContext* context, const v1::GetCaseRequest* request,
                                      v1::GetCaseResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) {
    auto found = engine_.Get(caller.tenant_id, request->case_id());
    if (!found.ok()) return found.status();
    for (auto& id : OverdueTaskIds(*found, engine_.Now())) response->add_overdue_task_ids(std::move(id));
    *response->mutable_case_() = std::move(*found);
    return absl::OkStatus();
  });
}

grpc::Status CaseGrpcService::ListCaseHistory(grpc::ServerContext* context,
                                              const v1::ListCaseHistoryRequest* request,
                                              v1::ListCaseHistoryResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) {
    auto history = engine_.History(caller.tenant_id, *request);
    if (!history.ok()) return history.status();
    *response = std::move(*history);
    return absl::OkStatus();
  });
}

}  // namespace clinical::case_service

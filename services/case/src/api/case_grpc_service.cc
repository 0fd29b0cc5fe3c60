#include "case_grpc_service.h"

#include <algorithm>

#include "access_rules.h"
#include "care_rules.h"
#include "google/protobuf/util/time_util.h"
#include "clinical/grpcx/status.h"
#include "validation.h"

namespace clinical::case_service {

template <typename Request>
ValidationContext CaseGrpcService::ValidationFor(const grpcx::Caller& caller, const Request& request) const {
  ValidationContext context;
  context.now = engine_.Now();
  context.tenant_id = caller.tenant_id;
  context.programs = &engine_.programs();
  if constexpr (std::is_same_v<Request, v1::AssignCaseRequest> || std::is_same_v<Request, v1::TransferCaseRequest> ||
                std::is_same_v<Request, v1::RemoveCareTeamMemberRequest>) {
    if (request.has_occurred_at()) context.case_latest_event = engine_.LatestEventTimeOf(caller.tenant_id, request.case_id());
  }
  if constexpr (std::is_same_v<Request, v1::RequestEmergencyAccessRequest>) {
    context.emergency_access_max_minutes = organisations_.Get(caller.tenant_id).emergency_access_max_minutes();
  }
  return context;
}

template <typename Request, typename Fn>
grpc::Status CaseGrpcService::Handle(grpc::ServerContext* context, const Request& request, Fn fn) {
  // Counting, timing and logging each RPC is the server's interceptor's job (grpcx).
  absl::Status status;
  // First, before anything is read or written: may this caller make this call?
  auto caller = callers_.Authorize(*context, request);
  if (!caller.ok()) {
    status = caller.status();
  } else {
    grpcx::Violations violations;
    Validate(request, ValidationFor(*caller, request), violations);
    status = violations.empty() ? fn(*caller) : violations.ToStatus();
  }
  return grpcx::ToGrpcStatus(status, *context);
}

template <typename Request, typename Response>
grpc::Status CaseGrpcService::ChangeOrganisation(grpc::ServerContext* context, const Request* request,
                                                 Response* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
    std::optional<int64_t> expected;
    if (request->has_expected_version()) expected = request->expected_version();
    auto outcome = organisations_.Execute(caller, request->command_id(), expected, *request);
    if (!outcome.ok()) return outcome.status();
    response->set_version(outcome->version);
    *response->mutable_position() = outcome->position;
    return absl::OkStatus();
  });
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
    if constexpr (requires { response->set_grant_id(""); }) {
      response->set_grant_id(outcome->detail);
      if (auto granted = engine_.Get(caller.tenant_id, outcome->case_id); granted.ok()) {
        for (const v1::EmergencyAccessGrant& grant : granted->emergency_access()) {
          if (grant.grant_id() == outcome->detail) *response->mutable_expires_at() = grant.expires_at();
        }
      }
    }
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
CLINICAL_CASE_MUTATION(RequestEmergencyAccess)
CLINICAL_CASE_MUTATION(ReviewEmergencyAccess)
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

grpc::Status CaseGrpcService::ConfigureOrganisation(grpc::ServerContext* context,
                                                    const v1::ConfigureOrganisationRequest* request,
                                                    v1::ConfigureOrganisationResponse* response) {
  return ChangeOrganisation(context, request, response);
}

grpc::Status CaseGrpcService::SetTeam(grpc::ServerContext* context, const v1::SetTeamRequest* request,
                                      v1::SetTeamResponse* response) {
  return ChangeOrganisation(context, request, response);
}

grpc::Status CaseGrpcService::GetOrganisation(grpc::ServerContext* context, const v1::GetOrganisationRequest* request,
                                              v1::GetOrganisationResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) {
    *response->mutable_organisation() = organisations_.Get(caller.tenant_id);
    return absl::OkStatus();
  });
}

grpc::Status CaseGrpcService::ListEmergencyAccess(grpc::ServerContext* context,
                                                  const v1::ListEmergencyAccessRequest* request,
                                                  v1::ListEmergencyAccessResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) {
    EmergencyAccessQuery query;
    query.since = request->has_since() ? absl::FromUnixNanos(google::protobuf::util::TimeUtil::TimestampToNanoseconds(
                                             request->since()))
                                       : engine_.Now() - absl::Hours(24 * 30);
    query.unreviewed_only = request->unreviewed_only();
    if (request->page_size() > 0) query.page_size = request->page_size();
    if (request->repeated_use_threshold() > 0) query.repeated_use_threshold = request->repeated_use_threshold();
    *response = case_service::ListEmergencyAccess(engine_.EmergencyGrants(caller.tenant_id), query);
    return absl::OkStatus();
  });
}

grpc::Status CaseGrpcService::GetCase(grpc::ServerContext* context, const v1::GetCaseRequest* request,
                                      v1::GetCaseResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) {
    auto found = engine_.Get(caller.tenant_id, request->case_id());
    if (!found.ok()) return found.status();
    // 42 CFR Part 2: substance-use records only for those the rule lets see them.
    if (!MaySeeSubstanceUseRecords(*found, caller.actor.user_id(), caller.relationship, engine_.Now()) &&
        RemoveSubstanceUseRecords(*found)) {
      callers_.MarkMasked(*context);
    }
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
    // 42 CFR Part 2 as in GetCase: the events of the records the caller may not see go.
    auto state = engine_.Get(caller.tenant_id, request->case_id());
    if (!state.ok()) return state.status();
    if (!MaySeeSubstanceUseRecords(*state, caller.actor.user_id(), caller.relationship, engine_.Now())) {
      const SubstanceUseRecords records = SubstanceUseRecordsOf(*state);
      auto* events = response->mutable_events();
      const int before = events->size();
      events->erase(std::remove_if(events->begin(), events->end(),
                                   [&](const common::v1::EventEnvelope& envelope) {
                                     // An event that cannot be inspected is withheld too.
                                     auto decoded = FromEnvelope(envelope);
                                     return !decoded.ok() || IsSubstanceUseEvent(decoded->body, records);
                                   }),
                    events->end());
      if (events->size() != before) callers_.MarkMasked(*context);
    }
    return absl::OkStatus();
  });
}

}  // namespace clinical::case_service

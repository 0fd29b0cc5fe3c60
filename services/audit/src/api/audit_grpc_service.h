#pragma once

#include <functional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit_log.h"
#include "clinical/audit/v1/audit_service.grpc.pb.h"
#include "clinical/grpcx/caller.h"

namespace clinical::audit {

// clinical.audit.v1.AuditService over AuditLog (sync handlers: verification blocks on
// Kafka reads). Every call: caller identity (UNAUTHENTICATED), role auditor or
// privacy_officer (PERMISSION_DENIED), request validation (INVALID_ARGUMENT with field
// violations), then the log; queries are scoped to the caller's tenant.
class AuditGrpcService final : public audit::v1::AuditService::Service {
 public:
  AuditGrpcService(AuditLog& log, std::function<absl::Time()> clock, const grpcx::CallerSource& callers)
      : log_(log), clock_(std::move(clock)), callers_(callers) {}

  grpc::Status ListChains(grpc::ServerContext* context, const audit::v1::ListChainsRequest* request,
                          audit::v1::ListChainsResponse* response) override;
  grpc::Status VerifyChain(grpc::ServerContext* context, const audit::v1::VerifyChainRequest* request,
                           audit::v1::VerifyChainResponse* response) override;
  grpc::Status QueryRecords(grpc::ServerContext* context,
                            const audit::v1::QueryRecordsRequest* request,
                            audit::v1::QueryRecordsResponse* response) override;
  grpc::Status GetAccessReport(grpc::ServerContext* context,
                               const audit::v1::GetAccessReportRequest* request,
                               audit::v1::GetAccessReportResponse* response) override;
  grpc::Status ExportAuditEvents(grpc::ServerContext* context,
                                 const audit::v1::ExportAuditEventsRequest* request,
                                 audit::v1::ExportAuditEventsResponse* response) override;

 private:
  template <typename Fn>
  grpc::Status Handle(grpc::ServerContext* context, Fn fn);

  AuditLog& log_;
  std::function<absl::Time()> clock_;
  const grpcx::CallerSource& callers_;
};

// OK for ROLE_AUDITOR and ROLE_PRIVACY_OFFICER, PERMISSION_DENIED otherwise.
absl::Status AuthorizeAuditor(const grpcx::Caller& caller);

}  // namespace clinical::audit

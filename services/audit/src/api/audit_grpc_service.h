#pragma once

#include <functional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit_log.h"
#include "clinical/audit/v1/audit_service.grpc.pb.h"
#include "clinical/grpcx/caller.h"
#include "clinical/grpcx/status.h"
#include "recheck_source.h"

namespace clinical::audit {

// Limits of one RecheckAccess call.
struct RecheckLimits {
  // Allowed reads one report may re-check (INVALID_ARGUMENT beyond: narrow the period or
  // filter by case or actor). Bounds the memory and time of a call.
  size_t max_records = 100000;
};

// clinical.audit.v1.AuditService over AuditLog (sync handlers: verification blocks on
// Kafka reads). Every call: authorization first (callers_.Authorize: the method's policy in
// audit_service.proto — auditors and privacy officers of the token's tenant;
// UNAUTHENTICATED / PERMISSION_DENIED), request validation (INVALID_ARGUMENT with field
// violations), then the log; queries are scoped to the caller's tenant.
class AuditGrpcService final : public audit::v1::AuditService::Service {
 public:
  // `log` and `recheck` must outlive the service.
  AuditGrpcService(AuditLog& log, RecheckSource& recheck, std::function<absl::Time()> clock,
                   const grpcx::CallerSource& callers, RecheckLimits limits = {})
      : log_(log), recheck_(recheck), clock_(std::move(clock)), callers_(callers), limits_(limits) {}

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
  // Policy at the time (src/domain/recheck.h): the caller's tenant's allowed reads in the
  // period, from the log, re-decided against their policy snapshots and the case and
  // organisation events as of each read.
  grpc::Status RecheckAccess(grpc::ServerContext* context, const audit::v1::RecheckAccessRequest* request,
                             audit::v1::RecheckAccessResponse* response) override;

 private:
  template <typename Fn>
  grpc::Status Handle(grpc::ServerContext* context, const google::protobuf::Message& request, Fn fn);

  AuditLog& log_;
  RecheckSource& recheck_;
  std::function<absl::Time()> clock_;
  const grpcx::CallerSource& callers_;
  const RecheckLimits limits_;
};

// RecheckAccess's field validation at `now`: from required, to (default now) after from,
// at most 366 days between them, ids of sane length, page_size 0..5000.
void ValidateRecheck(const audit::v1::RecheckAccessRequest& request, absl::Time now, grpcx::Violations& violations);

}  // namespace clinical::audit

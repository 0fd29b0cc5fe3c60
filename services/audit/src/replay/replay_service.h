#pragma once

// The gRPC edge of clinical.audit.v1.AuditReplayService (docs/audit-replay.md).
//
// Every RPC: authorization (callers_.Authorize: the verified token's person and the
// method's policy in replay_service.proto, auditors and privacy officers only;
// UNAUTHENTICATED / PERMISSION_DENIED) -> field validation (INVALID_ARGUMENT with every
// violation) -> read the log and fold -> one status mapping (grpcx::ToGrpcStatus). Reads
// only; the caller's tenant scopes everything (another tenant's case is NOT_FOUND).
//
// Synchronous API on purpose: a call blocks on reading Kafka, and gRPC's sync server runs
// handlers on a pool made for blocking work. Thread-safe: no state besides the source.
// Errors never carry request values (a case id is opaque, an MRN is PHI).

#include <functional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/audit/v1/replay_service.grpc.pb.h"
#include "clinical/grpcx/caller.h"
#include "clinical/grpcx/status.h"
#include "replay_source.h"

namespace clinical::audit::replay {

// Field validation, given the time of the call.
void Validate(const v1::ReplayCaseRequest& request, absl::Time now, grpcx::Violations& violations);
void Validate(const v1::ListDisclosuresRequest& request, absl::Time now,
              grpcx::Violations& violations);

class ReplayService final : public v1::AuditReplayService::Service {
 public:
  // `source` must outlive the service; `clock` gives "now" (injected for tests).
  ReplayService(EventSource& source, std::function<absl::Time()> clock, const grpcx::CallerSource& callers)
      : source_(source), clock_(std::move(clock)), callers_(callers) {}

  grpc::Status ReplayCase(grpc::ServerContext* context, const v1::ReplayCaseRequest* request,
                          v1::ReplayCaseResponse* response) override;
  grpc::Status ListDisclosures(grpc::ServerContext* context,
                               const v1::ListDisclosuresRequest* request,
                               v1::ListDisclosuresResponse* response) override;

  // The same, without gRPC (the caller already authorized).
  absl::StatusOr<v1::ReplayCaseResponse> Replay(const grpcx::Caller& caller,
                                                const v1::ReplayCaseRequest& request);
  absl::StatusOr<v1::ListDisclosuresResponse> Disclosures(const grpcx::Caller& caller,
                                                          const v1::ListDisclosuresRequest& request);

 private:
  EventSource& source_;
  const std::function<absl::Time()> clock_;
  const grpcx::CallerSource& callers_;
};

}  // namespace clinical::audit::replay

#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"

namespace clinical::grpcx {

// One invalid field of a request: where and why. The description never repeats the value
// (it may be patient data).
struct FieldViolation {
  std::string field;        // e.g. "patient.mrn", "goals[2].target_date"
  std::string description;  // e.g. "is required", "must be between 1 and 5"
};

// Collects violations while a request is validated, so the caller gets all of them at once.
class Violations {
 public:
  void Add(std::string field, std::string description) {
    violations_.push_back({std::move(field), std::move(description)});
  }
  bool empty() const { return violations_.empty(); }
  const std::vector<FieldViolation>& list() const { return violations_; }
  // OK when empty, else INVALID_ARGUMENT carrying every violation.
  absl::Status ToStatus(std::string_view message = "invalid request") const;

 private:
  std::vector<FieldViolation> violations_;
};

// INVALID_ARGUMENT with field violations attached as an absl::Status payload; they become
// google.rpc.BadRequest details at the gRPC edge.
absl::Status InvalidArgument(std::string_view message, const std::vector<FieldViolation>& violations);

// The violations carried by `status` (empty if none).
std::vector<FieldViolation> FieldViolationsOf(const absl::Status& status);

// NOT_FOUND for a resource that belongs to another tenant (or, equally, does not exist):
// the caller learns nothing about whether it exists, yet the refusal is an access attempt,
// so the status carries a marker that ToGrpcStatus(status, context) turns into the access
// record's outcome DENIED. `what` names the kind of resource ("case"), never its id.
absl::Status NotFoundInTenant(std::string_view what);
// True for a status made by NotFoundInTenant.
bool IsTenantRefusal(const absl::Status& status);

// The one mapping from internal status to gRPC status. Codes carry over unchanged (absl
// and gRPC share google.rpc.Code); field violations travel as google.rpc.Status details in
// the "grpc-status-details-bin" trailer, so any gRPC client's rich-error support reads them.
grpc::Status ToGrpcStatus(const absl::Status& status);
// The same, and marks the call denied for its access record when the status is a tenant
// refusal (the marker trailer never reaches the client).
grpc::Status ToGrpcStatus(const absl::Status& status, grpc::ServerContextBase& context);

}  // namespace clinical::grpcx

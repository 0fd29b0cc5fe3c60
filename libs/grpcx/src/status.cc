#include "clinical/grpcx/status.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "clinical/access/policy.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace clinical::grpcx {
namespace {

constexpr char kBadRequestUrl[] = "type.googleapis.com/google.rpc.BadRequest";
// Internal only: never serialized into a response.
constexpr char kTenantRefusalUrl[] = "type.clinical/tenant-refusal";

}  // namespace

absl::Status Violations::ToStatus(std::string_view message) const {
  if (violations_.empty()) return absl::OkStatus();
  return InvalidArgument(message, violations_);
}

absl::Status InvalidArgument(std::string_view message, const std::vector<FieldViolation>& violations) {
  absl::Status status = absl::InvalidArgumentError(std::string(message));
  google::rpc::BadRequest bad_request;
  for (const FieldViolation& violation : violations) {
    auto* entry = bad_request.add_field_violations();
    entry->set_field(violation.field);
    entry->set_description(violation.description);
  }
  status.SetPayload(kBadRequestUrl, absl::Cord(bad_request.SerializeAsString()));
  return status;
}

std::vector<FieldViolation> FieldViolationsOf(const absl::Status& status) {
  std::vector<FieldViolation> violations;
  auto payload = status.GetPayload(kBadRequestUrl);
  if (!payload.has_value()) return violations;
  google::rpc::BadRequest bad_request;
  if (!bad_request.ParseFromString(std::string(*payload))) return violations;
  for (const auto& entry : bad_request.field_violations()) {
    violations.push_back({entry.field(), entry.description()});
  }
  return violations;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  const std::string message(status.message());
  auto payload = status.GetPayload(kBadRequestUrl);
  if (!payload.has_value()) return grpc::Status(code, message);
  google::rpc::Status details;
  details.set_code(static_cast<int32_t>(status.code()));
  details.set_message(message);
  auto* any = details.add_details();
  any->set_type_url(kBadRequestUrl);
  any->set_value(std::string(*payload));
  return grpc::Status(code, message, details.SerializeAsString());
}

absl::Status NotFoundInTenant(std::string_view what) {
  absl::Status status = absl::NotFoundError(absl::StrCat(std::string(what), " not found"));
  status.SetPayload(kTenantRefusalUrl, absl::Cord("1"));
  return status;
}

bool IsTenantRefusal(const absl::Status& status) {
  return status.code() == absl::StatusCode::kNotFound && status.GetPayload(kTenantRefusalUrl).has_value();
}

grpc::Status ToGrpcStatus(const absl::Status& status, grpc::ServerContextBase& context) {
  if (IsTenantRefusal(status)) context.AddTrailingMetadata(access::kDeniedTrailer, "1");
  return ToGrpcStatus(status);
}

}  // namespace clinical::grpcx

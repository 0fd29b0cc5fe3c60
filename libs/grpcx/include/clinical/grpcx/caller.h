#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "clinical/common/v1/types.pb.h"
#include "grpcpp/server_context.h"

namespace clinical::grpcx {

// Request metadata that identifies the caller. Today the platform trusts these headers as
// set by the caller's gateway; token verification and authorisation plug in behind
// CallerFrom() (the single seam every handler goes through), without touching handlers.
inline constexpr char kUserHeader[] = "x-clinical-user";
inline constexpr char kRoleHeader[] = "x-clinical-role";        // e.g. "case_manager"
inline constexpr char kTenantHeader[] = "x-clinical-tenant";
inline constexpr char kOnBehalfOfHeader[] = "x-clinical-on-behalf-of";
inline constexpr char kTraceparentHeader[] = "traceparent";     // W3C trace context
// HL7 v3 PurposeOfUse code the caller declares for a read (e.g. "TREAT"), copied into the
// access record; optional.
inline constexpr char kPurposeHeader[] = "x-clinical-purpose";

struct Caller {
  common::v1::Actor actor;
  std::string tenant_id;
  common::v1::TraceContext trace;
  std::string peer;  // the client's address, for access records
};

// Reads and checks the caller's identity. UNAUTHENTICATED (naming the header) when the
// user, role or tenant is missing or the role is unknown.
absl::StatusOr<Caller> CallerFrom(const grpc::ServerContextBase& context);

// "case_manager" -> ROLE_CASE_MANAGER; ROLE_UNSPECIFIED if unknown.
common::v1::Role ParseRole(std::string_view text);

}  // namespace clinical::grpcx

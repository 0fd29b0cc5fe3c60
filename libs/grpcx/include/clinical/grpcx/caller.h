#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "clinical/common/v1/types.pb.h"
#include "grpcpp/server_context.h"

namespace clinical::grpcx {

// Request metadata the platform reads. None of it can assert an identity: who calls comes
// only from the verified bearer token and the verified client certificate (Authenticator),
// never from a header of the caller's choosing.
inline constexpr char kAuthorizationHeader[] = "authorization";  // "Bearer <JWT>"
// Selects the acting role when the token grants several platform roles; it can only
// choose among the verified roles, never add one.
inline constexpr char kActingRoleHeader[] = "x-clinical-acting-role";
inline constexpr char kTraceparentHeader[] = "traceparent";  // W3C trace context
// HL7 v3 PurposeOfUse code the caller declares for a read (e.g. "TREAT"), copied into the
// access record; optional.
inline constexpr char kPurposeHeader[] = "x-clinical-purpose";

struct Caller {
  common::v1::Actor actor;
  std::string tenant_id;  // empty for a service acting on its own behalf
  common::v1::TraceContext trace;
  std::string peer;           // the client's network address, for access records
  std::string peer_identity;  // the verified workload identity (SPIFFE ID) of the connection
};

// Where handlers learn who calls. The platform's implementation is the Authenticator, which
// derives the caller from this call's own verified token (and connection certificate):
// nothing is carried over from another call on the same connection. Thread-safe.
class CallerSource {
 public:
  virtual ~CallerSource() = default;
  // The verified person calling: user, role and tenant from the bearer token.
  // UNAUTHENTICATED when the call carries no verifiable identity (the Authenticator refused
  // such calls before any handler ran, so a handler sees this only for methods that need no
  // token); PERMISSION_DENIED for a service identity (a verified certificate and no token):
  // services act in no tenant, and no method grants them anything yet.
  virtual absl::StatusOr<Caller> CallerOf(const grpc::ServerContextBase& context) const = 0;
};

// "case_manager" -> ROLE_CASE_MANAGER; ROLE_UNSPECIFIED if unknown.
common::v1::Role ParseRole(std::string_view text);
// ROLE_CASE_MANAGER -> "case_manager"; "" for ROLE_UNSPECIFIED.
std::string RoleName(common::v1::Role role);

}  // namespace clinical::grpcx

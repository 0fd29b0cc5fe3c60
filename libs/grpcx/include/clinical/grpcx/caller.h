#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "clinical/common/v1/types.pb.h"
#include "google/protobuf/message.h"
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
  // How the call was allowed (set by Authorize): the relationship of the allowing rule
  // ("assigned", "team_supervisor", ..., "emergency"), and the emergency grant if any.
  std::string relationship;
  std::string emergency_grant_id;
};

// Where handlers learn who calls and whether they may. The platform's implementation is
// AccessControl: the identity comes from this call's own verified token (and connection
// certificate), never from another call on the same connection; the decision from the
// method's AccessPolicy and the service's facts. Thread-safe.
class CallerSource {
 public:
  virtual ~CallerSource() = default;
  // The verified person calling: user, role and tenant from the bearer token.
  // UNAUTHENTICATED when the call carries no verifiable identity (the Authenticator refused
  // such calls before any handler ran); PERMISSION_DENIED for a service identity (services
  // act in no tenant).
  virtual absl::StatusOr<Caller> CallerOf(const grpc::ServerContextBase& context) const = 0;

  // The caller, if the method's policy allows them this `request` (the call's request
  // message): every handler's first step, before it reads or writes anything.
  // PERMISSION_DENIED when no rule allows; NOT_FOUND (recorded as a refusal) for a case of
  // another tenant; NOT_FOUND for a named case that does not exist; UNAVAILABLE when the
  // facts cannot be had. The decision is recorded with the call.
  virtual absl::StatusOr<Caller> Authorize(const grpc::ServerContextBase& context,
                                           const google::protobuf::Message& request) const = 0;

  // The handler withheld part of the response itself (42 CFR Part 2 records the caller's
  // consent does not cover): the access record says the response was masked.
  virtual void MarkMasked(const grpc::ServerContextBase& context) const = 0;
};

// "case_manager" -> ROLE_CASE_MANAGER; ROLE_UNSPECIFIED if unknown.
common::v1::Role ParseRole(std::string_view text);
// ROLE_CASE_MANAGER -> "case_manager"; "" for ROLE_UNSPECIFIED.
std::string RoleName(common::v1::Role role);

}  // namespace clinical::grpcx

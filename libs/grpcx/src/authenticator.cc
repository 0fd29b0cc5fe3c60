#include "clinical/grpcx/authenticator.h"

#include <algorithm>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "clinical/access/decision.h"
#include "clinical/access/policy.h"
#include "clinical/access/record.h"
#include "clinical/access/recorder.h"
#include "clinical/identity/principal.h"
#include "grpcpp/security/auth_context.h"
#include "rpc_observer.h"

namespace clinical::grpcx {
namespace {

// Verified tokens are remembered this long at most (and never past their expiry), so a
// call's second identification (by its handler) is a lookup.
constexpr absl::Duration kCacheFor = absl::Seconds(60);
constexpr size_t kCacheEntries = 4096;

std::vector<std::string> Values(const grpc::AuthMetadataProcessor::InputMetadata& metadata, std::string_view key) {
  std::vector<std::string> out;
  auto [begin, end] = metadata.equal_range(grpc::string_ref(key.data(), key.size()));
  for (auto it = begin; it != end; ++it) out.emplace_back(it->second.data(), it->second.size());
  return out;
}

std::string First(const grpc::AuthMetadataProcessor::InputMetadata& metadata, std::string_view key) {
  std::vector<std::string> values = Values(metadata, key);
  return values.empty() ? "" : values.front();
}

// The SPIFFE ID the TLS handshake verified (a connection-level fact), or "".
std::string PeerSpiffeId(const grpc::AuthContext* context) {
  if (context == nullptr) return "";
  const std::vector<grpc::string_ref> values = context->FindPropertyValues(GRPC_PEER_SPIFFE_ID_PROPERTY_NAME);
  if (values.size() != 1) return "";
  return std::string(values[0].data(), values[0].size());
}

grpc::Status Unauthenticated(const std::string& message) {
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, message);
}

}  // namespace

bool NeedsNoToken(std::string_view grpc_method) {
  return grpc_method.starts_with("/grpc.health.v1.Health/") ||
         grpc_method.starts_with("/grpc.reflection.v1alpha.ServerReflection/") ||
         grpc_method.starts_with("/grpc.reflection.v1.ServerReflection/");
}

absl::StatusOr<std::shared_ptr<Authenticator>> Authenticator::Create(
    std::unique_ptr<identity::KeySet> keys, identity::VerifierOptions verifier, ServicePeers services,
    access::Recorder* recorder, logging::Logger& logger, metrics::Registry& metrics, Clock clock) {
  auto created = identity::TokenVerifier::Create(std::move(verifier), *keys);
  if (!created.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("token verification settings: ", std::string(created.status().message())));
  }
  return std::shared_ptr<Authenticator>(new Authenticator(std::move(keys), *std::move(created), std::move(services),
                                                          recorder, logger, metrics, std::move(clock)));
}

Authenticator::Authenticator(std::unique_ptr<identity::KeySet> keys, identity::TokenVerifier verifier,
                             ServicePeers services, access::Recorder* recorder, logging::Logger& logger,
                             metrics::Registry& metrics, Clock clock)
    : keys_(std::move(keys)),
      verifier_(std::move(verifier)),
      services_(std::move(services)),
      recorder_(recorder),
      logger_(logger),
      metrics_(metrics),
      clock_(std::move(clock)) {}

identity::Verification Authenticator::Verify(const std::string& token) const {
  const absl::Time now = clock_();
  {
    absl::MutexLock lock(&cache_mutex_);
    auto it = cache_.find(token);
    if (it != cache_.end() && now < it->second.valid_until) {
      identity::Verification hit;
      hit.status = absl::OkStatus();
      hit.token = it->second.token;
      return hit;
    }
  }
  identity::Verification verified = verifier_.Verify(token, now);
  if (verified.ok()) {
    absl::MutexLock lock(&cache_mutex_);
    if (cache_.size() >= kCacheEntries) {
      std::erase_if(cache_, [&](const auto& entry) { return entry.second.valid_until <= now; });
      if (cache_.size() >= kCacheEntries) cache_.clear();
    }
    cache_[token] = {*verified.token, std::min(now + kCacheFor, verified.token->expires_at)};
  }
  return verified;
}

std::variant<Identity, Authenticator::Refusal> Authenticator::Identify(const Presented& presented) const {
  Identity identity;
  identity.peer_identity = presented.peer_identity;
  if (presented.authorization.empty()) {
    const auto service = identity::ParseSpiffeId(presented.peer_identity, services_.trust_domain);
    if (service.has_value() && service->namespace_name == services_.namespace_name &&
        services_.names.count(service->service) > 0) {
      identity.service = true;
      identity.user_id = presented.peer_identity;
      identity.role = std::string(identity::kServiceRole);
      return identity;
    }
    return Refusal{"token_missing", Unauthenticated("bearer token required"), ""};
  }
  if (presented.authorization.size() > 1) {
    return Refusal{"token_malformed", Unauthenticated("exactly one authorization header expected"), ""};
  }
  // "Bearer <token>", the scheme case-insensitive (RFC 6750).
  const std::string& value = presented.authorization.front();
  constexpr size_t kScheme = 7;  // "bearer "
  if (value.size() <= kScheme || !absl::EqualsIgnoreCase(value.substr(0, kScheme), "bearer ")) {
    return Refusal{"token_malformed", Unauthenticated("authorization must be a bearer token"), ""};
  }
  const identity::Verification verified = Verify(value.substr(kScheme));
  if (!verified.ok()) {
    const grpc::StatusCode code = verified.status.code() == absl::StatusCode::kUnavailable
                                      ? grpc::StatusCode::UNAVAILABLE
                                      : grpc::StatusCode::UNAUTHENTICATED;
    return Refusal{std::string(identity::TokenProblemName(verified.problem)),
                   grpc::Status(code, std::string(verified.status.message())), verified.claimed_subject};
  }
  const identity::VerifiedToken& token = *verified.token;
  // The acting role: the token's only platform role, or the one the caller selects among
  // the token's roles. A selection outside them is refused, never honoured.
  if (!presented.acting_role.empty()) {
    if (std::find(token.roles.begin(), token.roles.end(), presented.acting_role) == token.roles.end()) {
      return Refusal{"role_not_granted", Unauthenticated("the selected role is not granted by the token"),
                     token.user_id};
    }
    identity.role = presented.acting_role;
  } else if (token.roles.size() == 1) {
    identity.role = token.roles.front();
  } else {
    return Refusal{"role_ambiguous",
                   Unauthenticated("the token grants several roles; select one with x-clinical-acting-role"),
                   token.user_id};
  }
  identity.user_id = token.user_id;
  identity.tenant_id = token.tenant_id;
  identity.on_behalf_of = token.on_behalf_of;
  return identity;
}

grpc::Status Authenticator::Process(const InputMetadata& metadata, grpc::AuthContext* context,
                                    OutputMetadata* /*consumed*/, OutputMetadata* /*response*/) {
  const std::string method = First(metadata, ":path");
  if (NeedsNoToken(method)) return grpc::Status::OK;
  Presented presented;
  presented.authorization = Values(metadata, kAuthorizationHeader);
  presented.acting_role = First(metadata, kActingRoleHeader);
  presented.peer_identity = PeerSpiffeId(context);
  auto identified = Identify(presented);
  if (const Refusal* refusal = std::get_if<Refusal>(&identified)) {
    return Refuse(metadata, method, presented.peer_identity, *refusal);
  }
  const Identity& identity = std::get<Identity>(identified);
  // What no relationship could allow is refused here, before any handler: a method nobody
  // declared a policy for, and a role none of its rules names.
  const std::optional<access::MethodPolicy> policy = access::PolicyFor(method);
  if (!policy.has_value() || policy->policy.allow().empty()) {
    return Refuse(metadata, method, presented.peer_identity,
                  Refusal{"no_policy", grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "method has no access policy"),
                          ""},
                  &identity);
  }
  if (!access::RoleMayCall(policy->policy, ParseRole(identity.role))) {
    return Refuse(metadata, method, presented.peer_identity,
                  Refusal{"role_not_permitted",
                          grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                       absl::StrCat("the role ", identity.role, " may not call this method")),
                          ""},
                  &identity);
  }
  // Nothing is written into `context`: it is the connection's, shared with later calls.
  // The token stays in the call's metadata, from which CallerOf derives the same identity.
  metrics_.GetCounter("clinical_authentication_total", "Calls authenticated or refused, by reason.",
                      {{"outcome", identity.service ? "service" : "person"}, {"reason", "verified"}})
      .Increment();
  return grpc::Status::OK;
}

Authenticator::Presented Authenticator::PresentedBy(const grpc::ServerContextBase& context) {
  Presented presented;
  const auto& metadata = context.client_metadata();
  auto [begin, end] = metadata.equal_range(kAuthorizationHeader);
  for (auto it = begin; it != end; ++it) presented.authorization.emplace_back(it->second.data(), it->second.size());
  if (auto role = metadata.find(kActingRoleHeader); role != metadata.end()) {
    presented.acting_role.assign(role->second.data(), role->second.size());
  }
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  presented.peer_identity = PeerSpiffeId(auth.get());
  return presented;
}

std::optional<Identity> Authenticator::IdentityOf(const grpc::ServerContextBase& context) const {
  auto identified = Identify(PresentedBy(context));
  if (const Identity* identity = std::get_if<Identity>(&identified)) return *identity;
  return std::nullopt;
}

absl::StatusOr<Caller> Authenticator::CallerOf(const grpc::ServerContextBase& context) const {
  auto identified = Identify(PresentedBy(context));
  if (const Refusal* refusal = std::get_if<Refusal>(&identified)) {
    return absl::Status(static_cast<absl::StatusCode>(refusal->status.error_code()), refusal->status.error_message());
  }
  const Identity& identity = std::get<Identity>(identified);
  // A service principal acts in no tenant: no tenant-scoped method serves it (and no
  // method's policy names the service role today, so the Authenticator refused it already).
  if (identity.service) return absl::PermissionDeniedError("a service identity may not call this method");
  Caller caller;
  caller.actor.set_user_id(identity.user_id);
  caller.actor.set_role(ParseRole(identity.role));
  caller.actor.set_on_behalf_of(identity.on_behalf_of);
  caller.tenant_id = identity.tenant_id;
  caller.peer_identity = identity.peer_identity;
  const auto& metadata = context.client_metadata();
  if (auto trace = metadata.find(kTraceparentHeader); trace != metadata.end()) {
    caller.trace.set_traceparent(std::string(trace->second.data(), trace->second.size()));
  }
  caller.peer = context.peer();
  return caller;
}

grpc::Status Authenticator::Refuse(const InputMetadata& metadata, const std::string& method,
                                   const std::string& peer_identity, const Refusal& refusal,
                                   const Identity* identity) {
  metrics_.GetCounter("clinical_authentication_total", "Calls authenticated or refused, by reason.",
                      {{"outcome", "refused"}, {"reason", refusal.reason}})
      .Increment();
  access::CallFacts facts;
  if (identity != nullptr) {
    // Authenticated, not authorized: the record names who was refused.
    facts.actor_id = identity->user_id;
    facts.actor_role = identity->role;
    facts.tenant_id = identity->tenant_id;
  }
  facts.method = method;
  facts.peer_identity = peer_identity;
  facts.denial_reason = refusal.reason;
  facts.claimed_subject = refusal.claimed_subject;
  facts.purpose_of_use = First(metadata, kPurposeHeader);
  facts.trace_id = internal::TraceIdOf(First(metadata, kTraceparentHeader));
  if (auto policy = access::PolicyFor(method); policy.has_value()) facts.resource_type = policy->policy.resource_type();
  // UNAUTHENTICATED maps to DENIED; UNAVAILABLE (keys not fetchable) to FAILED.
  facts.status_code = static_cast<int>(refusal.status.error_code());
  bool recorded = false;
  if (recorder_ != nullptr) {
    recorded = recorder_->Record(access::BuildRecord(facts, access::NewRecordId(), clock_())).ok();
  }
  // Never the token, nor what it claimed: the reason and the method only.
  logger_.Info("call refused", {{"method", method}, {"reason", refusal.reason}, {"recorded", recorded}});
  return refusal.status;
}

}  // namespace clinical::grpcx

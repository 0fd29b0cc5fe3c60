#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "clinical/config/config.h"
#include "clinical/grpcx/caller.h"
#include "clinical/grpcx/tls.h"
#include "clinical/identity/key_set.h"
#include "clinical/identity/verifier.h"
#include "clinical/logging/logger.h"
#include "clinical/metrics/registry.h"
#include "grpcpp/security/auth_metadata_processor.h"

namespace clinical::access {
class Recorder;
}

namespace clinical::grpcx {

// Who may be a service: SPIFFE IDs spiffe://<trust_domain>/ns/<namespace>/sa/<name> with a
// name from `names`. Normally the trust domain and namespace of the server's own
// certificate (AuthenticatorFromConfig reads them from it) and the platform's services.
struct ServicePeers {
  std::string trust_domain;
  std::string namespace_name;
  std::set<std::string> names = {"case", "scheduling", "audit", "notification", "views"};
};

// A verified identity: a person (from a bearer token) or a service (from its certificate).
struct Identity {
  bool service = false;
  std::string user_id;  // the staff id, or the service's SPIFFE ID
  std::string tenant_id;  // empty for a service
  std::string role;       // "case_manager", ..., or "service"
  std::string on_behalf_of;
  std::string peer_identity;  // SPIFFE ID of the connection's client certificate
};

// Authenticates every call, in two places that give the same answer:
//
//  * Before anything else (a gRPC AuthMetadataProcessor on the server's TLS credentials):
//    a call without a verifiable identity never reaches an interceptor or a handler. It
//    ends UNAUTHENTICATED (UNAVAILABLE while the issuer's keys cannot be fetched at all)
//    and leaves an access record with outcome DENIED, the reason, the method, the peer's
//    certificate identity and, if the token could be read, the subject it claimed (marked
//    unverified). Counts clinical_authentication_total{outcome,reason}.
//  * When a handler or the access interceptor asks who calls (CallerSource): the identity
//    is derived again from this call's own metadata and connection. gRPC's AuthContext is
//    shared by every call of a connection, so nothing per call is stored there; verified
//    tokens are cached (bounded, short-lived) so the second derivation costs a lookup.
//
// Who a call is:
//   * a person presents `authorization: Bearer <JWT>`, verified by identity::TokenVerifier
//     (signature against the issuer's JWKS, algorithm, issuer, audience, expiry); user,
//     acting role and tenant come from its claims only. When the token grants several
//     platform roles, `x-clinical-acting-role` selects one of them.
//   * a service presents no token: its verified client certificate's SPIFFE ID must name
//     one of `ServicePeers`; it becomes the role "service" (which a token can never claim).
//   * health checks and reflection need no token (orchestrators probe them; they show no
//     data). The TLS handshake already required a valid client certificate for them.
//
// It also refuses, before any handler runs, what no authorization could allow: a method
// without an access policy ("no_policy") and an identity whose role no rule of the method
// names ("role_not_permitted"; services, whose role no rule names today, included). Both
// end PERMISSION_DENIED with an access record naming the verified caller.
class Authenticator : public grpc::AuthMetadataProcessor {
 public:
  using Clock = std::function<absl::Time()>;

  // Owns the issuer's key set; `recorder` (may be null: refusals are then only logged and
  // counted) must outlive it. FAILED_PRECONDITION for unusable verifier options.
  static absl::StatusOr<std::shared_ptr<Authenticator>> Create(
      std::unique_ptr<identity::KeySet> keys, identity::VerifierOptions verifier, ServicePeers services,
      access::Recorder* recorder, logging::Logger& logger, metrics::Registry& metrics, Clock clock = absl::Now);

  // Blocking: verification may fetch keys and a refusal waits for its access record.
  bool IsBlocking() const override { return true; }
  grpc::Status Process(const InputMetadata& metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed, OutputMetadata* response) override;

  // The call's verified person (see CallerSource::CallerOf; AccessControl serves it).
  absl::StatusOr<Caller> CallerOf(const grpc::ServerContextBase& context) const;
  // The call's verified identity, people and services alike (for access records); nullopt
  // when it has none.
  std::optional<Identity> IdentityOf(const grpc::ServerContextBase& context) const;

 private:
  // Why a call has no identity: the reason recorded and counted (a fixed vocabulary), the
  // status, and the subject an unverifiable token claimed.
  struct Refusal {
    std::string reason;
    grpc::Status status;
    std::string claimed_subject;
  };
  // What a call presents: its authorization and acting-role header values, and the SPIFFE
  // ID of its connection's client certificate.
  struct Presented {
    std::vector<std::string> authorization;
    std::string acting_role;
    std::string peer_identity;
  };
  struct CachedToken {
    identity::VerifiedToken token;
    absl::Time valid_until;
  };

  Authenticator(std::unique_ptr<identity::KeySet> keys, identity::TokenVerifier verifier, ServicePeers services,
                access::Recorder* recorder, logging::Logger& logger, metrics::Registry& metrics, Clock clock);

  // The one decision, used by both places.
  std::variant<Identity, Refusal> Identify(const Presented& presented) const;
  identity::Verification Verify(const std::string& token) const;
  static Presented PresentedBy(const grpc::ServerContextBase& context);
  // Records and returns a refusal; `identity` is the verified caller when authentication
  // succeeded and authorization refused.
  grpc::Status Refuse(const InputMetadata& metadata, const std::string& method, const std::string& peer_identity,
                      const Refusal& refusal, const Identity* identity = nullptr);

  const std::unique_ptr<identity::KeySet> keys_;
  const identity::TokenVerifier verifier_;
  const ServicePeers services_;
  access::Recorder* const recorder_;
  logging::Logger& logger_;
  metrics::Registry& metrics_;
  const Clock clock_;
  mutable absl::Mutex cache_mutex_;
  mutable std::map<std::string, CachedToken> cache_ ABSL_GUARDED_BY(cache_mutex_);
};

// Methods that need no token (the TLS handshake still verified the client certificate).
bool NeedsNoToken(std::string_view grpc_method);

// The options that say how tokens are verified (oidc-issuer, oidc-audience, oidc-jwks-url,
// oidc-ca-file, claim names, clock skew, key refresh), and the platform's Authenticator
// built from them for a server whose own TLS identity is `tls` (its SPIFFE ID gives the
// trust domain and namespace of its fellow services). The issuer's JWKS is found through
// OIDC discovery unless oidc-jwks-url is set, and fetched over HTTPS verified against
// oidc-ca-file (the system CAs when empty). FAILED_PRECONDITION for unusable settings;
// UNAVAILABLE when discovery does not answer within oidc-discovery-timeout.
std::vector<config::Option> AuthenticationOptions();
absl::StatusOr<std::shared_ptr<Authenticator>> AuthenticatorFromConfig(
    const config::Config& config, const TlsFiles& tls, access::Recorder* recorder,
    logging::Logger& logger, metrics::Registry& metrics);

}  // namespace clinical::grpcx

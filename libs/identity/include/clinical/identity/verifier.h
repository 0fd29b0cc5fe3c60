#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/identity/key_set.h"

namespace clinical::identity {

// Where the identity is in the token's payload. Each is a dot path ("realm_access.roles"
// walks into the object "realm_access"); a top-level claim whose name is the whole path
// wins over the walk, so namespaced claims such as "https://clinical.example/roles" work.
// Examples: Keycloak user "preferred_username" or "sub", roles "realm_access.roles";
// Azure AD user "oid", tenant "tid", roles "roles"; Okta roles "groups".
struct ClaimNames {
  std::string user = "sub";
  std::string roles = "roles";
  std::string tenant = "tenant";
};

struct VerifierOptions {
  std::string issuer;                  // exact "iss"
  std::vector<std::string> audiences;  // "aud" must contain one of them
  std::vector<std::string> algorithms = {"RS256", "ES256"};
  absl::Duration clock_skew = absl::Seconds(60);  // tolerance for exp, nbf and iat
  ClaimNames claims;
  // When set, only roles that start with it count, and it is removed before the role is
  // compared with the platform roles ("clinical." + "supervisor"). Other entries are
  // ignored: an Okta "administrator" group of another application is not ours.
  std::string role_prefix;
  // Larger tokens are refused before any parsing (libjwt copies each part onto the stack).
  size_t max_token_bytes = 16 * 1024;

  // INVALID_ARGUMENT naming the option when the issuer or the audiences are empty, an
  // algorithm is not RS256 or ES256, the skew is negative or above 5 minutes, a claim
  // name is empty, or max_token_bytes is 0 or above 64 KiB.
  absl::Status Validate() const;
};

// Why a token was refused. The names (TokenProblemName) are stable: audit records and
// metric labels use them.
enum class TokenProblem {
  kNone,                // verified
  kMissing,             // no token
  kMalformed,           // not a compact JWS, header/payload not JSON objects, bad claim type,
                        // typ neither JWT nor at+jwt (at+jwt itself: see Verify)
  kTooLarge,            // above max_token_bytes
  kAlgorithmRefused,    // alg outside the allow-list (none, HS*, RS384, ...), a crit header,
                        // or alg different from the algorithm of the key its kid names
  kUnknownKey,          // no issuer key for the kid (after at most one refresh)
  kBadSignature,        // signature does not verify with the issuer's key
  kWrongIssuer,         // iss missing or not the configured issuer
  kWrongAudience,       // aud missing or none of the configured audiences
  kExpired,             // now > exp + skew
  kNotYetValid,         // now < nbf - skew, or iat > now + skew
  kMissingClaim,        // no exp, user, tenant or roles claim, or no platform role in it
  kInvalidIdentity,     // user, tenant or act.sub fails IsValidUserId/IsValidTenantId
  kServiceRoleClaimed,  // the token claims the service role
  kKeysUnavailable,     // the issuer's keys could not be fetched at all
};

// "token_expired", "unknown_key", ... ("none" for kNone).
std::string_view TokenProblemName(TokenProblem problem);

// The identity a verified token establishes.
struct VerifiedToken {
  std::string user_id;             // passes IsValidUserId
  std::string tenant_id;           // passes IsValidTenantId
  std::vector<std::string> roles;  // platform roles (kPlatformRoles), prefix removed, unique
  std::string on_behalf_of;        // act.sub (RFC 8693 actor); empty when no "act"
  std::string token_id;            // jti; empty when absent
  absl::Time expires_at;           // exp
};

struct Verification {
  // OK; UNAUTHENTICATED for every problem of the token; UNAVAILABLE only for
  // kKeysUnavailable. Messages are fixed texts that never contain token content. A
  // Verification that Verify did not produce is not OK (fail closed).
  absl::Status status = absl::UnauthenticatedError("bearer token not verified");
  TokenProblem problem = TokenProblem::kNone;
  std::optional<VerifiedToken> token;  // set exactly when status is OK
  // UNVERIFIED: the token's user claim when the payload could be decoded and the value
  // passes IsValidUserId, whatever else was wrong with the token; empty otherwise. For
  // forensic records of refusals only, never for decisions.
  std::string claimed_subject;

  bool ok() const { return status.ok() && token.has_value(); }
};

// Verifies OIDC bearer tokens (compact JWS, RS256/ES256) of one issuer against its keys.
// Thread-safe: Verify is const and KeySet is thread-safe. The KeySet must outlive it.
class TokenVerifier {
 public:
  // INVALID_ARGUMENT when options.Validate() fails: a verifier cannot be misconfigured.
  static absl::StatusOr<TokenVerifier> Create(VerifierOptions options, KeySet& keys);

  // Verifies `token` (the compact JWS, without "Bearer ") at time `now`. Checks, in this
  // order: size; three base64url parts; header JSON; alg in the allow-list and no crit;
  // typ; kid lookup; key algorithm == alg; signature (libjwt); iss; aud; exp; nbf; iat;
  // user and tenant claims; act.sub and jti; roles. The first failing check decides the
  // problem. Tokens with typ "at+jwt" (RFC 9068) are refused as kMalformed: libjwt 1.10
  // rejects any typ other than "JWT" inside its verification, so they cannot be checked.
  Verification Verify(std::string_view token, absl::Time now) const;

 private:
  TokenVerifier(VerifierOptions options, KeySet& keys);

  VerifierOptions options_;
  KeySet* keys_;  // not owned, never null
};

}  // namespace clinical::identity

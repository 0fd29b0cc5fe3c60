#include "clinical/identity/verifier.h"

#include <jwt.h>
#include <openssl/err.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <utility>

#include "base64url.h"
#include "clinical/identity/principal.h"
#include "nlohmann/json.hpp"

namespace clinical::identity {
namespace {

using Json = nlohmann::json;
using enum TokenProblem;

constexpr absl::Duration kMaxClockSkew = absl::Minutes(5);
// libjwt copies each token part onto the stack (alloca); this bounds that copy.
constexpr size_t kMaxTokenBytesLimit = 64 * 1024;
constexpr size_t kMaxTokenIdBytes = 256;

struct JwtFree {
  void operator()(jwt_t* jwt) const { jwt_free(jwt); }
};
using Jwt = std::unique_ptr<jwt_t, JwtFree>;

// The algorithms a verifier can be configured with, as libjwt names them.
std::optional<jwt_alg_t> LibjwtAlgorithm(std::string_view name) {
  if (name == "RS256") return JWT_ALG_RS256;
  if (name == "ES256") return JWT_ALG_ES256;
  return std::nullopt;
}

struct Refusal {
  TokenProblem problem;
  const char* message;  // fixed text: never token content
};

using Check = std::optional<Refusal>;
constexpr Check kPassed = std::nullopt;

struct CompactParts {
  std::string_view header, payload, signature;
};

// "header.payload.signature", each canonical base64url; header and payload non-empty.
// The signature may be empty here (alg "none" is refused later under its own name).
std::optional<CompactParts> SplitCompact(std::string_view token) {
  const size_t first = token.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const size_t second = token.find('.', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  if (token.find('.', second + 1) != std::string_view::npos) return std::nullopt;
  const CompactParts parts{token.substr(0, first), token.substr(first + 1, second - first - 1),
                           token.substr(second + 1)};
  if (parts.header.empty() || parts.payload.empty()) return std::nullopt;
  // Canonical decoding of all three parts: a changed character never yields the same
  // bytes, and nothing but the base64url alphabet reaches libjwt.
  for (std::string_view part : {parts.header, parts.payload, parts.signature}) {
    if (!internal::DecodeBase64Url(part)) return std::nullopt;
  }
  return parts;
}

// The JSON object encoded in a base64url part, or a discarded value.
Json DecodeJsonObject(std::string_view part) {
  const std::optional<std::string> bytes = internal::DecodeBase64Url(part);
  if (!bytes) return Json(Json::value_t::discarded);
  Json json = Json::parse(*bytes, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return Json(Json::value_t::discarded);
  return json;
}

// The claim at `path` (see ClaimNames), or nullptr.
const Json* ClaimAt(const Json& payload, const std::string& path) {
  if (const auto it = payload.find(path); it != payload.end()) return &*it;
  const Json* node = &payload;
  std::string_view rest = path;
  while (true) {
    const size_t dot = rest.find('.');
    if (!node->is_object()) return nullptr;
    const auto it = node->find(std::string(rest.substr(0, dot)));
    if (it == node->end()) return nullptr;
    node = &*it;
    if (dot == std::string_view::npos) return node;
    rest.remove_prefix(dot + 1);
  }
}

// A string claim, or nullptr when absent or of another type.
const std::string* StringClaim(const Json& payload, const std::string& path) {
  const Json* claim = ClaimAt(payload, path);
  if (claim == nullptr || !claim->is_string()) return nullptr;
  return &claim->get_ref<const std::string&>();
}

// A NumericDate (RFC 7519 §2): seconds since the epoch, integer or not.
std::optional<absl::Time> NumericDate(const Json& value) {
  if (value.is_number_unsigned()) {
    const uint64_t seconds = value.get<uint64_t>();
    if (seconds > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return absl::FromUnixSeconds(static_cast<int64_t>(seconds));
  }
  if (value.is_number_integer()) return absl::FromUnixSeconds(value.get<int64_t>());
  if (value.is_number_float()) {
    const double seconds = value.get<double>();
    if (!std::isfinite(seconds) || std::fabs(seconds) > 1e15) return std::nullopt;
    return absl::UnixEpoch() + absl::Seconds(seconds);
  }
  return std::nullopt;
}

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreAsciiCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return AsciiLower(x) == AsciiLower(y);
         });
}

Check CheckHeader(const Json& header, const std::vector<std::string>& algorithms) {
  const auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string()) {
    return Refusal{kMalformed, "bearer token header has no algorithm"};
  }
  // Exact, case-sensitive (RFC 7515 §4.1.1); libjwt alone would also take "rs256".
  const std::string& name = alg->get_ref<const std::string&>();
  if (std::find(algorithms.begin(), algorithms.end(), name) == algorithms.end() ||
      !LibjwtAlgorithm(name)) {
    return Refusal{kAlgorithmRefused, "bearer token algorithm refused"};
  }
  // RFC 7515 §4.1.11: extensions listed in crit must be understood; we understand none.
  if (header.contains("crit")) {
    return Refusal{kAlgorithmRefused, "bearer token has critical header parameters"};
  }
  if (const auto typ = header.find("typ"); typ != header.end()) {
    if (!typ->is_string()) return Refusal{kMalformed, "bearer token type malformed"};
    const std::string& type = typ->get_ref<const std::string&>();
    if (EqualsIgnoreAsciiCase(type, "at+jwt")) {
      return Refusal{kMalformed, "bearer token type at+jwt not supported"};
    }
    if (!EqualsIgnoreAsciiCase(type, "JWT")) {
      return Refusal{kMalformed, "bearer token type refused"};
    }
  }
  if (const auto kid = header.find("kid"); kid != header.end() && !kid->is_string()) {
    return Refusal{kMalformed, "bearer token key id malformed"};
  }
  return kPassed;
}

// Runs libjwt over the whole token with the one key selected for it. libjwt trusts the
// token's alg, which is why the caller pins alg to the key's algorithm before, and why
// the algorithm libjwt used is compared again after.
Check CheckSignature(std::string_view token, const PublicKey& key) {
  const std::optional<jwt_alg_t> expected = LibjwtAlgorithm(key.algorithm);
  if (!expected) return Refusal{kAlgorithmRefused, "bearer token algorithm refused"};
  const std::string text(token);  // libjwt wants a NUL-terminated string
  jwt_t* raw = nullptr;
  const int rc = jwt_decode(&raw, text.c_str(),
                            reinterpret_cast<const unsigned char*>(key.pem.data()),
                            static_cast<int>(key.pem.size()));
  const Jwt jwt(raw);
  // A failed verification leaves entries on OpenSSL's per-thread error queue; a TLS
  // handshake on this thread must not find them.
  ERR_clear_error();
  if (rc != 0 || !jwt) return Refusal{kBadSignature, "bearer token signature invalid"};
  if (jwt_get_alg(jwt.get()) != *expected) {
    return Refusal{kAlgorithmRefused, "bearer token algorithm refused"};
  }
  return kPassed;
}

Check CheckAudience(const Json& payload, const std::vector<std::string>& audiences) {
  const auto accepted = [&](const Json& value) {
    return value.is_string() && std::find(audiences.begin(), audiences.end(),
                                          value.get_ref<const std::string&>()) != audiences.end();
  };
  if (const auto aud = payload.find("aud"); aud != payload.end()) {
    if (accepted(*aud)) return kPassed;
    if (aud->is_array() && std::any_of(aud->begin(), aud->end(), accepted)) return kPassed;
  }
  return Refusal{kWrongAudience, "bearer token audience not accepted"};
}

Check CheckTimes(const Json& payload, absl::Time now, absl::Duration skew,
                 absl::Time& expires_at) {
  const auto exp = payload.find("exp");
  if (exp == payload.end()) return Refusal{kMissingClaim, "bearer token has no expiry"};
  const std::optional<absl::Time> expiry = NumericDate(*exp);
  if (!expiry) return Refusal{kMalformed, "bearer token expiry malformed"};
  if (now > *expiry + skew) return Refusal{kExpired, "bearer token expired"};
  expires_at = *expiry;
  if (const auto nbf = payload.find("nbf"); nbf != payload.end()) {
    const std::optional<absl::Time> not_before = NumericDate(*nbf);
    if (!not_before) return Refusal{kMalformed, "bearer token not-before malformed"};
    if (now < *not_before - skew) return Refusal{kNotYetValid, "bearer token not yet valid"};
  }
  if (const auto iat = payload.find("iat"); iat != payload.end()) {
    const std::optional<absl::Time> issued_at = NumericDate(*iat);
    if (!issued_at) return Refusal{kMalformed, "bearer token issue time malformed"};
    if (*issued_at > now + skew) return Refusal{kNotYetValid, "bearer token issued in the future"};
  }
  return kPassed;
}

// jti goes into audit records: printable ASCII without spaces, bounded.
bool IsPrintableTokenId(const std::string& id) {
  return !id.empty() && id.size() <= kMaxTokenIdBytes &&
         std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

Check CheckIdentity(const Json& payload, const ClaimNames& claims, VerifiedToken& token) {
  const std::string* user = StringClaim(payload, claims.user);
  if (user == nullptr) return Refusal{kMissingClaim, "bearer token has no user claim"};
  if (!IsValidUserId(*user)) return Refusal{kInvalidIdentity, "bearer token user id invalid"};
  const std::string* tenant = StringClaim(payload, claims.tenant);
  if (tenant == nullptr) return Refusal{kMissingClaim, "bearer token has no tenant claim"};
  if (!IsValidTenantId(*tenant)) return Refusal{kInvalidIdentity, "bearer token tenant id invalid"};
  token.user_id = *user;
  token.tenant_id = *tenant;

  // RFC 8693 §4.1: the acting party. Nested "act" (earlier actors in a chain) is not used.
  if (const auto act = payload.find("act"); act != payload.end()) {
    const std::string* actor = act->is_object() ? StringClaim(*act, "sub") : nullptr;
    if (actor == nullptr) return Refusal{kMalformed, "bearer token actor claim malformed"};
    if (!IsValidUserId(*actor)) return Refusal{kInvalidIdentity, "bearer token actor id invalid"};
    token.on_behalf_of = *actor;
  }
  if (const auto jti = payload.find("jti"); jti != payload.end()) {
    if (!jti->is_string() || !IsPrintableTokenId(jti->get_ref<const std::string&>())) {
      return Refusal{kMalformed, "bearer token id malformed"};
    }
    token.token_id = jti->get<std::string>();
  }
  return kPassed;
}

Check CheckRoles(const Json& payload, const std::string& path, const std::string& prefix,
                 std::vector<std::string>& roles) {
  const Json* claim = ClaimAt(payload, path);
  if (claim == nullptr) return Refusal{kMissingClaim, "bearer token has no roles claim"};
  std::vector<std::string_view> entries;
  if (claim->is_string()) {
    // A space-separated list, as in OAuth "scope".
    std::string_view rest = claim->get_ref<const std::string&>();
    while (!rest.empty()) {
      const size_t space = rest.find(' ');
      if (space != 0) entries.push_back(rest.substr(0, space));
      rest.remove_prefix(space == std::string_view::npos ? rest.size() : space + 1);
    }
  } else if (claim->is_array()) {
    for (const Json& entry : *claim) {
      if (!entry.is_string()) return Refusal{kMalformed, "bearer token roles claim malformed"};
      entries.push_back(entry.get_ref<const std::string&>());
    }
  } else {
    return Refusal{kMalformed, "bearer token roles claim malformed"};
  }
  for (std::string_view entry : entries) {
    if (entry.substr(0, prefix.size()) != prefix) continue;
    entry.remove_prefix(prefix.size());
    // In any spelling: the gRPC layer parses role names case-insensitively.
    if (EqualsIgnoreAsciiCase(entry, kServiceRole)) {
      return Refusal{kServiceRoleClaimed, "bearer token claims the service role"};
    }
    if (IsPlatformRole(entry) && std::find(roles.begin(), roles.end(), entry) == roles.end()) {
      roles.emplace_back(entry);
    }
  }
  if (roles.empty()) return Refusal{kMissingClaim, "bearer token grants no platform role"};
  return kPassed;
}

Verification Refused(const Refusal& refusal, std::string claimed_subject) {
  Verification result;
  result.problem = refusal.problem;
  result.status = refusal.problem == kKeysUnavailable ? absl::UnavailableError(refusal.message)
                                                      : absl::UnauthenticatedError(refusal.message);
  result.claimed_subject = std::move(claimed_subject);
  return result;
}

}  // namespace

absl::Status VerifierOptions::Validate() const {
  const auto invalid = [](const char* message) { return absl::InvalidArgumentError(message); };
  if (issuer.empty()) return invalid("verifier option issuer is empty");
  if (audiences.empty()) return invalid("verifier option audiences is empty");
  if (std::any_of(audiences.begin(), audiences.end(), [](const auto& a) { return a.empty(); })) {
    return invalid("verifier option audiences has an empty entry");
  }
  if (algorithms.empty()) return invalid("verifier option algorithms is empty");
  if (!std::all_of(algorithms.begin(), algorithms.end(),
                   [](const auto& a) { return LibjwtAlgorithm(a).has_value(); })) {
    return invalid("verifier option algorithms admits only RS256 and ES256");
  }
  if (clock_skew < absl::ZeroDuration() || clock_skew > kMaxClockSkew) {
    return invalid("verifier option clock_skew must be within 0 to 5 minutes");
  }
  if (claims.user.empty() || claims.roles.empty() || claims.tenant.empty()) {
    return invalid("verifier option claims has an empty claim name");
  }
  if (max_token_bytes == 0 || max_token_bytes > kMaxTokenBytesLimit) {
    return invalid("verifier option max_token_bytes must be within 1 to 65536");
  }
  return absl::OkStatus();
}

std::string_view TokenProblemName(TokenProblem problem) {
  switch (problem) {
    case kNone: return "none";
    case kMissing: return "token_missing";
    case kMalformed: return "token_malformed";
    case kTooLarge: return "token_too_large";
    case kAlgorithmRefused: return "algorithm_refused";
    case kUnknownKey: return "unknown_key";
    case kBadSignature: return "bad_signature";
    case kWrongIssuer: return "wrong_issuer";
    case kWrongAudience: return "wrong_audience";
    case kExpired: return "token_expired";
    case kNotYetValid: return "token_not_yet_valid";
    case kMissingClaim: return "missing_claim";
    case kInvalidIdentity: return "invalid_identity";
    case kServiceRoleClaimed: return "service_role_claimed";
    case kKeysUnavailable: return "keys_unavailable";
  }
  return "unknown";
}

absl::StatusOr<TokenVerifier> TokenVerifier::Create(VerifierOptions options, KeySet& keys) {
  if (absl::Status status = options.Validate(); !status.ok()) return status;
  return TokenVerifier(std::move(options), keys);
}

TokenVerifier::TokenVerifier(VerifierOptions options, KeySet& keys)
    : options_(std::move(options)), keys_(&keys) {}

Verification TokenVerifier::Verify(std::string_view token, absl::Time now) const {
  std::string claimed_subject;
  const auto refuse = [&](Refusal refusal) { return Refused(refusal, claimed_subject); };

  if (token.empty()) return refuse({kMissing, "bearer token missing"});
  if (token.size() > options_.max_token_bytes) return refuse({kTooLarge, "bearer token too large"});
  const std::optional<CompactParts> parts = SplitCompact(token);
  if (!parts) return refuse({kMalformed, "bearer token malformed"});
  const Json header = DecodeJsonObject(parts->header);
  if (header.is_discarded()) return refuse({kMalformed, "bearer token header malformed"});

  // Unverified until the signature check: read here only for the forensic claimed_subject.
  const Json payload = DecodeJsonObject(parts->payload);
  if (!payload.is_discarded()) {
    const std::string* user = StringClaim(payload, options_.claims.user);
    if (user != nullptr && IsValidUserId(*user)) claimed_subject = *user;
  }

  if (Check refusal = CheckHeader(header, options_.algorithms)) return refuse(*refusal);
  const std::string& algorithm = header.find("alg")->get_ref<const std::string&>();
  const auto kid = header.find("kid");
  const std::string key_id = kid == header.end() ? std::string() : kid->get<std::string>();
  const absl::StatusOr<PublicKey> key = keys_->Find(key_id, algorithm, now);
  if (absl::IsNotFound(key.status())) {
    return refuse({kUnknownKey, "bearer token signed by an unknown key"});
  }
  if (!key.ok()) return refuse({kKeysUnavailable, "issuer signing keys unavailable"});
  // Against key confusion: the token's alg must be the algorithm of the key its kid
  // names, so that e.g. an RSA public key is never used as an HMAC secret.
  if (key->algorithm != algorithm) {
    return refuse({kAlgorithmRefused, "bearer token algorithm does not match its key"});
  }
  if (payload.is_discarded()) return refuse({kMalformed, "bearer token payload malformed"});
  if (parts->signature.empty()) return refuse({kBadSignature, "bearer token signature invalid"});
  if (Check refusal = CheckSignature(token, *key)) return refuse(*refusal);

  // From here on the payload is the issuer's.
  const std::string* issuer = StringClaim(payload, "iss");
  if (issuer == nullptr || *issuer != options_.issuer) {
    return refuse({kWrongIssuer, "bearer token issuer not accepted"});
  }
  if (Check refusal = CheckAudience(payload, options_.audiences)) return refuse(*refusal);
  VerifiedToken verified;
  if (Check refusal = CheckTimes(payload, now, options_.clock_skew, verified.expires_at)) {
    return refuse(*refusal);
  }
  if (Check refusal = CheckIdentity(payload, options_.claims, verified)) return refuse(*refusal);
  if (Check refusal =
          CheckRoles(payload, options_.claims.roles, options_.role_prefix, verified.roles)) {
    return refuse(*refusal);
  }
  Verification result;
  result.status = absl::OkStatus();
  result.claimed_subject = verified.user_id;
  result.token = std::move(verified);
  return result;
}

}  // namespace clinical::identity

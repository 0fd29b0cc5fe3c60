#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace clinical::identity {

// A public signing key of an issuer, ready for signature verification.
struct PublicKey {
  std::string kid;        // the JWK's "kid"; may be empty
  std::string algorithm;  // "RS256" or "ES256"
  std::string pem;        // SubjectPublicKeyInfo, PEM ("-----BEGIN PUBLIC KEY-----")
};

// The signing keys of a JSON Web Key Set (RFC 7517) that this library can verify with:
// RSA keys (kty "RSA", n, e) with a modulus of 2048 to 8192 bits, and EC P-256 keys
// (kty "EC", crv "P-256", x, y; the point must lie on the curve). A key without "alg"
// gets RS256 (RSA) or ES256 (EC). Keys are skipped, not refused, when "use" is present
// and not "sig", "key_ops" lacks "verify", kty/crv/alg is another one, or the key
// material is malformed or too weak: issuers publish encryption keys and other
// algorithms next to the keys we use. A later key with the same kid and algorithm as an
// earlier one is skipped. Certificates (x5c) are ignored: the key is n/e or x/y.
//
// INVALID_ARGUMENT when `json` is not a JSON object with a "keys" array. The result may be
// empty. Thread-safe (pure).
absl::StatusOr<std::vector<PublicKey>> ParseJwks(std::string_view json);

// The JWKS URL from an OpenID Provider configuration document
// (<issuer>/.well-known/openid-configuration). Its "issuer" must equal `expected_issuer`
// exactly (OpenID Connect Discovery §4.3: otherwise the document may belong to another
// provider) and its "jwks_uri" must be an https URL with a host. INVALID_ARGUMENT
// otherwise; messages name the field, never the document's values.
absl::StatusOr<std::string> JwksUriFromDiscovery(std::string_view openid_configuration_json,
                                                 std::string_view expected_issuer);

}  // namespace clinical::identity

#pragma once

// Test-only helpers: key pairs generated with OpenSSL, their JWKs, tokens signed with
// libjwt (or directly with OpenSSL where libjwt cannot produce the header a test needs),
// and a stand-in for the issuer's JWKS endpoint.

#include <jwt.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "clinical/identity/key_set.h"
#include "nlohmann/json.hpp"

namespace clinical::identity::test_support {

using Json = nlohmann::json;

struct TestKey {
  std::string kid;
  std::string algorithm;  // "RS256" or "ES256"
  std::string private_pem;
  std::string public_pem;
  Json jwk;  // the public JWK: kty, kid, use "sig", alg, n/e or crv/x/y
};

TestKey MakeRsaKey(const std::string& kid, int bits = 2048);
TestKey MakeEcKey(const std::string& kid);

// {"keys":[...]} of the given JWKs.
std::string JwksOf(const std::vector<Json>& jwks);

// Unpadded base64url, written independently of the library's decoder.
std::string Base64UrlEncode(std::string_view bytes);

// A token signed by libjwt with `alg` and `key` (a private key PEM, or the HMAC secret
// for HS*). libjwt writes the header itself: {"typ":"JWT","alg":...} plus `headers`.
std::string SignWithLibjwt(const Json& claims, jwt_alg_t alg, std::string_view key,
                           const std::map<std::string, std::string>& headers = {});

// A token with exactly `header` and `payload`, RS256-signed with `key` through OpenSSL
// (for headers libjwt will not write: another typ, crit, a lowercase alg).
std::string SignRs256Raw(const Json& header, const Json& payload, const TestKey& key);

// "header.payload." with no signature.
std::string Unsigned(const Json& header, const Json& payload);

// The issuer's JWKS endpoint: serves a body or fails, and counts calls. Thread-safe.
class FakeJwksEndpoint {
 public:
  void Serve(std::string body);
  void Fail(absl::Status status);
  int calls() const;
  std::string last_url() const;
  // A fetcher bound to this endpoint (which must outlive it).
  KeySet::Fetcher Fetcher();

 private:
  mutable absl::Mutex mu_;
  std::string body_ ABSL_GUARDED_BY(mu_);
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_url_ ABSL_GUARDED_BY(mu_);
};

}  // namespace clinical::identity::test_support

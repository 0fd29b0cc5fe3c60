// What libjwt 1.10 (Debian bookworm) does on its own, pinned because the verifier's
// defences are built around it. If a libjwt update changes one of these, this test says
// which assumption to revisit.
#include <jwt.h>

#include <memory>

#include "gtest/gtest.h"
#include "clinical/identity/testing/test_tokens.h"

namespace clinical::identity {
namespace {

using test_support::Base64UrlEncode;
using test_support::Json;
using test_support::MakeEcKey;
using test_support::MakeRsaKey;
using test_support::SignRs256Raw;
using test_support::SignWithLibjwt;
using test_support::TestKey;
using test_support::Unsigned;

struct JwtFree {
  void operator()(jwt_t* jwt) const { jwt_free(jwt); }
};

// jwt_decode's result code, with `key` as the verification key (nullptr: none).
int Decode(const std::string& token, const std::string* key, jwt_alg_t* alg = nullptr) {
  jwt_t* raw = nullptr;
  const int rc = jwt_decode(&raw, token.c_str(),
                            key ? reinterpret_cast<const unsigned char*>(key->data()) : nullptr,
                            key ? static_cast<int>(key->size()) : 0);
  std::unique_ptr<jwt_t, JwtFree> jwt(raw);
  if (alg != nullptr && jwt) *alg = jwt_get_alg(jwt.get());
  return rc;
}

const TestKey& RsaKey() {
  static const TestKey key = MakeRsaKey("rsa-1");
  return key;
}

const Json kClaims = {{"sub", "u-1"}};

TEST(LibjwtBehaviourTest, TrustsTheTokensAlgSoAPublicKeyPemVerifiesAnHs256Token) {
  // The key confusion attack works against jwt_decode alone: hence the verifier pins alg
  // to the key's algorithm before calling it and checks jwt_get_alg after.
  const std::string token = SignWithLibjwt(kClaims, JWT_ALG_HS256, RsaKey().public_pem);
  jwt_alg_t alg = JWT_ALG_INVAL;
  EXPECT_EQ(Decode(token, &RsaKey().public_pem, &alg), 0);
  EXPECT_EQ(alg, JWT_ALG_HS256);
}

TEST(LibjwtBehaviourTest, AcceptsAlgNoneWithoutKeyAndRefusesItWithOne) {
  const std::string token = Unsigned({{"alg", "none"}}, kClaims);
  EXPECT_EQ(Decode(token, nullptr), 0);  // never call jwt_decode without a key
  EXPECT_NE(Decode(token, &RsaKey().public_pem), 0);
}

TEST(LibjwtBehaviourTest, ComparesAlgorithmNamesCaseInsensitively) {
  const std::string token = SignRs256Raw({{"alg", "rs256"}}, kClaims, RsaKey());
  jwt_alg_t alg = JWT_ALG_INVAL;
  EXPECT_EQ(Decode(token, &RsaKey().public_pem, &alg), 0);
  EXPECT_EQ(alg, JWT_ALG_RS256);
}

TEST(LibjwtBehaviourTest, RefusesEveryTypButJwt) {
  EXPECT_EQ(Decode(SignRs256Raw({{"alg", "RS256"}, {"typ", "jwt"}}, kClaims, RsaKey()), &RsaKey().public_pem), 0);
  EXPECT_EQ(Decode(SignRs256Raw({{"alg", "RS256"}}, kClaims, RsaKey()), &RsaKey().public_pem), 0);
  EXPECT_NE(Decode(SignRs256Raw({{"alg", "RS256"}, {"typ", "at+jwt"}}, kClaims, RsaKey()), &RsaKey().public_pem), 0);
}

TEST(LibjwtBehaviourTest, Es256SignaturesAreRawRAndSOf64Bytes) {
  // JOSE format (RFC 7518 §3.4), as issuers produce it: not DER.
  const TestKey ec = MakeEcKey("ec-1");
  const std::string token = SignWithLibjwt(kClaims, JWT_ALG_ES256, ec.private_pem);
  const std::string signature = token.substr(token.rfind('.') + 1);
  EXPECT_EQ(signature.size(), 86u);  // 64 bytes
  EXPECT_EQ(Decode(token, &ec.public_pem), 0);
}

}  // namespace
}  // namespace clinical::identity

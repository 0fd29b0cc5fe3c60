// JWKS parsing (which keys are used, which are skipped, what is not a JWKS) and the
// discovery document's jwks_uri.
#include "clinical/identity/jwks.h"

#include "gtest/gtest.h"
#include "clinical/identity/testing/test_tokens.h"

namespace clinical::identity {
namespace {

using test_support::Base64UrlEncode;
using test_support::Json;
using test_support::JwksOf;
using test_support::MakeEcKey;
using test_support::MakeRsaKey;
using test_support::TestKey;

// Key generation is slow (RSA), so the suite shares one pair of each type.
class JwksTest : public ::testing::Test {
 protected:
  JwksTest() : rsa_(&SharedRsaKey()), ec_(&SharedEcKey()) {}
  static const TestKey& SharedRsaKey() {
    static const TestKey key = MakeRsaKey("rsa-1");
    return key;
  }
  static const TestKey& SharedEcKey() {
    static const TestKey key = MakeEcKey("ec-1");
    return key;
  }
  const TestKey* rsa_;
  const TestKey* ec_;
};

TEST_F(JwksTest, TurnsRsaAndEcKeysIntoTheirPublicKeyPem) {
  auto keys = ParseJwks(JwksOf({rsa_->jwk, ec_->jwk}));
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].kid, "rsa-1");
  EXPECT_EQ((*keys)[0].algorithm, "RS256");
  EXPECT_EQ((*keys)[0].pem, rsa_->public_pem);
  EXPECT_EQ((*keys)[1].kid, "ec-1");
  EXPECT_EQ((*keys)[1].algorithm, "ES256");
  EXPECT_EQ((*keys)[1].pem, ec_->public_pem);
}

TEST_F(JwksTest, AKeyWithoutAlgGetsTheAlgorithmOfItsType) {
  Json rsa = rsa_->jwk, ec = ec_->jwk;
  rsa.erase("alg");
  rsa.erase("use");
  ec.erase("alg");
  auto keys = ParseJwks(JwksOf({rsa, ec}));
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].algorithm, "RS256");
  EXPECT_EQ((*keys)[1].algorithm, "ES256");
}

TEST_F(JwksTest, SkipsEncryptionKeys) {
  Json enc = rsa_->jwk;
  enc["use"] = "enc";
  enc["kid"] = "enc-1";
  enc.erase("alg");
  Json oaep = rsa_->jwk;
  oaep["alg"] = "RSA-OAEP";
  oaep.erase("use");
  Json ops = ec_->jwk;
  ops.erase("use");
  ops["key_ops"] = {"encrypt", "wrapKey"};
  Json verify_ops = ec_->jwk;
  verify_ops.erase("use");
  verify_ops["kid"] = "ec-ops";
  verify_ops["key_ops"] = {"verify"};
  auto keys = ParseJwks(JwksOf({enc, oaep, ops, verify_ops}));
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].kid, "ec-ops");
}

TEST_F(JwksTest, SkipsRsaKeysShorterThan2048Bits) {
  const TestKey short_key = MakeRsaKey("rsa-1024", 1024);
  auto keys = ParseJwks(JwksOf({short_key.jwk, rsa_->jwk}));
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].kid, "rsa-1");
}

TEST_F(JwksTest, SkipsUnsupportedTypesCurvesAndAlgorithms) {
  Json oct = {{"kty", "oct"}, {"kid", "hmac"}, {"k", Base64UrlEncode("secret")}, {"alg", "HS256"}};
  Json okp = {{"kty", "OKP"}, {"kid", "ed"}, {"crv", "Ed25519"}, {"x", Base64UrlEncode("x")}};
  Json p384 = ec_->jwk;
  p384["crv"] = "P-384";
  Json rs384 = rsa_->jwk;
  rs384["alg"] = "RS384";
  Json es_on_rsa = rsa_->jwk;
  es_on_rsa["alg"] = "ES256";
  Json no_kty = rsa_->jwk;
  no_kty.erase("kty");
  auto keys = ParseJwks(JwksOf({oct, okp, p384, rs384, es_on_rsa, no_kty, "a string", 42}));
  ASSERT_TRUE(keys.ok());
  EXPECT_TRUE(keys->empty());
}

TEST_F(JwksTest, SkipsMalformedKeyMaterial) {
  Json bad_n = rsa_->jwk;
  bad_n["n"] = "not*base64";
  Json no_e = rsa_->jwk;
  no_e.erase("e");
  Json off_curve = ec_->jwk;
  std::string y = off_curve["y"].get<std::string>();
  y[5] = y[5] == 'A' ? 'B' : 'A';
  off_curve["y"] = y;
  Json short_x = ec_->jwk;
  short_x["x"] = Base64UrlEncode(std::string(31, '\x01'));
  Json numeric_kid = rsa_->jwk;
  numeric_kid["kid"] = 7;
  Json even_modulus = rsa_->jwk;
  std::string n = even_modulus["n"].get<std::string>();
  n.back() = 'A';  // clears the low bits of the last byte
  even_modulus["n"] = n;
  auto keys = ParseJwks(
      JwksOf({bad_n, no_e, off_curve, short_x, numeric_kid, even_modulus}));
  ASSERT_TRUE(keys.ok());
  EXPECT_TRUE(keys->empty());
}

TEST_F(JwksTest, ToleratesPaddedKeyMaterial) {
  Json padded = rsa_->jwk;
  padded["e"] = "AQAB";  // 65537, already a multiple of 4
  padded["n"] = padded["n"].get<std::string>() + "==";
  auto keys = ParseJwks(JwksOf({padded}));
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].pem, rsa_->public_pem);
}

TEST_F(JwksTest, KeepsTheFirstOfTwoKeysWithTheSameKidAndAlgorithm) {
  const TestKey other = MakeRsaKey("rsa-1");
  auto keys = ParseJwks(JwksOf({rsa_->jwk, other.jwk}));
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].pem, rsa_->public_pem);
}

TEST_F(JwksTest, RefusesDocumentsThatAreNotAJwks) {
  for (const char* document : {"", "not json", "[]", "{}", "{\"keys\":{}}", "{\"keys\":\"x\"}",
                               "{\"keys\":[]", "null"}) {
    auto keys = ParseJwks(document);
    EXPECT_EQ(keys.status().code(), absl::StatusCode::kInvalidArgument) << document;
  }
  auto empty = ParseJwks("{\"keys\":[]}");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

constexpr char kIssuer[] = "https://idp.example/realms/clinical";

TEST(DiscoveryTest, ReturnsTheJwksUriOfTheConfiguredIssuer) {
  const Json document = {{"issuer", kIssuer},
                         {"jwks_uri", "https://idp.example/realms/clinical/protocol/openid-connect/certs"},
                         {"token_endpoint", "https://idp.example/token"}};
  auto uri = JwksUriFromDiscovery(document.dump(), kIssuer);
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(*uri, "https://idp.example/realms/clinical/protocol/openid-connect/certs");
}

TEST(DiscoveryTest, RefusesAMismatchedIssuer) {
  for (const char* issuer : {"https://evil.example/realms/clinical",
                             "https://idp.example/realms/clinical/", "https://idp.example/realms/Clinical"}) {
    const Json document = {{"issuer", issuer}, {"jwks_uri", "https://idp.example/certs"}};
    auto uri = JwksUriFromDiscovery(document.dump(), kIssuer);
    EXPECT_EQ(uri.status().code(), absl::StatusCode::kInvalidArgument) << issuer;
    EXPECT_EQ(std::string(uri.status().message()).find("evil"), std::string::npos);
  }
  const Json document = {{"issuer", ""}, {"jwks_uri", "https://idp.example/certs"}};
  EXPECT_FALSE(JwksUriFromDiscovery(document.dump(), "").ok());
}

TEST(DiscoveryTest, RefusesAJwksUriThatIsNotHttps) {
  for (const Json& jwks_uri : {Json("http://idp.example/certs"), Json("https://"), Json("https:///certs"),
                               Json("https://user@idp.example/certs"), Json("https://idp.example/a b"),
                               Json("file:///etc/keys"), Json(42), Json(nullptr)}) {
    const Json document = {{"issuer", kIssuer}, {"jwks_uri", jwks_uri}};
    EXPECT_FALSE(JwksUriFromDiscovery(document.dump(), kIssuer).ok()) << jwks_uri.dump();
  }
  EXPECT_FALSE(JwksUriFromDiscovery(Json{{"issuer", kIssuer}}.dump(), kIssuer).ok());
  EXPECT_FALSE(JwksUriFromDiscovery("<html>", kIssuer).ok());
}

}  // namespace
}  // namespace clinical::identity

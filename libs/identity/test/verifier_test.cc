// Token verification end to end: tokens signed with libjwt (and, for headers libjwt will
// not write, with OpenSSL) against a KeySet fed by a fake JWKS endpoint, at an injected
// time.
#include "clinical/identity/verifier.h"

#include <set>

#include "gtest/gtest.h"
#include "clinical/identity/testing/test_tokens.h"

namespace clinical::identity {
namespace {

using test_support::Base64UrlEncode;
using test_support::FakeJwksEndpoint;
using test_support::Json;
using test_support::JwksOf;
using test_support::MakeEcKey;
using test_support::MakeRsaKey;
using test_support::SignRs256Raw;
using test_support::SignWithLibjwt;
using test_support::TestKey;
using test_support::Unsigned;

constexpr char kIssuer[] = "https://idp.example/realms/clinical";
constexpr char kAudience[] = "clinical-api";
constexpr char kSubject[] = "8f14e45f-ceea-467f-a0e6-3b5e2c1f9d2a";

const TestKey& RsaKey() {
  static const TestKey key = MakeRsaKey("rsa-1");
  return key;
}
const TestKey& EcKey() {
  static const TestKey key = MakeEcKey("ec-1");
  return key;
}
// Another key pair, published under its own kid only when a test rotates to it.
const TestKey& RotatedKey() {
  static const TestKey key = MakeRsaKey("rsa-2");
  return key;
}
// A key the issuer never published (an attacker's).
const TestKey& ForeignKey() {
  static const TestKey key = MakeRsaKey("rsa-1");
  return key;
}

class VerifierTest : public ::testing::Test {
 protected:
  VerifierTest() : keys_(endpoint_.Fetcher(), "https://idp.example/certs") {
    endpoint_.Serve(JwksOf({RsaKey().jwk, EcKey().jwk}));
    options_.issuer = kIssuer;
    options_.audiences = {kAudience};
  }

  // A payload that verifies at now_.
  Json Claims() const {
    return {{"iss", kIssuer},
            {"aud", kAudience},
            {"sub", kSubject},
            {"tenant", "tenant-a"},
            {"roles", {"case_manager"}},
            {"iat", absl::ToUnixSeconds(now_) - 10},
            {"exp", absl::ToUnixSeconds(now_ + absl::Minutes(5))},
            {"jti", "tok-1"}};
  }

  std::string Rs256(const Json& claims, const TestKey& key = RsaKey()) const {
    return SignWithLibjwt(claims, JWT_ALG_RS256, key.private_pem, {{"kid", key.kid}});
  }
  std::string Es256(const Json& claims) const {
    return SignWithLibjwt(claims, JWT_ALG_ES256, EcKey().private_pem, {{"kid", EcKey().kid}});
  }

  Verification Verify(const std::string& token, absl::Time at) {
    auto verifier = TokenVerifier::Create(options_, keys_);
    EXPECT_TRUE(verifier.ok()) << verifier.status();
    if (!verifier.ok()) {
      Verification failed;
      failed.status = verifier.status();
      return failed;
    }
    Verification result = verifier->Verify(token, at);
    // Whatever the outcome, the message is one of our fixed texts.
    EXPECT_EQ(std::string(result.status.message()).find(kSubject), std::string::npos);
    EXPECT_EQ(std::string(result.status.message()).find("tenant-a"), std::string::npos);
    return result;
  }
  Verification Verify(const std::string& token) { return Verify(token, now_); }

  void ExpectRefused(const Verification& result, TokenProblem problem) {
    EXPECT_EQ(result.problem, problem) << TokenProblemName(result.problem) << " " << result.status;
    EXPECT_EQ(result.status.code(), problem == TokenProblem::kKeysUnavailable
                                        ? absl::StatusCode::kUnavailable
                                        : absl::StatusCode::kUnauthenticated);
    EXPECT_FALSE(result.token.has_value());
  }

  const absl::Time now_ = absl::FromUnixSeconds(1'760'000'000);
  FakeJwksEndpoint endpoint_;
  KeySet keys_;
  VerifierOptions options_;
};

// --- Valid tokens ----------------------------------------------------------------------

TEST_F(VerifierTest, AValidRs256TokenYieldsItsIdentity) {
  const Verification result = Verify(Rs256(Claims()));
  ASSERT_TRUE(result.ok()) << result.status << " " << TokenProblemName(result.problem);
  EXPECT_EQ(result.problem, TokenProblem::kNone);
  ASSERT_TRUE(result.token.has_value());
  EXPECT_EQ(result.token->user_id, kSubject);
  EXPECT_EQ(result.token->tenant_id, "tenant-a");
  EXPECT_EQ(result.token->roles, std::vector<std::string>{"case_manager"});
  EXPECT_EQ(result.token->on_behalf_of, "");
  EXPECT_EQ(result.token->token_id, "tok-1");
  EXPECT_EQ(result.token->expires_at, now_ + absl::Minutes(5));
  EXPECT_EQ(result.claimed_subject, kSubject);
}

TEST_F(VerifierTest, AValidEs256TokenYieldsItsIdentity) {
  const Verification result = Verify(Es256(Claims()));
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(result.token->user_id, kSubject);
}

TEST_F(VerifierTest, ATokenWithoutKidUsesTheOnlyKeyOfItsAlgorithm) {
  const Verification result = Verify(SignWithLibjwt(Claims(), JWT_ALG_ES256, EcKey().private_pem));
  EXPECT_TRUE(result.ok()) << result.status;
}

TEST_F(VerifierTest, AnActorClaimBecomesOnBehalfOf) {
  Json claims = Claims();
  claims["act"] = {{"sub", "svc-gateway"}, {"act", {{"sub", "earlier"}}}};
  const Verification result = Verify(Rs256(claims));
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(result.token->on_behalf_of, "svc-gateway");
}

// --- Algorithms --------------------------------------------------------------------------

TEST_F(VerifierTest, RefusesAlgNone) {
  for (const char* none : {"none", "None", "NONE"}) {
    const Verification result =
        Verify(Unsigned({{"alg", none}, {"typ", "JWT"}, {"kid", "rsa-1"}}, Claims()));
    ExpectRefused(result, TokenProblem::kAlgorithmRefused);
    EXPECT_EQ(result.claimed_subject, kSubject) << "forensics see whom the token impersonates";
  }
  ExpectRefused(Verify(Unsigned({{"alg", "none"}}, Claims())), TokenProblem::kAlgorithmRefused);
  EXPECT_EQ(endpoint_.calls(), 0) << "a refused algorithm never reaches the key set";
}

TEST_F(VerifierTest, RefusesHs256SignedWithTheRsaPublicKeyAsSecret) {
  // The key confusion attack: libjwt alone would verify this with the PEM as HMAC secret.
  const std::string token =
      SignWithLibjwt(Claims(), JWT_ALG_HS256, RsaKey().public_pem, {{"kid", "rsa-1"}});
  ExpectRefused(Verify(token), TokenProblem::kAlgorithmRefused);
  // Even with HS256 in an allow-list, the verifier could not be built.
  options_.algorithms = {"RS256", "HS256"};
  EXPECT_EQ(TokenVerifier::Create(options_, keys_).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(VerifierTest, RefusesAnAlgorithmOutsideTheAllowList) {
  // RS384 with the issuer's own key and kid: a valid signature, a refused algorithm.
  ExpectRefused(Verify(SignWithLibjwt(Claims(), JWT_ALG_RS384, RsaKey().private_pem, {{"kid", "rsa-1"}})),
                TokenProblem::kAlgorithmRefused);
  // ES256 is the issuer's, but this deployment allows RS256 only.
  options_.algorithms = {"RS256"};
  ExpectRefused(Verify(Es256(Claims())), TokenProblem::kAlgorithmRefused);
}

TEST_F(VerifierTest, AlgorithmNamesAreCaseSensitive) {
  // libjwt compares names case-insensitively; RFC 7515 does not.
  ExpectRefused(Verify(SignRs256Raw({{"alg", "rs256"}, {"kid", "rsa-1"}}, Claims(), RsaKey())),
                TokenProblem::kAlgorithmRefused);
  // The same token with the proper name verifies, so the test cannot pass vacuously.
  EXPECT_TRUE(Verify(SignRs256Raw({{"alg", "RS256"}, {"kid", "rsa-1"}}, Claims(), RsaKey())).ok());
}

TEST_F(VerifierTest, RefusesATokenWhoseAlgorithmIsNotItsKeys) {
  // Signed with the EC key but naming the RSA key's kid.
  const std::string token = SignWithLibjwt(Claims(), JWT_ALG_ES256, EcKey().private_pem, {{"kid", "rsa-1"}});
  ExpectRefused(Verify(token), TokenProblem::kAlgorithmRefused);
}

TEST_F(VerifierTest, RefusesCriticalHeaderParameters) {
  const Json header = {{"alg", "RS256"}, {"kid", "rsa-1"}, {"crit", {"exp"}}, {"exp", 1}};
  ExpectRefused(Verify(SignRs256Raw(header, Claims(), RsaKey())), TokenProblem::kAlgorithmRefused);
}

TEST_F(VerifierTest, AcceptsTypJwtInAnyCaseAndRefusesOtherTypes) {
  EXPECT_TRUE(Verify(SignRs256Raw({{"alg", "RS256"}, {"kid", "rsa-1"}, {"typ", "jwt"}}, Claims(), RsaKey())).ok());
  for (const Json& typ : {Json("JOSE"), Json("secevent+jwt"), Json(1)}) {
    ExpectRefused(Verify(SignRs256Raw({{"alg", "RS256"}, {"kid", "rsa-1"}, {"typ", typ}}, Claims(), RsaKey())),
                  TokenProblem::kMalformed);
  }
}

TEST_F(VerifierTest, TypAtJwtIsRefusedBecauseLibjwtCannotVerifyIt) {
  // RFC 9068 access tokens. libjwt 1.10 fails any typ other than "JWT" inside jwt_decode,
  // so the verifier refuses them up front under a name that says so.
  const Verification result =
      Verify(SignRs256Raw({{"alg", "RS256"}, {"kid", "rsa-1"}, {"typ", "at+jwt"}}, Claims(), RsaKey()));
  ExpectRefused(result, TokenProblem::kMalformed);
  EXPECT_EQ(result.status.message(), "bearer token type at+jwt not supported");
}

// --- Keys --------------------------------------------------------------------------------

TEST_F(VerifierTest, AnUnknownKidCausesOneRefreshPerInterval) {
  ASSERT_TRUE(Verify(Rs256(Claims())).ok());
  ASSERT_EQ(endpoint_.calls(), 1);
  const TestKey& unpublished = RotatedKey();
  ExpectRefused(Verify(Rs256(Claims(), unpublished), now_ + absl::Seconds(10)), TokenProblem::kUnknownKey);
  EXPECT_EQ(endpoint_.calls(), 2);
  // Another unknown kid within the interval: no fetch.
  const std::string forged =
      SignWithLibjwt(Claims(), JWT_ALG_RS256, unpublished.private_pem, {{"kid", "forged-2"}});
  ExpectRefused(Verify(forged, now_ + absl::Seconds(19)), TokenProblem::kUnknownKey);
  EXPECT_EQ(endpoint_.calls(), 2);
}

TEST_F(VerifierTest, ARotatedKeyVerifiesWithoutANewVerifier) {
  auto verifier = TokenVerifier::Create(options_, keys_);
  ASSERT_TRUE(verifier.ok());
  ASSERT_TRUE(verifier->Verify(Rs256(Claims()), now_).ok());
  endpoint_.Serve(JwksOf({RsaKey().jwk, RotatedKey().jwk}));
  const Verification result = verifier->Verify(Rs256(Claims(), RotatedKey()), now_ + absl::Seconds(30));
  EXPECT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(endpoint_.calls(), 2);
}

TEST_F(VerifierTest, WithTheIssuerDownAndNoKeysTokensAreUnavailableNotRefused) {
  endpoint_.Fail(absl::UnavailableError("connect timeout"));
  const Verification result = Verify(Rs256(Claims()));
  ExpectRefused(result, TokenProblem::kKeysUnavailable);
  EXPECT_EQ(result.status.message(), "issuer signing keys unavailable");
}

TEST_F(VerifierTest, WithTheIssuerDownCachedKeysStillVerify) {
  ASSERT_TRUE(Verify(Rs256(Claims())).ok());
  endpoint_.Fail(absl::UnavailableError("connect timeout"));
  const absl::Time later = now_ + absl::Minutes(20);  // past max_age: a refresh is tried
  Json claims = Claims();
  claims["exp"] = absl::ToUnixSeconds(later + absl::Minutes(5));
  EXPECT_TRUE(Verify(Rs256(claims), later).ok());
  EXPECT_EQ(keys_.GetStats().fetch_failures, 1u);
}

TEST_F(VerifierTest, RefusesASignatureOfAnotherKeyUnderTheSameKid) {
  const Verification result = Verify(Rs256(Claims(), ForeignKey()));
  ExpectRefused(result, TokenProblem::kBadSignature);
  EXPECT_EQ(result.claimed_subject, kSubject);
}

TEST_F(VerifierTest, RefusesATamperedPayload) {
  const std::string token = Rs256(Claims());
  Json claims = Claims();
  claims["roles"] = {"administrator"};
  const size_t first = token.find('.'), second = token.rfind('.');
  const std::string tampered =
      token.substr(0, first + 1) + Base64UrlEncode(claims.dump()) + token.substr(second);
  ExpectRefused(Verify(tampered), TokenProblem::kBadSignature);
  // ES256 too.
  const std::string es = Es256(Claims());
  const std::string es_tampered = es.substr(0, es.find('.') + 1) + Base64UrlEncode(claims.dump()) +
                                  es.substr(es.rfind('.'));
  ExpectRefused(Verify(es_tampered), TokenProblem::kBadSignature);
}

TEST_F(VerifierTest, RefusesAMissingOrTruncatedSignature) {
  const std::string token = Rs256(Claims());
  ExpectRefused(Verify(token.substr(0, token.rfind('.') + 1)), TokenProblem::kBadSignature);
  const std::string es = Es256(Claims());
  // 64 signature bytes are 86 characters, of which the first 84 encode 63 whole bytes.
  ExpectRefused(Verify(es.substr(0, es.size() - 2)), TokenProblem::kBadSignature);
}

// --- Claims ------------------------------------------------------------------------------

TEST_F(VerifierTest, RefusesAnotherIssuer) {
  for (const Json& iss : {Json("https://evil.example/realms/clinical"), Json(kIssuer + std::string("/")),
                          Json(nullptr), Json({kIssuer})}) {
    Json claims = Claims();
    claims["iss"] = iss;
    ExpectRefused(Verify(Rs256(claims)), TokenProblem::kWrongIssuer);
  }
  Json claims = Claims();
  claims.erase("iss");
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kWrongIssuer);
}

TEST_F(VerifierTest, RefusesAnotherAudience) {
  Json claims = Claims();
  claims["aud"] = "account";
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kWrongAudience);
  claims["aud"] = {"account", "billing"};
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kWrongAudience);
  claims.erase("aud");
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kWrongAudience);
}

TEST_F(VerifierTest, AcceptsAnAudienceArrayContainingOneOfOurs) {
  Json claims = Claims();
  claims["aud"] = {"account", 7, kAudience};
  EXPECT_TRUE(Verify(Rs256(claims)).ok());
  options_.audiences = {"other-api", "reporting-api"};
  claims["aud"] = {"account", "reporting-api"};
  EXPECT_TRUE(Verify(Rs256(claims)).ok());
}

TEST_F(VerifierTest, ExpiryAllowsTheClockSkewAndNoMore) {
  Json claims = Claims();
  claims["exp"] = absl::ToUnixSeconds(now_ - absl::Seconds(60));
  EXPECT_TRUE(Verify(Rs256(claims)).ok()) << "expired 60 s ago, within the skew";
  claims["exp"] = absl::ToUnixSeconds(now_ - absl::Seconds(61));
  const Verification result = Verify(Rs256(claims));
  ExpectRefused(result, TokenProblem::kExpired);
  EXPECT_EQ(result.status.message(), "bearer token expired");
  EXPECT_EQ(TokenProblemName(result.problem), "token_expired");
  options_.clock_skew = absl::ZeroDuration();
  claims["exp"] = absl::ToUnixSeconds(now_) - 1;
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kExpired);
}

TEST_F(VerifierTest, AcceptsFractionalNumericDates) {
  Json claims = Claims();
  claims["exp"] = static_cast<double>(absl::ToUnixSeconds(now_)) + 30.5;
  const Verification result = Verify(Rs256(claims));
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(result.token->expires_at, now_ + absl::Milliseconds(30500));
}

TEST_F(VerifierTest, RefusesAMissingOrMalformedExpiry) {
  Json claims = Claims();
  claims.erase("exp");
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kMissingClaim);
  claims["exp"] = "tomorrow";
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kMalformed);
}

TEST_F(VerifierTest, RefusesATokenNotYetValid) {
  Json claims = Claims();
  claims["nbf"] = absl::ToUnixSeconds(now_ + absl::Seconds(61));
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kNotYetValid);
  claims["nbf"] = absl::ToUnixSeconds(now_ + absl::Seconds(60));
  EXPECT_TRUE(Verify(Rs256(claims)).ok());
  claims.erase("nbf");
  claims["iat"] = absl::ToUnixSeconds(now_ + absl::Minutes(2));
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kNotYetValid);
}

TEST_F(VerifierTest, ReadsKeycloakClaims) {
  options_.claims.user = "preferred_username";
  options_.claims.roles = "realm_access.roles";
  Json claims = Claims();
  claims.erase("roles");
  claims["preferred_username"] = "alice";
  claims["realm_access"] = {{"roles", {"offline_access", "uma_authorization", "supervisor", "auditor"}}};
  const Verification result = Verify(Rs256(claims));
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(result.token->user_id, "alice");
  EXPECT_EQ(result.token->roles, (std::vector<std::string>{"supervisor", "auditor"}));
}

TEST_F(VerifierTest, ReadsAzureAdClaimsWithARolePrefix) {
  options_.claims.user = "oid";
  options_.claims.tenant = "tid";
  options_.role_prefix = "Clinical.";
  Json claims = Claims();
  claims.erase("tenant");
  claims["oid"] = "00000000-0000-0000-66f3-3332eca7ea81";
  claims["tid"] = "72f988bf-86f1-41af-91ab-2d7cd011db47";
  claims["roles"] = {"Clinical.privacy_officer", "administrator", "Clinical.Supervisor"};
  const Verification result = Verify(Rs256(claims));
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(result.token->user_id, "00000000-0000-0000-66f3-3332eca7ea81");
  EXPECT_EQ(result.token->tenant_id, "72f988bf-86f1-41af-91ab-2d7cd011db47");
  // Unprefixed "administrator" is not ours; role names are exact.
  EXPECT_EQ(result.token->roles, std::vector<std::string>{"privacy_officer"});
}

TEST_F(VerifierTest, ReadsOktaGroups) {
  options_.claims.roles = "groups";
  options_.role_prefix = "clinical-";
  Json claims = Claims();
  claims.erase("roles");
  claims["sub"] = "00u1abcdEFGH2345";
  claims["groups"] = {"Everyone", "clinical-case_manager", "clinical-case_manager", "clinical-administrator"};
  const Verification result = Verify(Rs256(claims));
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(result.token->roles, (std::vector<std::string>{"case_manager", "administrator"}));
}

TEST_F(VerifierTest, ReadsANamespacedClaimWhoseNameContainsDots) {
  options_.claims.roles = "https://clinical.example/roles";
  Json claims = Claims();
  claims.erase("roles");
  claims["https://clinical.example/roles"] = {"auditor"};
  const Verification result = Verify(Rs256(claims));
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(result.token->roles, std::vector<std::string>{"auditor"});
}

TEST_F(VerifierTest, ReadsRolesFromASpaceSeparatedString) {
  Json claims = Claims();
  claims["roles"] = " case_manager  auditor openid ";
  const Verification result = Verify(Rs256(claims));
  ASSERT_TRUE(result.ok()) << result.status;
  EXPECT_EQ(result.token->roles, (std::vector<std::string>{"case_manager", "auditor"}));
}

TEST_F(VerifierTest, RefusesATokenClaimingTheServiceRole) {
  for (const Json& roles : {Json({"case_manager", "service"}), Json("service"), Json({"SERVICE"})}) {
    Json claims = Claims();
    claims["roles"] = roles;
    const Verification result = Verify(Rs256(claims));
    ExpectRefused(result, TokenProblem::kServiceRoleClaimed);
    EXPECT_EQ(TokenProblemName(result.problem), "service_role_claimed");
  }
  options_.role_prefix = "clinical.";
  Json claims = Claims();
  claims["roles"] = {"clinical.case_manager", "clinical.service"};
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kServiceRoleClaimed);
}

TEST_F(VerifierTest, RefusesATokenWithoutAPlatformRole) {
  Json claims = Claims();
  claims["roles"] = {"offline_access", "Case_Manager"};
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kMissingClaim);
  claims["roles"] = Json::array();
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kMissingClaim);
  claims.erase("roles");
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kMissingClaim);
  claims["roles"] = {"case_manager", 3};
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kMalformed);
  claims["roles"] = {{"case_manager", true}};
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kMalformed);
}

TEST_F(VerifierTest, RefusesMissingUserOrTenant) {
  Json claims = Claims();
  claims.erase("tenant");
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kMissingClaim);
  claims = Claims();
  claims["sub"] = 12345;
  const Verification result = Verify(Rs256(claims));
  ExpectRefused(result, TokenProblem::kMissingClaim);
  EXPECT_EQ(result.claimed_subject, "");
}

TEST_F(VerifierTest, RefusesInvalidUserIdsAndLeavesClaimedSubjectEmpty) {
  for (const std::string& user : {std::string("alice smith"), std::string(129, 'a'), std::string(".alice"),
                                  std::string("alice\"; DROP"), std::string("al\u00e9"), std::string("")}) {
    Json claims = Claims();
    claims["sub"] = user;
    const Verification result = Verify(Rs256(claims));
    ExpectRefused(result, TokenProblem::kInvalidIdentity);
    EXPECT_EQ(result.claimed_subject, "") << user;
  }
}

TEST_F(VerifierTest, RefusesInvalidTenantIds) {
  for (const std::string& tenant : {std::string("-tenant"), std::string(65, 't'), std::string("ten ant"),
                                    std::string("t/a"), std::string("")}) {
    Json claims = Claims();
    claims["tenant"] = tenant;
    const Verification result = Verify(Rs256(claims));
    ExpectRefused(result, TokenProblem::kInvalidIdentity);
    EXPECT_EQ(result.claimed_subject, kSubject) << "the user id itself was valid";
  }
}

TEST_F(VerifierTest, RefusesAMalformedActorOrTokenId) {
  Json claims = Claims();
  claims["act"] = "svc-gateway";
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kMalformed);
  claims["act"] = {{"sub", "svc gateway"}};
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kInvalidIdentity);
  claims = Claims();
  claims["jti"] = "id with\nnewline";
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kMalformed);
}

// --- Malformed tokens --------------------------------------------------------------------

TEST_F(VerifierTest, RefusesMalformedTokens) {
  const std::string token = Rs256(Claims());
  const std::string header = token.substr(0, token.find('.'));
  const std::string rest = token.substr(token.find('.'));
  ExpectRefused(Verify(""), TokenProblem::kMissing);
  for (const std::string& bad : {
           token.substr(0, token.rfind('.')),                 // two parts
           token + ".x",                                      // four parts
           "." + token.substr(token.find('.') + 1),           // empty header
           header + "..sig",                                  // empty payload
           "e30" + std::string(".e30.") + "!!!!",             // signature not base64url
           header.substr(0, header.size() - 1) + "*" + rest,  // header not base64url
           "Bearer " + token,                                 // the scheme is the caller's to strip
           token + "=",                                       // padding
       }) {
    ExpectRefused(Verify(bad), TokenProblem::kMalformed);
  }
  // Header that decodes but is not a JSON object.
  for (const std::string& not_object : {std::string("not json"), std::string("[1]"), std::string("\"RS256\"")}) {
    ExpectRefused(Verify(Base64UrlEncode(not_object) + rest), TokenProblem::kMalformed);
  }
  // Payload that is not JSON, under a valid header with a known key.
  ExpectRefused(Verify(header + "." + Base64UrlEncode("{\"sub\":") + token.substr(token.rfind('.'))),
                TokenProblem::kMalformed);
}

TEST_F(VerifierTest, RefusesAHugeTokenBeforeParsingIt) {
  Json claims = Claims();
  claims["padding"] = std::string(20 * 1024, 'x');
  ExpectRefused(Verify(Rs256(claims)), TokenProblem::kTooLarge);
  ExpectRefused(Verify(std::string(1 << 20, 'A')), TokenProblem::kTooLarge);
  EXPECT_EQ(endpoint_.calls(), 0);
}

// --- Options -----------------------------------------------------------------------------

TEST(VerifierOptionsTest, ValidateRefusesUnsafeConfigurations) {
  const auto valid = [] {
    VerifierOptions options;
    options.issuer = kIssuer;
    options.audiences = {kAudience};
    return options;
  };
  EXPECT_TRUE(valid().Validate().ok());
  std::vector<VerifierOptions> invalid(9, valid());
  invalid[0].issuer.clear();
  invalid[1].audiences.clear();
  invalid[2].audiences = {""};
  invalid[3].algorithms = {"RS256", "none"};
  invalid[4].algorithms = {"HS256"};
  invalid[5].algorithms.clear();
  invalid[6].clock_skew = absl::Minutes(5) + absl::Seconds(1);
  invalid[7].clock_skew = -absl::Seconds(1);
  invalid[8].claims.tenant.clear();
  for (size_t i = 0; i < invalid.size(); ++i) {
    EXPECT_EQ(invalid[i].Validate().code(), absl::StatusCode::kInvalidArgument) << i;
  }
  VerifierOptions huge = valid();
  huge.max_token_bytes = 1 << 20;
  EXPECT_FALSE(huge.Validate().ok());
  VerifierOptions five_minutes = valid();
  five_minutes.clock_skew = absl::Minutes(5);
  EXPECT_TRUE(five_minutes.Validate().ok());
}

TEST(VerificationTest, ADefaultVerificationIsNotOk) {
  const Verification verification;
  EXPECT_FALSE(verification.ok());
  EXPECT_EQ(verification.status.code(), absl::StatusCode::kUnauthenticated);
}

TEST(TokenProblemTest, NamesAreStableAndDistinct) {
  std::set<std::string_view> names;
  for (int i = 0; i <= static_cast<int>(TokenProblem::kKeysUnavailable); ++i) {
    names.insert(TokenProblemName(static_cast<TokenProblem>(i)));
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(TokenProblem::kKeysUnavailable) + 1);
  EXPECT_EQ(TokenProblemName(TokenProblem::kExpired), "token_expired");
  EXPECT_EQ(TokenProblemName(TokenProblem::kAlgorithmRefused), "algorithm_refused");
  EXPECT_EQ(TokenProblemName(TokenProblem::kKeysUnavailable), "keys_unavailable");
}

}  // namespace
}  // namespace clinical::identity

// Random and mutated tokens: the verifier must neither crash nor accept any of them.
// A fixed seed keeps failures reproducible.
#include <random>

#include "clinical/identity/verifier.h"
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
using test_support::SignWithLibjwt;
using test_support::TestKey;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";

class RobustnessTest : public ::testing::Test {
 protected:
  RobustnessTest() : keys_(endpoint_.Fetcher(), "https://idp.example/certs") {
    endpoint_.Serve(JwksOf({rsa_.jwk, ec_.jwk}));
    VerifierOptions options;
    options.issuer = "https://idp.example";
    options.audiences = {"clinical-api"};
    auto verifier = TokenVerifier::Create(options, keys_);
    if (verifier.ok()) verifier_.emplace(std::move(*verifier));
  }

  Json Claims() const {
    return {{"iss", "https://idp.example"}, {"aud", "clinical-api"}, {"sub", "u-1"}, {"tenant", "t-1"},
            {"roles", {"auditor"}}, {"exp", absl::ToUnixSeconds(now_) + 300}};
  }

  // Every mutation of a valid token must be refused.
  void ExpectRefused(const std::string& token) {
    const Verification result = verifier_->Verify(token, now_);
    EXPECT_FALSE(result.ok()) << token;
    EXPECT_NE(result.problem, TokenProblem::kNone) << token;
    EXPECT_FALSE(result.token.has_value());
  }

  const TestKey rsa_ = MakeRsaKey("rsa-1");
  const TestKey ec_ = MakeEcKey("ec-1");
  const absl::Time now_ = absl::FromUnixSeconds(1'760'000'000);
  FakeJwksEndpoint endpoint_;
  KeySet keys_;
  std::optional<TokenVerifier> verifier_;
  std::mt19937 random_{20240611};
};

TEST_F(RobustnessTest, MutatedTokensAreNeverAccepted) {
  ASSERT_TRUE(verifier_.has_value());
  const std::vector<std::string> valid = {
      SignWithLibjwt(Claims(), JWT_ALG_RS256, rsa_.private_pem, {{"kid", "rsa-1"}}),
      SignWithLibjwt(Claims(), JWT_ALG_ES256, ec_.private_pem, {{"kid", "ec-1"}}),
  };
  for (const std::string& token : valid) ASSERT_TRUE(verifier_->Verify(token, now_).ok());

  std::uniform_int_distribution<int> alphabet(0, sizeof(kAlphabet) - 2);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 3000; ++i) {
    std::string token = valid[static_cast<size_t>(i) % valid.size()];
    std::uniform_int_distribution<size_t> position(0, token.size() - 1);
    const size_t at = position(random_);
    switch (i % 6) {
      case 0: {  // replace one character by another of the alphabet (or a dot)
        const char replacement = kAlphabet[alphabet(random_)];
        if (replacement == token[at]) continue;
        token[at] = replacement;
        break;
      }
      case 1:  // replace one character by any byte
        token[at] = static_cast<char>(byte(random_));
        if (token == valid[static_cast<size_t>(i) % valid.size()]) continue;
        break;
      case 2:  // delete one character
        token.erase(at, 1);
        break;
      case 3:  // insert one character
        token.insert(at, 1, kAlphabet[alphabet(random_)]);
        break;
      case 4:  // truncate
        token.resize(at);
        break;
      case 5:  // swap two characters
        {
          const size_t other = position(random_);
          if (token[at] == token[other]) continue;
          std::swap(token[at], token[other]);
        }
        break;
    }
    ExpectRefused(token);
  }
}

TEST_F(RobustnessTest, RandomTokensAreNeverAccepted) {
  ASSERT_TRUE(verifier_.has_value());
  std::uniform_int_distribution<int> alphabet(0, sizeof(kAlphabet) - 2);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> length(0, 400);
  const std::vector<Json> headers = {
      {{"alg", "RS256"}, {"kid", "rsa-1"}}, {{"alg", "ES256"}, {"kid", "ec-1"}}, {{"alg", "ES256"}},
      {{"alg", "none"}}, {{"alg", "HS256"}, {"kid", "rsa-1"}}, {{"alg", "RS256"}, {"kid", 1}},
      {{"alg", {"RS256"}}}, {{"alg", "RS256"}, {"kid", "rsa-1"}, {"typ", nullptr}}};
  for (int i = 0; i < 3000; ++i) {
    std::string token;
    switch (i % 3) {
      case 0:  // random characters of the token alphabet
        for (int n = length(random_); n > 0; --n) token.push_back(kAlphabet[alphabet(random_)]);
        break;
      case 1:  // random bytes
        for (int n = length(random_); n > 0; --n) token.push_back(static_cast<char>(byte(random_)));
        break;
      case 2: {  // a plausible header and payload with a random signature
        std::string signature;
        for (int n = length(random_); n > 0; --n) signature.push_back(static_cast<char>(byte(random_)));
        token = Base64UrlEncode(headers[static_cast<size_t>(i) % headers.size()].dump()) + "." +
                Base64UrlEncode(Claims().dump()) + "." + Base64UrlEncode(signature);
        break;
      }
    }
    ExpectRefused(token);
  }
}

}  // namespace
}  // namespace clinical::identity

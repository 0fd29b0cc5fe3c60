// The issuer's key cache: when it fetches (first use, unknown kid, age), when it may not
// (the refresh interval), what a failed fetch leaves behind, and that a slow fetch does
// not hold up lookups of keys already known.
#include "clinical/identity/key_set.h"

#include <stdexcept>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "clinical/identity/testing/test_tokens.h"

namespace clinical::identity {
namespace {

using test_support::FakeJwksEndpoint;
using test_support::Json;
using test_support::JwksOf;
using test_support::MakeEcKey;
using test_support::MakeRsaKey;
using test_support::TestKey;

constexpr char kJwksUrl[] = "https://idp.example/certs";

const TestKey& RsaKey1() {
  static const TestKey key = MakeRsaKey("rsa-1");
  return key;
}
const TestKey& RsaKey2() {
  static const TestKey key = MakeRsaKey("rsa-2");
  return key;
}
const TestKey& EcKey1() {
  static const TestKey key = MakeEcKey("ec-1");
  return key;
}

class KeySetTest : public ::testing::Test {
 protected:
  KeySetTest() : keys_(endpoint_.Fetcher(), kJwksUrl) {
    endpoint_.Serve(JwksOf({RsaKey1().jwk, EcKey1().jwk}));
  }

  const absl::Time t0_ = absl::FromUnixSeconds(1'760'000'000);
  FakeJwksEndpoint endpoint_;
  KeySet keys_;
};

TEST_F(KeySetTest, FirstLookupFetchesTheConfiguredUrl) {
  auto key = keys_.Find("rsa-1", "RS256", t0_);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->pem, RsaKey1().public_pem);
  EXPECT_EQ(endpoint_.calls(), 1);
  EXPECT_EQ(endpoint_.last_url(), kJwksUrl);
  const KeySet::Stats stats = keys_.GetStats();
  EXPECT_EQ(stats.fetches, 1u);
  EXPECT_EQ(stats.fetch_failures, 0u);
  EXPECT_EQ(stats.key_count, 2u);
  EXPECT_EQ(stats.last_success, t0_);
}

TEST_F(KeySetTest, KnownKeysAreServedFromTheCache) {
  ASSERT_TRUE(keys_.Find("rsa-1", "RS256", t0_).ok());
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(keys_.Find("ec-1", "ES256", t0_ + absl::Seconds(i)).ok());
  }
  EXPECT_EQ(endpoint_.calls(), 1);
}

TEST_F(KeySetTest, UnknownKidsFetchAtMostOncePerInterval) {
  ASSERT_TRUE(keys_.Find("rsa-1", "RS256", t0_).ok());
  EXPECT_EQ(keys_.Find("forged-1", "RS256", t0_ + absl::Seconds(10)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(endpoint_.calls(), 2);
  // A flood of other forged kids inside the interval costs no fetch.
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(keys_.Find("forged-" + std::to_string(i), "RS256", t0_ + absl::Seconds(15)).status().code(),
              absl::StatusCode::kNotFound);
  }
  EXPECT_EQ(endpoint_.calls(), 2);
  EXPECT_EQ(keys_.Find("forged-x", "RS256", t0_ + absl::Seconds(20)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(endpoint_.calls(), 3);
}

TEST_F(KeySetTest, ARotatedKeyIsFoundWithoutRestart) {
  ASSERT_TRUE(keys_.Find("rsa-1", "RS256", t0_).ok());
  endpoint_.Serve(JwksOf({RsaKey1().jwk, RsaKey2().jwk}));
  auto key = keys_.Find("rsa-2", "RS256", t0_ + absl::Seconds(30));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->pem, RsaKey2().public_pem);
  EXPECT_EQ(keys_.GetStats().key_count, 2u);  // ec-1 was withdrawn
  EXPECT_EQ(keys_.Find("ec-1", "ES256", t0_ + absl::Seconds(30)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(KeySetTest, KeysOlderThanMaxAgeAreFetchedAgain) {
  ASSERT_TRUE(keys_.Find("rsa-1", "RS256", t0_).ok());
  ASSERT_TRUE(keys_.Find("rsa-1", "RS256", t0_ + absl::Minutes(9)).ok());
  EXPECT_EQ(endpoint_.calls(), 1);
  // The issuer withdrew rsa-1: after max_age the cache learns it.
  endpoint_.Serve(JwksOf({RsaKey2().jwk}));
  EXPECT_EQ(keys_.Find("rsa-1", "RS256", t0_ + absl::Minutes(10)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(endpoint_.calls(), 2);
}

TEST_F(KeySetTest, AFailedRefreshKeepsTheKeysAndIsCounted) {
  ASSERT_TRUE(keys_.Find("rsa-1", "RS256", t0_).ok());
  endpoint_.Fail(absl::UnavailableError("connection refused"));
  auto key = keys_.Find("rsa-1", "RS256", t0_ + absl::Minutes(11));
  EXPECT_TRUE(key.ok()) << key.status();
  // The retry waits for the interval, not for max_age again.
  EXPECT_TRUE(keys_.Find("rsa-1", "RS256", t0_ + absl::Minutes(11) + absl::Seconds(5)).ok());
  EXPECT_EQ(endpoint_.calls(), 2);
  EXPECT_TRUE(keys_.Find("rsa-1", "RS256", t0_ + absl::Minutes(11) + absl::Seconds(10)).ok());
  EXPECT_EQ(endpoint_.calls(), 3);
  const KeySet::Stats stats = keys_.GetStats();
  EXPECT_EQ(stats.fetches, 3u);
  EXPECT_EQ(stats.fetch_failures, 2u);
  EXPECT_EQ(stats.key_count, 2u);
  EXPECT_EQ(stats.last_success, t0_);
  EXPECT_EQ(stats.last_failure.code(), absl::StatusCode::kUnavailable);
}

TEST_F(KeySetTest, WithNoKeysAndTheIssuerDownLookupsAreUnavailable) {
  endpoint_.Fail(absl::UnavailableError("connection refused"));
  EXPECT_EQ(keys_.Find("rsa-1", "RS256", t0_).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(keys_.Find("rsa-1", "RS256", t0_ + absl::Seconds(1)).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(endpoint_.calls(), 1);
  endpoint_.Serve(JwksOf({RsaKey1().jwk}));
  EXPECT_TRUE(keys_.Find("rsa-1", "RS256", t0_ + absl::Seconds(10)).ok());
  EXPECT_EQ(endpoint_.calls(), 2);
}

TEST_F(KeySetTest, AResponseWithoutUsableKeysIsAFailure) {
  ASSERT_TRUE(keys_.Find("rsa-1", "RS256", t0_).ok());
  for (const std::string& body : {std::string("<html>502 Bad Gateway</html>"), JwksOf({}),
                                  std::string(600 * 1024, ' ')}) {
    endpoint_.Serve(body);
    EXPECT_FALSE(keys_.Refresh(t0_ + absl::Minutes(1)).ok());
  }
  EXPECT_EQ(keys_.GetStats().fetch_failures, 3u);
  EXPECT_TRUE(keys_.Find("rsa-1", "RS256", t0_ + absl::Minutes(1)).ok());
}

TEST_F(KeySetTest, RefreshFetchesRegardlessOfTheInterval) {
  ASSERT_TRUE(keys_.Refresh(t0_).ok());
  ASSERT_TRUE(keys_.Refresh(t0_).ok());
  EXPECT_EQ(endpoint_.calls(), 2);
}

TEST_F(KeySetTest, WithoutKidOnlyAnUnambiguousKeyIsChosen) {
  auto ec = keys_.Find("", "ES256", t0_);
  ASSERT_TRUE(ec.ok());
  EXPECT_EQ(ec->kid, "ec-1");
  endpoint_.Serve(JwksOf({RsaKey1().jwk, RsaKey2().jwk}));
  ASSERT_TRUE(keys_.Refresh(t0_ + absl::Minutes(1)).ok());
  EXPECT_EQ(keys_.Find("", "RS256", t0_ + absl::Minutes(1)).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(KeySetTest, AKidIsFoundEvenUnderAnotherAlgorithmForTheCallerToRefuse) {
  auto key = keys_.Find("rsa-1", "ES256", t0_);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->algorithm, "RS256");
}

TEST_F(KeySetTest, AFetcherThatThrowsIsAFailedFetch) {
  KeySet keys([](const std::string&) -> absl::StatusOr<std::string> { throw std::runtime_error("x"); },
              kJwksUrl);
  EXPECT_EQ(keys.Find("rsa-1", "RS256", t0_).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(keys.GetStats().fetch_failures, 1u);
  EXPECT_EQ(keys.GetStats().last_failure.code(), absl::StatusCode::kInternal);
}

// Waits are bounded so that a regression fails the test instead of hanging it.
constexpr absl::Duration kWaitBound = absl::Seconds(10);

TEST_F(KeySetTest, ASlowFetchDoesNotHoldUpKnownKeys) {
  absl::Notification fetch_started, release_fetch;
  int calls = 0;  // only the fetcher touches it, never concurrently
  KeySet keys(
      [&](const std::string&) -> absl::StatusOr<std::string> {
        if (++calls == 1) return JwksOf({RsaKey1().jwk});
        fetch_started.Notify();
        EXPECT_TRUE(release_fetch.WaitForNotificationWithTimeout(kWaitBound));
        return JwksOf({RsaKey1().jwk, RsaKey2().jwk});
      },
      kJwksUrl);
  ASSERT_TRUE(keys.Find("rsa-1", "RS256", t0_).ok());
  // An unknown kid starts a fetch that hangs in the fetcher ...
  std::thread refresher([&] { EXPECT_TRUE(keys.Find("rsa-2", "RS256", t0_ + absl::Minutes(1)).ok()); });
  EXPECT_TRUE(fetch_started.WaitForNotificationWithTimeout(kWaitBound));
  // ... while a known kid is answered at once, from the keys held.
  EXPECT_TRUE(keys.Find("rsa-1", "RS256", t0_ + absl::Minutes(1)).ok());
  EXPECT_FALSE(release_fetch.HasBeenNotified());
  release_fetch.Notify();
  refresher.join();
  EXPECT_EQ(calls, 2);
}

TEST_F(KeySetTest, ConcurrentFirstLookupsFetchOnce) {
  absl::Notification fetch_started, release_fetch;
  int calls = 0;
  KeySet keys(
      [&](const std::string&) -> absl::StatusOr<std::string> {
        ++calls;
        fetch_started.Notify();
        EXPECT_TRUE(release_fetch.WaitForNotificationWithTimeout(kWaitBound));
        return JwksOf({RsaKey1().jwk});
      },
      kJwksUrl);
  std::thread first([&] { EXPECT_TRUE(keys.Find("rsa-1", "RS256", t0_).ok()); });
  EXPECT_TRUE(fetch_started.WaitForNotificationWithTimeout(kWaitBound));
  // Started while the first fetch is in flight: it waits for that fetch rather than
  // making its own (or, if it runs late, finds the key cached).
  std::thread second([&] { EXPECT_TRUE(keys.Find("rsa-1", "RS256", t0_).ok()); });
  release_fetch.Notify();
  first.join();
  second.join();
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace clinical::identity

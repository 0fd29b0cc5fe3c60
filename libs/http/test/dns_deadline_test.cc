// Name resolution is bounded by the request's timeout. This binary replaces getaddrinfo for
// the whole process (the executable's definition takes precedence over libc's for libcurl's
// resolver thread) with a fake that answers two reserved names itself and hands every other
// name to libc: "slow.test" blocks like a DNS server that does not answer, "missing.test"
// does not exist. That keeps the test hermetic; nothing leaves the machine.
#include <dlfcn.h>
#include <netdb.h>

#include <atomic>
#include <string_view>
#include <thread>

#include "clinical/http/client.h"
#include "gtest/gtest.h"

namespace {

std::atomic<int> slow_lookups_finished{0};
constexpr auto kSlowLookup = std::chrono::seconds(3);

}  // namespace

extern "C" int getaddrinfo(const char* __restrict node, const char* __restrict service,
                           const addrinfo* __restrict hints, addrinfo** __restrict result) {
  using Real = int (*)(const char*, const char*, const addrinfo*, addrinfo**);
  static const Real real = reinterpret_cast<Real>(::dlsym(RTLD_NEXT, "getaddrinfo"));
  const std::string_view name = node == nullptr ? "" : node;
  if (name == "slow.test") {
    // The simulated unresponsive DNS server: this is the behaviour under test, not a wait
    // for a condition.
    std::this_thread::sleep_for(kSlowLookup);
    ++slow_lookups_finished;
    return EAI_AGAIN;
  }
  if (name == "missing.test") return EAI_NONAME;
  return real(node, service, hints, result);
}

namespace clinical::http {
namespace {

TEST(DnsDeadlineTest, ABlockedLookupEndsTheRequestAtItsTimeout) {
  auto url = ParseHttpsUrl("https://slow.test/keys");
  ASSERT_TRUE(url.ok());
  RequestOptions options;
  options.timeout = absl::Milliseconds(500);
  const absl::Time start = absl::Now();
  auto response = Client().Get(*url, {}, options);
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(response.status().code(), absl::StatusCode::kDeadlineExceeded) << response.status();
  EXPECT_EQ(FailureReason(response.status()), "timeout");
  EXPECT_LT(took, absl::Milliseconds(1500)) << "the lookup was waited for";
  // The abandoned lookup finishes on its own thread later, without harm.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (slow_lookups_finished == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(slow_lookups_finished, 1);
}

TEST(DnsDeadlineTest, AnUnknownNameIsADnsFailure) {
  auto url = ParseHttpsUrl("https://missing.test/keys");
  ASSERT_TRUE(url.ok());
  RequestOptions options;
  options.timeout = absl::Seconds(5);
  auto response = Client().Get(*url, {}, options);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable) << response.status();
  EXPECT_EQ(FailureReason(response.status()), "dns");
}

}  // namespace
}  // namespace clinical::http

// The webhook sender against an HTTPS receiver in this test binary (127.0.0.1:0, its
// certificate from a CA made at run time): it fails the first attempts, then accepts; it
// verifies every signature and counts accepted deliveries per notification id. Waits are
// injected (recorded, not slept). Only loopback sockets this test creates are used.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "clinical/http/address_policy.h"
#include "clinical/http/testing/test_ca.h"
#include "gtest/gtest.h"
#include "notification_domain.h"
#include "test_receiver.h"
#include "webhook_sender.h"

namespace clinical::notification {
namespace {

using ::clinical::notification::test_support::kSecret;
using ::clinical::notification::test_support::TestReceiver;

PlannedNotification Sample() {
  PlannedNotification n;
  n.notification_id = NotificationId("ev-1", "risk.high", "cm-1");
  n.rule_id = "risk.high";
  n.type = "high_risk";
  n.priority = Priority::kUrgent;
  n.recipient_id = "cm-1";
  n.tenant_id = "t1";
  n.case_id = "case-1";
  n.title = "High-risk assessment result";
  n.link = "/cases/case-1";
  n.occurred_at = absl::FromUnixSeconds(1'700'000'000);
  return n;
}

// Trusts the receiver's CA and allows its loopback address and port, as the service is
// configured with --webhook-ca-file and --webhook-allow.
http::RequestOptions Options(TestReceiver& receiver, absl::Duration timeout = absl::Seconds(5)) {
  http::RequestOptions options;
  options.timeout = timeout;
  options.ca_file = receiver.ca_file();
  auto policy = http::ParseAllowList(receiver.allow_entry());
  EXPECT_TRUE(policy.ok()) << policy.status();
  options.policy = *policy;
  return options;
}

WebhookTarget Target(const std::string& url, const std::string& secret = kSecret) {
  auto target = ParseWebhookUrl(url, secret);
  EXPECT_TRUE(target.ok()) << target.status();
  return target.value_or(WebhookTarget{});
}

// One attempt, no retry: the delivery report of a single try.
DeliveryReport OneAttempt(const WebhookTarget& target, const http::RequestOptions& options) {
  BackoffPolicy once;
  once.max_attempts = 1;
  return DeliverWithRetries(
      target, Sample(), once, [] { return 0.0; }, [](absl::Duration) { return true; },
      [] { return absl::Now(); }, options);
}

TEST(WebhookSenderTest, RetriesWithBackoffThenExactlyOneSignedDeliveryIsAccepted) {
  TestReceiver receiver(/*fail_first=*/3);
  const WebhookTarget target = Target(receiver.url("/hook"));
  BackoffPolicy policy;
  policy.initial = absl::Seconds(1);
  policy.max = absl::Seconds(60);
  policy.max_attempts = 6;
  std::vector<absl::Duration> waited;
  const PlannedNotification n = Sample();
  DeliveryReport report = DeliverWithRetries(
      target, n, policy, [] { return 0.5; },
      [&](absl::Duration d) {
        waited.push_back(d);
        return true;
      },
      [] { return absl::Now(); }, Options(receiver));
  EXPECT_TRUE(report.delivered);
  EXPECT_EQ(report.attempts, 4);
  EXPECT_EQ(report.failure_reasons,
            (std::vector<std::string>{"http_503", "http_503", "http_503"}));
  // Equal jitter at 0.5: 3/4 of 1 s, 2 s, 4 s.
  EXPECT_EQ(waited, (std::vector<absl::Duration>{absl::Milliseconds(750), absl::Milliseconds(1500),
                                                 absl::Seconds(3)}));
  EXPECT_EQ(receiver.requests(), 4);
  EXPECT_EQ(receiver.bad_signatures(), 0);
  auto accepted = receiver.accepted();
  ASSERT_EQ(accepted.size(), 1u);
  EXPECT_EQ(accepted[n.notification_id], 1);
  // The accepted body carries ids and the link, nothing else about the patient.
  EXPECT_NE(receiver.last_body().find("\"link\":\"/cases/case-1\""), std::string::npos);
  EXPECT_NE(receiver.last_body().find("\"attempt\":4"), std::string::npos);
}

TEST(WebhookSenderTest, SignedHeadersAreUnchanged) {
  TestReceiver receiver(/*fail_first=*/0);
  const std::string body = "{\"notification_id\":\"n-1\"}";
  const int64_t ts = absl::ToUnixSeconds(absl::Now());
  auto code = PostWebhook(Target(receiver.url("/hook")), "n-1", body, ts, Options(receiver));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 200);  // the receiver verified the signature
  EXPECT_EQ(receiver.bad_signatures(), 0);
  const auto request = receiver.last_request();
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/hook");
  EXPECT_EQ(request.body, body);
  EXPECT_EQ(request.Header("content-type"), "application/json");
  EXPECT_EQ(request.Header("x-clinical-timestamp"), std::to_string(ts));
  EXPECT_EQ(request.Header("x-clinical-signature"), "v1=" + WebhookSignature(kSecret, ts, body));
  EXPECT_EQ(request.Header("x-clinical-notification-id"), "n-1");
}

TEST(WebhookSenderTest, DeadLettersAfterMaxAttempts) {
  TestReceiver receiver(/*fail_first=*/100);
  BackoffPolicy policy;
  policy.max_attempts = 3;
  int waits = 0;
  DeliveryReport report = DeliverWithRetries(
      Target(receiver.url()), Sample(), policy, [] { return 0.0; },
      [&](absl::Duration) {
        ++waits;
        return true;
      },
      [] { return absl::Now(); }, Options(receiver));
  EXPECT_FALSE(report.delivered);
  EXPECT_EQ(report.attempts, 3);
  EXPECT_EQ(waits, 2);
  EXPECT_TRUE(receiver.accepted().empty());
}

TEST(WebhookSenderTest, WrongSecretIsRejectedByTheReceiver) {
  TestReceiver receiver(/*fail_first=*/0);
  auto code = PostWebhook(Target(receiver.url(), "wrong"), "n-1", "{}",
                          absl::ToUnixSeconds(absl::Now()), Options(receiver));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 401);
  EXPECT_EQ(receiver.bad_signatures(), 1);
}

TEST(WebhookSenderTest, AReceiverWithACertificateFromAnotherCaIsNotDelivered) {
  TestReceiver receiver(/*fail_first=*/0);
  http::testing::TestCa other("another-ca");
  http::RequestOptions options = Options(receiver);
  options.ca_file = other.ca_file();
  const DeliveryReport report = OneAttempt(Target(receiver.url()), options);
  EXPECT_FALSE(report.delivered);
  EXPECT_EQ(report.failure_reasons, (std::vector<std::string>{"tls"}));
  EXPECT_EQ(receiver.requests(), 0);
}

TEST(WebhookSenderTest, LoopbackWithoutAnAllowEntryIsRefusedAndNothingReachesTheReceiver) {
  TestReceiver receiver(/*fail_first=*/0);
  http::RequestOptions options = Options(receiver);
  options.policy = http::AddressPolicy();
  auto code = PostWebhook(Target(receiver.url()), "n-1", "{}", 0, options);
  EXPECT_EQ(code.status().code(), absl::StatusCode::kPermissionDenied);
  const DeliveryReport report = OneAttempt(Target(receiver.url()), options);
  EXPECT_EQ(report.failure_reasons, (std::vector<std::string>{"address_refused"}));
  EXPECT_EQ(receiver.connections(), 0);
}

TEST(WebhookSenderTest, AReceiverThatNeverAnswersTimesOutWithinTheAttemptTimeout) {
  TestReceiver receiver(/*fail_first=*/0, /*answer=*/false);
  const absl::Time start = absl::Now();
  const DeliveryReport report =
      OneAttempt(Target(receiver.url()), Options(receiver, absl::Milliseconds(500)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_EQ(report.failure_reasons, (std::vector<std::string>{"timeout"}));
  EXPECT_EQ(receiver.requests(), 1);
}

TEST(WebhookSenderTest, LocalhostWithSeveralAddressesIsDeliveredThroughTheOneThatListens) {
  TestReceiver receiver(/*fail_first=*/0);  // listens on 127.0.0.1 only
  http::RequestOptions options = Options(receiver);
  options.resolve_to = {"::1", "127.0.0.1"};  // "localhost" as dual-stack hosts resolve it
  auto policy = http::ParseAllowList("localhost:" + std::to_string(receiver.port()));
  ASSERT_TRUE(policy.ok());
  options.policy = *policy;
  const WebhookTarget target =
      Target("https://localhost:" + std::to_string(receiver.port()) + "/hook");
  const DeliveryReport report = OneAttempt(target, options);
  EXPECT_TRUE(report.delivered) << ::testing::PrintToString(report.failure_reasons);
  EXPECT_EQ(receiver.accepted().size(), 1u);
}

TEST(WebhookSenderTest, ConnectionRefusedIsUnavailableAndShutdownAbandons) {
  // A port that was free a moment ago: bind, read the port, close.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  http::RequestOptions options;
  options.timeout = absl::Seconds(2);
  options.policy = *http::ParseAllowList("127.0.0.1:" + std::to_string(port));
  const WebhookTarget target = Target("https://127.0.0.1:" + std::to_string(port));
  auto code = PostWebhook(target, "n-1", "{}", 0, options);
  EXPECT_EQ(code.status().code(), absl::StatusCode::kUnavailable);
  DeliveryReport report = DeliverWithRetries(
      target, Sample(), BackoffPolicy{}, [] { return 0.0; },
      [](absl::Duration) { return false; }, [] { return absl::Now(); }, options);
  EXPECT_FALSE(report.delivered);
  EXPECT_EQ(report.attempts, 1);
  EXPECT_EQ(report.failure_reasons, (std::vector<std::string>{"connect"}));
}

TEST(WebhookSenderTest, UrlParsingAcceptsHttpsOnly) {
  auto t = ParseWebhookUrl("https://gateway.local:8443/sms/v1", "s");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->url.host, "gateway.local");
  EXPECT_EQ(t->url.port, 8443);
  EXPECT_EQ(t->url.spec, "https://gateway.local:8443/sms/v1");
  EXPECT_EQ(t->secret, "s");
  EXPECT_EQ(ParseWebhookUrl("https://h", "s")->url.port, 443);
  // Plain HTTP is refused: a webhook carries case ids.
  auto plain = ParseWebhookUrl("http://gateway.local:8080/sms?token=t0k3n", "s");
  EXPECT_EQ(plain.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(plain.status().message().find("t0k3n"), absl::string_view::npos);
  EXPECT_FALSE(ParseWebhookUrl("https://h:99999/", "s").ok());
  EXPECT_FALSE(ParseWebhookUrl("https://:443/", "s").ok());
  EXPECT_FALSE(ParseWebhookUrl("https://user:pw@h/", "s").ok());
}

}  // namespace
}  // namespace clinical::notification

// The webhook sender against a small HTTP receiver in this test binary (127.0.0.1:0): it
// fails the first attempts, then accepts; it verifies every signature and counts accepted
// deliveries per notification id. Waits are injected (recorded, not slept).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
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

TEST(WebhookSenderTest, RetriesWithBackoffThenExactlyOneSignedDeliveryIsAccepted) {
  TestReceiver receiver(/*fail_first=*/3);
  auto target = ParseWebhookUrl("http://127.0.0.1:" + std::to_string(receiver.port()) + "/hook",
                                kSecret);
  ASSERT_TRUE(target.ok()) << target.status();
  BackoffPolicy policy;
  policy.initial = absl::Seconds(1);
  policy.max = absl::Seconds(60);
  policy.max_attempts = 6;
  std::vector<absl::Duration> waited;
  const PlannedNotification n = Sample();
  DeliveryReport report = DeliverWithRetries(
      *target, n, policy, [] { return 0.5; },
      [&](absl::Duration d) {
        waited.push_back(d);
        return true;
      },
      [] { return absl::Now(); }, absl::Seconds(5));
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

TEST(WebhookSenderTest, DeadLettersAfterMaxAttempts) {
  TestReceiver receiver(/*fail_first=*/100);
  auto target = ParseWebhookUrl("http://127.0.0.1:" + std::to_string(receiver.port()), kSecret);
  ASSERT_TRUE(target.ok());
  BackoffPolicy policy;
  policy.max_attempts = 3;
  int waits = 0;
  DeliveryReport report = DeliverWithRetries(
      *target, Sample(), policy, [] { return 0.0; },
      [&](absl::Duration) {
        ++waits;
        return true;
      },
      [] { return absl::Now(); }, absl::Seconds(5));
  EXPECT_FALSE(report.delivered);
  EXPECT_EQ(report.attempts, 3);
  EXPECT_EQ(waits, 2);
  EXPECT_TRUE(receiver.accepted().empty());
}

TEST(WebhookSenderTest, WrongSecretIsRejectedByTheReceiver) {
  TestReceiver receiver(/*fail_first=*/0);
  auto target = ParseWebhookUrl("http://127.0.0.1:" + std::to_string(receiver.port()), "wrong");
  ASSERT_TRUE(target.ok());
  auto code = PostWebhook(*target, "n-1", "{}", absl::ToUnixSeconds(absl::Now()), absl::Seconds(5));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 401);
  EXPECT_EQ(receiver.bad_signatures(), 1);
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
  auto target = ParseWebhookUrl("http://127.0.0.1:" + std::to_string(port), kSecret);
  ASSERT_TRUE(target.ok());
  auto code = PostWebhook(*target, "n-1", "{}", 0, absl::Seconds(2));
  EXPECT_EQ(code.status().code(), absl::StatusCode::kUnavailable);
  DeliveryReport report = DeliverWithRetries(
      *target, Sample(), BackoffPolicy{}, [] { return 0.0; },
      [](absl::Duration) { return false; }, [] { return absl::Now(); }, absl::Seconds(2));
  EXPECT_FALSE(report.delivered);
  EXPECT_EQ(report.attempts, 1);
  EXPECT_EQ(report.failure_reasons, (std::vector<std::string>{"connect"}));
}

TEST(WebhookSenderTest, UrlParsing) {
  auto t = ParseWebhookUrl("http://gateway.local:8080/sms/v1", "s");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host, "gateway.local");
  EXPECT_EQ(t->port, 8080);
  EXPECT_EQ(t->path, "/sms/v1");
  EXPECT_EQ(ParseWebhookUrl("http://h", "s")->port, 80);
  EXPECT_FALSE(ParseWebhookUrl("https://h", "s").ok());
  EXPECT_FALSE(ParseWebhookUrl("http://h:99999/", "s").ok());
  EXPECT_FALSE(ParseWebhookUrl("http://:80/", "s").ok());
}

}  // namespace
}  // namespace clinical::notification

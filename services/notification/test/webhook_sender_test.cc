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
#include "webhook_sender.h"

namespace clinical::notification {
namespace {

constexpr char kSecret[] = "test-secret";

// A one-connection-at-a-time HTTP/1.1 receiver. Answers 503 to the first `fail_first`
// requests, then 200. Bounded: accept polls with a timeout and the loop ends on Stop().
class TestReceiver {
 public:
  explicit TestReceiver(int fail_first) : fail_first_(fail_first) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~TestReceiver() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int requests() const { return requests_; }
  int bad_signatures() const { return bad_signatures_; }
  std::map<std::string, int> accepted() {
    std::lock_guard<std::mutex> lock(mutex_);
    return accepted_;
  }
  std::string last_body() {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_body_;
  }

 private:
  void Run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) continue;
      Serve(client);
      ::close(client);
    }
  }

  void Serve(int client) {
    std::string data;
    size_t header_end = std::string::npos;
    size_t content_length = 0;
    for (int i = 0; i < 1000; ++i) {  // bounded read loop
      pollfd p{client, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) return;
      char buf[4096];
      const ssize_t n = ::recv(client, buf, sizeof buf, 0);
      if (n <= 0) return;
      data.append(buf, static_cast<size_t>(n));
      if (header_end == std::string::npos) {
        header_end = data.find("\r\n\r\n");
        if (header_end != std::string::npos) content_length = HeaderInt(data, "content-length");
      }
      if (header_end != std::string::npos && data.size() >= header_end + 4 + content_length) break;
    }
    if (header_end == std::string::npos) return;
    const std::string body = data.substr(header_end + 4, content_length);
    const int64_t ts = HeaderInt(data, "x-clinical-timestamp");
    const std::string signature = Header(data, "x-clinical-signature");
    const std::string id = Header(data, "x-clinical-notification-id");
    const bool valid = signature.rfind("v1=", 0) == 0 &&
                       VerifyWebhookSignature(kSecret, ts, body, signature.substr(3), absl::Now(),
                                              absl::Minutes(5));
    ++requests_;
    std::string status = "503 Service Unavailable";
    if (!valid) {
      ++bad_signatures_;
      status = "401 Unauthorized";
    } else if (requests_ > fail_first_) {
      std::lock_guard<std::mutex> lock(mutex_);
      ++accepted_[id];
      last_body_ = body;
      status = "200 OK";
    }
    const std::string response =
        "HTTP/1.1 " + status + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    ::send(client, response.data(), response.size(), MSG_NOSIGNAL);
  }

  static std::string Header(const std::string& request, const std::string& name) {
    for (absl::string_view line : absl::StrSplit(request.substr(0, request.find("\r\n\r\n")), "\r\n")) {
      const size_t colon = line.find(':');
      if (colon == absl::string_view::npos) continue;
      if (absl::AsciiStrToLower(std::string(line.substr(0, colon))) == name) {
        return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
      }
    }
    return "";
  }
  static int64_t HeaderInt(const std::string& request, const std::string& name) {
    int64_t value = 0;
    return absl::SimpleAtoi(Header(request, name), &value) ? value : 0;
  }

  const int fail_first_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::atomic<int> bad_signatures_{0};
  std::mutex mutex_;
  std::map<std::string, int> accepted_;
  std::string last_body_;
  std::thread thread_;
};

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

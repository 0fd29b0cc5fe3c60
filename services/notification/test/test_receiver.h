// A webhook receiver for tests: an HTTPS server on 127.0.0.1:0 in the test process whose
// certificate comes from a CA made at run time (libs/http/testing). It fails the first
// requests, verifies every signature and counts accepted deliveries per notification.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "clinical/http/testing/test_ca.h"
#include "clinical/http/testing/tls_test_server.h"
#include "notification_domain.h"

namespace clinical::notification::test_support {

inline constexpr char kSecret[] = "test-secret";

// Answers 503 to the first `fail_first` requests and while not accepting, then 200
// (counting a second 200 for one notification id as a duplicate); 401 for a bad signature.
// A receiver made with `answer = false` reads each request and never answers.
// Clients trust it with ca_file() and reach it on 127.0.0.1 with allow_entry().
class TestReceiver {
 public:
  explicit TestReceiver(int fail_first, bool answer = true)
      : fail_first_(fail_first),
        answer_(answer),
        ca_("webhook-test-ca"),
        server_(ca_.IssueForLoopback(), [this](const http::testing::ReceivedRequest& request) {
          return Handle(request);
        }) {}

  int port() const { return server_.port(); }
  // "https://127.0.0.1:<port><path>"
  std::string url(const std::string& path = "/") const {
    return "https://127.0.0.1:" + std::to_string(port()) + path;
  }
  // The allow-list entry that lets webhooks reach this receiver on loopback.
  std::string allow_entry() const { return "127.0.0.1:" + std::to_string(port()); }
  // The PEM file of the CA that issued this receiver's certificate.
  const std::string& ca_file() const { return ca_.ca_file(); }

  int connections() const { return server_.connections(); }  // TCP connections accepted
  int requests() const { return requests_; }                 // complete requests read
  int bad_signatures() const { return bad_signatures_; }
  int duplicates() const { return duplicates_; }
  void SetAccepting(bool accepting) { accepting_ = accepting; }
  std::map<std::string, int> accepted() {
    std::lock_guard<std::mutex> lock(mutex_);
    return accepted_;
  }
  std::string last_body() {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_body_;
  }
  http::testing::ReceivedRequest last_request() {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_request_;
  }

 private:
  std::optional<http::testing::Reply> Handle(const http::testing::ReceivedRequest& request) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      last_request_ = request;
    }
    int64_t ts = 0;
    if (!absl::SimpleAtoi(request.Header("x-clinical-timestamp"), &ts)) ts = 0;
    const std::string signature = request.Header("x-clinical-signature");
    const std::string id = request.Header("x-clinical-notification-id");
    const bool valid = signature.rfind("v1=", 0) == 0 &&
                       VerifyWebhookSignature(kSecret, ts, request.body, signature.substr(3),
                                              absl::Now(), absl::Minutes(5));
    ++requests_;
    if (!answer_) return std::nullopt;
    http::testing::Reply reply;
    reply.status = 503;
    if (!valid) {
      ++bad_signatures_;
      reply.status = 401;
    } else if (requests_ > fail_first_ && accepting_) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (++accepted_[id] > 1) ++duplicates_;
      last_body_ = request.body;
      reply.status = 200;
    }
    return reply;
  }

  const int fail_first_;
  const bool answer_;
  std::atomic<int> requests_{0};
  std::atomic<int> bad_signatures_{0};
  std::atomic<int> duplicates_{0};
  std::atomic<bool> accepting_{true};
  std::mutex mutex_;
  std::map<std::string, int> accepted_;
  std::string last_body_;
  http::testing::ReceivedRequest last_request_;
  http::testing::TestCa ca_;
  // Last: its thread calls Handle, so it stops before the members above are destroyed.
  http::testing::TlsTestServer server_;
};

}  // namespace clinical::notification::test_support

// A small HTTP/1.1 webhook receiver for tests, on 127.0.0.1:0 in the test process: fails
// the first requests, verifies every signature, counts accepted deliveries per notification.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "notification_domain.h"

namespace clinical::notification::test_support {

inline constexpr char kSecret[] = "test-secret";

// A one-connection-at-a-time HTTP/1.1 receiver. Answers 503 to the first `fail_first`
// requests and while not accepting, then 200 (counting a second 200 for one notification id
// as a duplicate); 401 for a bad signature. Bounded: accept polls with a timeout and the loop ends on Stop().
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
    } else if (requests_ > fail_first_ && accepting_) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (++accepted_[id] > 1) ++duplicates_;
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
  std::atomic<int> duplicates_{0};
  std::atomic<bool> accepting_{true};
  std::mutex mutex_;
  std::map<std::string, int> accepted_;
  std::string last_body_;
  std::thread thread_;
};

}  // namespace clinical::notification::test_support

#include "webhook_sender.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace clinical::notification {
namespace {

// Owns a socket descriptor.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

int MillisLeft(absl::Time deadline) {
  const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  return ms <= 0 ? 0 : static_cast<int>(std::min<int64_t>(ms, 60'000));
}

bool WaitFor(int fd, int16_t events, absl::Time deadline) {
  pollfd p{fd, events, 0};
  while (true) {
    const int left = MillisLeft(deadline);
    if (left == 0) return false;
    const int r = ::poll(&p, 1, left);
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

}  // namespace

absl::StatusOr<WebhookTarget> ParseWebhookUrl(const std::string& url, std::string secret) {
  constexpr char kScheme[] = "http://";
  auto bad = [] { return absl::InvalidArgumentError("webhook url must be http://host[:port][/path]"); };
  if (url.rfind(kScheme, 0) != 0) return bad();
  std::string rest = url.substr(sizeof(kScheme) - 1);
  WebhookTarget target;
  target.secret = std::move(secret);
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    target.path = rest.substr(slash);
    rest = rest.substr(0, slash);
  }
  const size_t colon = rest.rfind(':');
  if (colon != std::string::npos) {
    int port = 0;
    if (!absl::SimpleAtoi(rest.substr(colon + 1), &port) || port <= 0 || port > 65535) {
      return bad();
    }
    target.port = port;
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return bad();
  target.host = rest;
  return target;
}

absl::StatusOr<int> PostWebhook(const WebhookTarget& target, const std::string& notification_id,
                                const std::string& body, int64_t unix_seconds,
                                absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(target.host.c_str(), std::to_string(target.port).c_str(), &hints, &found) != 0 ||
      found == nullptr) {
    return absl::UnavailableError("webhook: resolve");
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, &::freeaddrinfo);
  Fd fd(::socket(found->ai_family, found->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                 found->ai_protocol));
  if (fd.get() < 0) return absl::UnavailableError("webhook: socket");
  if (::connect(fd.get(), found->ai_addr, found->ai_addrlen) != 0) {
    if (errno != EINPROGRESS || !WaitFor(fd.get(), POLLOUT, deadline)) {
      return absl::UnavailableError("webhook: connect");
    }
    int error = 0;
    socklen_t len = sizeof error;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
      return absl::UnavailableError("webhook: connect");
    }
  }
  const std::string request = absl::StrCat(
      "POST ", target.path, " HTTP/1.1\r\nHost: ", target.host, ":", target.port,
      "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
      "\r\nX-Clinical-Timestamp: ", unix_seconds,
      "\r\nX-Clinical-Signature: v1=", WebhookSignature(target.secret, unix_seconds, body),
      "\r\nX-Clinical-Notification-Id: ", notification_id, "\r\nConnection: close\r\n\r\n", body);
  size_t sent = 0;
  while (sent < request.size()) {
    if (!WaitFor(fd.get(), POLLOUT, deadline)) return absl::UnavailableError("webhook: timeout");
    const ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) return absl::UnavailableError("webhook: send");
    if (n > 0) sent += static_cast<size_t>(n);
  }
  // Only the status line matters: "HTTP/1.1 200 OK".
  std::string response;
  while (response.find("\r\n") == std::string::npos && response.size() < 4096) {
    if (!WaitFor(fd.get(), POLLIN, deadline)) return absl::UnavailableError("webhook: timeout");
    char buf[1024];
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return absl::UnavailableError("webhook: receive");
    }
    response.append(buf, static_cast<size_t>(n));
  }
  int code = 0;
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12 ||
      !absl::SimpleAtoi(response.substr(9, 3), &code)) {
    return absl::UnavailableError("webhook: malformed response");
  }
  return code;
}

DeliveryReport DeliverWithRetries(const WebhookTarget& target,
                                  const PlannedNotification& notification,
                                  const BackoffPolicy& policy,
                                  const std::function<double()>& jitter,
                                  const std::function<bool(absl::Duration)>& wait,
                                  const std::function<absl::Time()>& clock,
                                  absl::Duration attempt_timeout) {
  DeliveryReport report;
  while (true) {
    ++report.attempts;
    const std::string body = WebhookBody(notification, report.attempts);
    auto code = PostWebhook(target, notification.notification_id, body,
                            absl::ToUnixSeconds(clock()), attempt_timeout);
    if (code.ok() && *code >= 200 && *code < 300) {
      report.delivered = true;
      return report;
    }
    report.failure_reasons.push_back(
        code.ok() ? absl::StrCat("http_", *code)
                  : std::string(code.status().message().substr(9)));  // after "webhook: "
    if (ShouldDeadLetter(report.attempts, policy)) return report;
    const absl::Duration delay = BackoffDelay(report.attempts, policy, jitter());
    report.waits.push_back(delay);
    if (!wait(delay)) return report;
  }
}

}  // namespace clinical::notification

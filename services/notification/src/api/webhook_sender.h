#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "notification_domain.h"

namespace clinical::notification {

// Where a recipient's (or tenant's) gateway listens: plain http://host:port/path (TLS is
// terminated by a sidecar in deployment), and the shared secret of the HMAC signature.
struct WebhookTarget {
  std::string host;
  int port = 80;
  std::string path = "/";
  std::string secret;
};

// Parses "http://host[:port][/path]". INVALID_ARGUMENT otherwise (the URL is not echoed).
absl::StatusOr<WebhookTarget> ParseWebhookUrl(const std::string& url, std::string secret);

// One HTTP/1.1 POST of `body` with headers
//   Content-Type: application/json
//   X-Clinical-Timestamp: <unix seconds>
//   X-Clinical-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">
//   X-Clinical-Notification-Id: <id>   (receivers deduplicate on it)
// over a fresh connection, everything bounded by `timeout`. Returns the HTTP status code;
// UNAVAILABLE for connect/send/receive failures and timeouts. Thread-safe (no shared state).
absl::StatusOr<int> PostWebhook(const WebhookTarget& target, const std::string& notification_id,
                                const std::string& body, int64_t unix_seconds,
                                absl::Duration timeout);

struct DeliveryReport {
  bool delivered = false;
  int attempts = 0;
  std::vector<std::string> failure_reasons;  // "connect", "http_503", ...
  std::vector<absl::Duration> waits;         // the backoff waited before each retry
};

// Delivers one notification: attempts until a 2xx answer or until the policy is exhausted
// (then the caller dead-letters it), waiting BackoffDelay(attempt, policy, jitter()) between
// attempts through `wait` (injected: tests record the delays instead of sleeping; the
// service waits on its stop signal). `wait` returns false to abandon (shutdown).
DeliveryReport DeliverWithRetries(const WebhookTarget& target,
                                  const PlannedNotification& notification,
                                  const BackoffPolicy& policy,
                                  const std::function<double()>& jitter,
                                  const std::function<bool(absl::Duration)>& wait,
                                  const std::function<absl::Time()>& clock,
                                  absl::Duration attempt_timeout);

}  // namespace clinical::notification

#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/http/client.h"
#include "clinical/http/url.h"
#include "notification_domain.h"

namespace clinical::notification {

// Where a recipient's (or tenant's) gateway listens, and the shared secret of the HMAC
// signature. HTTPS only: a webhook carries case ids, and the receiver must prove who it is
// with its certificate.
struct WebhookTarget {
  http::Url url;
  std::string secret;
};

// Parses an https URL (http::ParseHttpsUrl: https only, a host, no user name or password).
// INVALID_ARGUMENT otherwise; the URL is not echoed (it may carry a token).
absl::StatusOr<WebhookTarget> ParseWebhookUrl(const std::string& url, std::string secret);

// One HTTPS POST of `body` through http::Client with headers
//   Content-Type: application/json
//   X-Clinical-Timestamp: <unix seconds>
//   X-Clinical-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">
//   X-Clinical-Notification-Id: <id>   (receivers deduplicate on it)
// `options` carries the CA bundle, the address policy and the attempt timeout (which bounds
// DNS, connect, TLS and the exchange). Returns the HTTP status code, or the client's status
// (see AttemptFailureReason). Thread-safe (no shared state).
absl::StatusOr<int> PostWebhook(const WebhookTarget& target, const std::string& notification_id,
                                const std::string& body, int64_t unix_seconds,
                                const http::RequestOptions& options);

// Why an attempt did not deliver, as delivery reports and NotificationDeliveryFailed carry it:
// "http_<code>" for an answer outside 2xx, otherwise the client's reason ("dns", "connect",
// "tls", "timeout", "address_refused", "too_large", "http", ...). Empty for a 2xx answer.
std::string AttemptFailureReason(const absl::StatusOr<int>& outcome);

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
                                  const http::RequestOptions& attempt_options);

}  // namespace clinical::notification

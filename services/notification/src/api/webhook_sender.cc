#include "webhook_sender.h"

#include "absl/strings/str_cat.h"

namespace clinical::notification {

absl::StatusOr<WebhookTarget> ParseWebhookUrl(const std::string& url, std::string secret) {
  auto parsed = http::ParseHttpsUrl(url);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("webhook ", std::string(parsed.status().message())));
  }
  return WebhookTarget{*std::move(parsed), std::move(secret)};
}

absl::StatusOr<int> PostWebhook(const WebhookTarget& target, const std::string& notification_id,
                                const std::string& body, int64_t unix_seconds,
                                const http::RequestOptions& options) {
  const http::Headers headers = {
      {"Content-Type", "application/json"},
      {"X-Clinical-Timestamp", absl::StrCat(unix_seconds)},
      {"X-Clinical-Signature",
       absl::StrCat("v1=", WebhookSignature(target.secret, unix_seconds, body))},
      {"X-Clinical-Notification-Id", notification_id},
  };
  auto response = http::Client().Post(target.url, headers, body, options);
  if (!response.ok()) return response.status();
  return response->status;
}

std::string AttemptFailureReason(const absl::StatusOr<int>& outcome) {
  if (!outcome.ok()) {
    const std::string reason = http::FailureReason(outcome.status());
    return reason.empty() ? "internal" : reason;
  }
  if (*outcome >= 200 && *outcome < 300) return "";
  return absl::StrCat("http_", *outcome);
}

DeliveryReport DeliverWithRetries(const WebhookTarget& target,
                                  const PlannedNotification& notification,
                                  const BackoffPolicy& policy,
                                  const std::function<double()>& jitter,
                                  const std::function<bool(absl::Duration)>& wait,
                                  const std::function<absl::Time()>& clock,
                                  const http::RequestOptions& attempt_options) {
  DeliveryReport report;
  while (true) {
    ++report.attempts;
    const std::string body = WebhookBody(notification, report.attempts);
    const absl::StatusOr<int> outcome = PostWebhook(
        target, notification.notification_id, body, absl::ToUnixSeconds(clock()), attempt_options);
    std::string reason = AttemptFailureReason(outcome);
    if (reason.empty()) {
      report.delivered = true;
      return report;
    }
    report.failure_reasons.push_back(std::move(reason));
    if (ShouldDeadLetter(report.attempts, policy)) return report;
    const absl::Duration delay = BackoffDelay(report.attempts, policy, jitter());
    report.waits.push_back(delay);
    if (!wait(delay)) return report;
  }
}

}  // namespace clinical::notification

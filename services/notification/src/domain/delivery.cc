// Preferences, quiet hours, retry timing and webhook signing.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "notification_domain.h"

namespace clinical::notification {
namespace {

absl::TimeZone LoadZone(const std::string& name) {
  absl::TimeZone zone;
  if (!absl::LoadTimeZone(name, &zone)) return absl::UTCTimeZone();
  return zone;
}

int MinuteOfDay(const absl::CivilSecond& civil) {
  return static_cast<int>(civil.hour()) * 60 + static_cast<int>(civil.minute());
}

}  // namespace

bool InQuietHours(const Preferences& prefs, absl::Time at, absl::Time* ends) {
  const int start = prefs.quiet_start_minute;
  const int end = prefs.quiet_end_minute;
  if (start == end) return false;
  const absl::TimeZone zone = LoadZone(prefs.time_zone);
  const absl::CivilSecond local = absl::ToCivilSecond(at, zone);
  const int minute = MinuteOfDay(local);
  const bool inside = start < end ? (minute >= start && minute < end)
                                  : (minute >= start || minute < end);
  if (!inside) return false;
  if (ends != nullptr) {
    // The end is today's end-of-quiet wall time, or tomorrow's if the window wrapped past
    // midnight and we are before midnight. Converted back through the zone, so a DST change
    // inside the window is honoured (a skipped wall time maps forward, see absl::FromCivil).
    absl::CivilDay day = absl::CivilDay(local);
    if (start > end && minute >= start) day += 1;
    const absl::CivilMinute end_local(day.year(), day.month(), day.day(), end / 60, end % 60);
    *ends = absl::FromCivil(end_local, zone);
  }
  return true;
}

DeliveryPlan PlanDelivery(const PlannedNotification& notification, const Preferences& prefs,
                          absl::Time now) {
  DeliveryPlan plan;
  const bool urgent = notification.priority == Priority::kUrgent;
  if (!urgent && prefs.opted_out_types.count(notification.type) > 0) {
    plan.suppressed = true;
    return plan;
  }
  // The inbox is the record: every notification lands there at once.
  plan.send_at[Channel::kInApp] = now;
  if (prefs.channels.count(Channel::kWebhook) > 0) {
    absl::Time ends;
    plan.send_at[Channel::kWebhook] = (!urgent && InQuietHours(prefs, now, &ends)) ? ends : now;
  }
  return plan;
}

absl::Duration BackoffDelay(int attempt, const BackoffPolicy& policy, double jitter) {
  const int exponent = std::clamp(attempt - 1, 0, 30);
  absl::Duration step = policy.initial * static_cast<int64_t>(int64_t{1} << exponent);
  if (step > policy.max || step < absl::ZeroDuration()) step = policy.max;
  const double j = std::clamp(jitter, 0.0, 1.0);
  return step / 2 + absl::Nanoseconds(static_cast<int64_t>(
                        std::floor(absl::ToDoubleNanoseconds(step / 2) * j)));
}

bool ShouldDeadLetter(int attempts_made, const BackoffPolicy& policy) {
  return attempts_made >= policy.max_attempts;
}

std::string WebhookBody(const PlannedNotification& n, int attempt) {
  nlohmann::json body = {
      {"notification_id", n.notification_id},
      {"tenant_id", n.tenant_id},
      {"recipient_id", n.recipient_id},
      {"type", n.type},
      {"priority", n.priority == Priority::kUrgent ? "urgent" : "normal"},
      {"title", n.title},
      {"link", n.link},
      {"case_id", n.case_id},
      {"detail", n.detail},
      {"occurred_at", absl::FormatTime(absl::RFC3339_sec, n.occurred_at, absl::UTCTimeZone())},
      {"attempt", attempt},
  };
  return body.dump();
}

std::string WebhookSignature(const std::string& secret, int64_t unix_seconds,
                             const std::string& body) {
  const std::string message = absl::StrCat(unix_seconds, ".", body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &mac_len);
  std::string hex;
  char buf[3];
  for (unsigned int i = 0; i < mac_len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", mac[i]);
    hex.append(buf);
  }
  return hex;
}

bool VerifyWebhookSignature(const std::string& secret, int64_t unix_seconds,
                            const std::string& body, const std::string& signature_hex,
                            absl::Time now, absl::Duration tolerance) {
  const absl::Duration age = now - absl::FromUnixSeconds(unix_seconds);
  if (age > tolerance || age < -tolerance) return false;
  const std::string expected = WebhookSignature(secret, unix_seconds, body);
  if (expected.size() != signature_hex.size()) return false;
  return CRYPTO_memcmp(expected.data(), signature_hex.data(), expected.size()) == 0;
}

}  // namespace clinical::notification

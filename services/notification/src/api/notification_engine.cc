#include "notification_engine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "clinical/grpcx/status.h"

namespace clinical::notification {
namespace {

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t seconds = absl::ToUnixSeconds(t);
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
  return ts;
}

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

v1::Notification ToMessage(const PlannedNotification& n, absl::Time now) {
  v1::Notification m;
  m.set_notification_id(n.notification_id);
  m.set_tenant_id(n.tenant_id);
  m.set_recipient_id(n.recipient_id);
  m.set_type(n.type);
  m.set_priority(n.priority == Priority::kUrgent ? v1::NOTIFICATION_PRIORITY_URGENT
                                                 : v1::NOTIFICATION_PRIORITY_NORMAL);
  m.set_title(n.title);
  m.set_link(n.link);
  m.set_case_id(n.case_id);
  m.set_subject_id(n.subject_id);
  m.set_rule_id(n.rule_id);
  m.set_source_event_id(n.source_id);
  *m.mutable_created_at() = ToProto(now);
  return m;
}

PlannedNotification FromMessage(const v1::Notification& m) {
  PlannedNotification n;
  n.notification_id = m.notification_id();
  n.rule_id = m.rule_id();
  n.type = m.type();
  n.priority = m.priority() == v1::NOTIFICATION_PRIORITY_URGENT ? Priority::kUrgent
                                                                : Priority::kNormal;
  n.recipient_id = m.recipient_id();
  n.tenant_id = m.tenant_id();
  n.case_id = m.case_id();
  n.subject_id = m.subject_id();
  n.title = m.title();
  n.link = m.link();
  n.source_id = m.source_event_id();
  n.occurred_at = FromProto(m.created_at());
  return n;
}

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 500;

}  // namespace

NotificationEngine::NotificationEngine(Appender append, EngineOptions options,
                                       std::function<absl::Time()> clock,
                                       logging::Logger& logger)
    : append_(std::move(append)),
      options_(std::move(options)),
      clock_(std::move(clock)),
      logger_(logger) {}

std::string NotificationEngine::InboxKey(const std::string& tenant_id,
                                         const std::string& recipient_id) {
  return absl::StrCat(tenant_id.size(), ":", tenant_id, "|", recipient_id);
}

void NotificationEngine::ApplyLocked(const common::v1::EventEnvelope& envelope,
                                     int64_t version) {
  const auto& any = envelope.payload();
  if (any.Is<v1::NotificationCreated>()) {
    v1::NotificationCreated created;
    if (!any.UnpackTo(&created)) return;
    const std::string id = envelope.aggregate_id();
    if (notifications_.count(id) > 0) return;
    v1::Notification n = created.notification();
    n.set_version(version);
    inbox_[InboxKey(n.tenant_id(), n.recipient_id())].push_back(id);
    auto settings = options_.recipients.find(RecipientKey(n.tenant_id(), n.recipient_id()));
    // History older than max_event_age is not sent again when recipients gain a webhook.
    if (settings != options_.recipients.end() && !settings->second.webhook_url.empty() &&
        clock_() - FromProto(n.created_at()) <= options_.max_event_age) {
      RecipientSettings rs = settings->second;
      rs.preferences.channels.insert(Channel::kWebhook);
      DeliveryPlan plan = PlanDelivery(FromMessage(n), rs.preferences, FromProto(n.created_at()));
      auto at = plan.send_at.find(Channel::kWebhook);
      if (!plan.suppressed && at != plan.send_at.end()) {
        pending_webhooks_[id] = PendingWebhook{0, at->second};
      }
    }
    notifications_[id] = std::move(n);
    ++created_;
    changed_.notify_all();
  } else if (any.Is<v1::NotificationRead>()) {
    v1::NotificationRead read;
    auto it = notifications_.find(envelope.aggregate_id());
    if (it == notifications_.end() || !any.UnpackTo(&read)) return;
    *it->second.mutable_read_at() = read.read_at();
    it->second.set_version(version);
  } else {
    auto it = notifications_.find(envelope.aggregate_id());
    if (it != notifications_.end()) it->second.set_version(version);
    const std::string& id = envelope.aggregate_id();
    if (any.Is<v1::NotificationDelivered>() || any.Is<v1::NotificationDeadLettered>()) {
      auto pending = pending_webhooks_.find(id);
      if (pending != pending_webhooks_.end()) {
        resends_done_[id] = pending->second.generation;
        pending_webhooks_.erase(pending);
      }
    } else if (any.Is<v1::NotificationResendRequested>()) {
      const int generation = resends_done_[id] + 1;
      resends_done_[id] = generation;
      pending_webhooks_[id] = PendingWebhook{0, FromProto(envelope.occurred_at()), generation};
    } else if (any.Is<v1::NotificationDeliveryFailed>()) {
      v1::NotificationDeliveryFailed failed;
      auto pending = pending_webhooks_.find(id);
      if (pending != pending_webhooks_.end() && any.UnpackTo(&failed)) {
        pending->second.attempts_made = failed.attempt();
        pending->second.not_before = FromProto(failed.next_attempt_at());
      }
    }
    changed_.notify_all();
  }
}

absl::Status NotificationEngine::Replay(const eventstore::LoggedEvent& logged) {
  std::lock_guard<std::mutex> lock(mutex_);
  ApplyLocked(logged.envelope, logged.envelope.aggregate_version());
  return absl::OkStatus();
}

absl::Status NotificationEngine::OnSourceEvent(const common::v1::EventEnvelope& envelope) {
  auto facts = FactsFromEnvelope(envelope);
  if (!facts.ok()) {
    // A payload we cannot decode is not retried: it would block the topic forever.
    logger_.Warn("undecodable source event", {{"event_type", envelope.event_type()}});
    return absl::OkStatus();
  }
  const absl::Time now = clock_();
  std::vector<PlannedNotification> planned;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const bool is_appointment = envelope.aggregate_type() != "case";
    for (Fact& fact : *facts) {
      if (is_appointment) {
        auto appt = appointments_.find(envelope.aggregate_id());
        if (appt != appointments_.end()) Enrich(fact, appt->second);
      }
      auto routing = cases_.find(fact.case_id);
      if (routing != cases_.end()) Enrich(fact, routing->second);
    }
    if (is_appointment) {
      FoldAppointment(envelope, appointments_[envelope.aggregate_id()]);
    } else {
      FoldRouting(envelope, cases_[envelope.aggregate_id()]);
    }
    const absl::Time occurred = FromProto(envelope.occurred_at());
    if (now - occurred > options_.max_event_age) return absl::OkStatus();
    for (const Fact& fact : *facts) {
      for (PlannedNotification& n : Evaluate(fact, options_.rules, envelope.actor().user_id())) {
        if (notifications_.count(n.notification_id) == 0) planned.push_back(std::move(n));
      }
    }
  }
  for (const PlannedNotification& n : planned) {
    v1::NotificationCreated created;
    *created.mutable_notification() = ToMessage(n, now);
    eventstore::AppendRequest request;
    request.aggregate_id = n.notification_id;
    request.command_id = n.notification_id;
    request.expected_version = eventstore::ExpectedVersion::NoStream();
    common::v1::EventEnvelope event;
    event.set_event_type(v1::NotificationCreated::descriptor()->full_name());
    *event.mutable_occurred_at() = ToProto(now);
    event.mutable_actor()->set_user_id("notification-service");
    event.mutable_actor()->set_role(common::v1::ROLE_SERVICE);
    event.set_tenant_id(n.tenant_id);
    event.set_correlation_id(envelope.correlation_id());
    event.set_causation_id(envelope.event_id());
    *event.mutable_trace() = envelope.trace();
    event.set_schema_version(1);
    event.mutable_payload()->PackFrom(created);
    request.events.push_back(event);
    auto result = append_(std::move(request));
    if (!result.ok() && result.status().code() == absl::StatusCode::kAborted) {
      // It exists in the log already (memory was behind): nothing to do.
      logger_.Info("notification exists", {{"notification_id", n.notification_id}});
      continue;
    }
    if (!result.ok()) return result.status();
    std::lock_guard<std::mutex> lock(mutex_);
    event.set_aggregate_id(n.notification_id);
    ApplyLocked(event, result->last_version);
    logger_.Info("notification created", {{"notification_id", n.notification_id},
                                          {"rule", n.rule_id},
                                          {"duplicate", result->duplicate}});
  }
  return absl::OkStatus();
}

absl::Status NotificationEngine::CheckOwnInbox(const grpcx::Caller& caller,
                                               const std::string& recipient_id) const {
  // An inbox is its recipient's; services (e.g. a gateway) may read any in the tenant.
  if (caller.actor.user_id() == recipient_id ||
      caller.actor.role() == common::v1::ROLE_SERVICE) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError("only the recipient may read or change their inbox");
}

absl::StatusOr<v1::ListInboxResponse> NotificationEngine::ListInbox(
    const grpcx::Caller& caller, const v1::ListInboxRequest& request) const {
  grpcx::Violations violations;
  if (request.recipient_id().empty()) violations.Add("recipient_id", "required");
  if (request.page_size() < 0 || request.page_size() > kMaxPageSize) {
    violations.Add("page_size", absl::StrCat("must be between 0 and ", kMaxPageSize));
  }
  if (!violations.empty()) return violations.ToStatus();
  if (absl::Status s = CheckOwnInbox(caller, request.recipient_id()); !s.ok()) return s;
  const size_t limit = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  v1::ListInboxResponse response;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = inbox_.find(InboxKey(caller.tenant_id, request.recipient_id()));
  if (it == inbox_.end()) return response;
  int unread = 0;
  for (auto id = it->second.rbegin(); id != it->second.rend(); ++id) {
    const v1::Notification& n = notifications_.at(*id);
    const bool is_unread = !n.has_read_at();
    if (is_unread) ++unread;
    if (request.unread_only() && !is_unread) continue;
    if (static_cast<size_t>(response.notifications_size()) < limit) {
      *response.add_notifications() = n;
    }
  }
  response.set_unread_count(unread);
  return response;
}

absl::StatusOr<int> NotificationEngine::UnreadCount(
    const grpcx::Caller& caller, const v1::GetUnreadCountRequest& request) const {
  grpcx::Violations violations;
  if (request.recipient_id().empty()) violations.Add("recipient_id", "required");
  if (!violations.empty()) return violations.ToStatus();
  if (absl::Status s = CheckOwnInbox(caller, request.recipient_id()); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = inbox_.find(InboxKey(caller.tenant_id, request.recipient_id()));
  if (it == inbox_.end()) return 0;
  int unread = 0;
  for (const std::string& id : it->second) unread += notifications_.at(id).has_read_at() ? 0 : 1;
  return unread;
}

absl::StatusOr<v1::MarkReadResponse> NotificationEngine::MarkRead(
    const grpcx::Caller& caller, const v1::MarkReadRequest& request) {
  grpcx::Violations violations;
  if (request.command_id().empty()) violations.Add("command_id", "required");
  if (request.recipient_id().empty()) violations.Add("recipient_id", "required");
  if (request.notification_id().empty()) violations.Add("notification_id", "required");
  if (request.expected_version() < 0) violations.Add("expected_version", "must not be negative");
  if (!violations.empty()) return violations.ToStatus();
  if (absl::Status s = CheckOwnInbox(caller, request.recipient_id()); !s.ok()) return s;
  v1::MarkReadResponse response;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = notifications_.find(request.notification_id());
    if (it == notifications_.end() || it->second.tenant_id() != caller.tenant_id ||
        it->second.recipient_id() != request.recipient_id()) {
      return absl::NotFoundError("notification not found");
    }
    if (request.expected_version() > 0 && request.expected_version() != it->second.version()) {
      return absl::AbortedError(
          absl::StrCat("notification is at version ", it->second.version()));
    }
    if (it->second.has_read_at()) {
      // Already read: nothing to write, same answer as the first time (position unknown).
      response.set_version(it->second.version());
      *response.mutable_notification() = it->second;
      return response;
    }
  }
  const absl::Time now = clock_();
  v1::NotificationRead read;
  *read.mutable_read_at() = ToProto(now);
  eventstore::AppendRequest append;
  append.aggregate_id = request.notification_id();
  append.command_id = request.command_id();
  append.expected_version = request.expected_version() > 0
                                ? eventstore::ExpectedVersion::Exactly(request.expected_version())
                                : eventstore::ExpectedVersion::Any();
  common::v1::EventEnvelope event;
  event.set_event_type(v1::NotificationRead::descriptor()->full_name());
  *event.mutable_occurred_at() = ToProto(now);
  *event.mutable_actor() = caller.actor;
  event.set_tenant_id(caller.tenant_id);
  *event.mutable_trace() = caller.trace;
  event.set_schema_version(1);
  event.mutable_payload()->PackFrom(read);
  append.events.push_back(event);
  auto result = append_(std::move(append));
  if (!result.ok()) return result.status();
  std::lock_guard<std::mutex> lock(mutex_);
  if (!result->duplicate) {
    event.set_aggregate_id(request.notification_id());
    ApplyLocked(event, result->last_version);
  }
  response.set_version(result->last_version);
  *response.mutable_position() = result->position;
  *response.mutable_notification() = notifications_.at(request.notification_id());
  return response;
}

absl::StatusOr<v1::ResendResponse> NotificationEngine::Resend(const grpcx::Caller& caller,
                                                             const v1::ResendRequest& request) {
  grpcx::Violations violations;
  if (request.command_id().empty()) violations.Add("command_id", "required");
  if (request.recipient_id().empty()) violations.Add("recipient_id", "required");
  if (request.notification_id().empty()) violations.Add("notification_id", "required");
  if (!violations.empty()) return violations.ToStatus();
  if (absl::Status s = CheckOwnInbox(caller, request.recipient_id()); !s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = notifications_.find(request.notification_id());
    if (it == notifications_.end() || it->second.tenant_id() != caller.tenant_id ||
        it->second.recipient_id() != request.recipient_id()) {
      return absl::NotFoundError("notification not found");
    }
    auto settings = options_.recipients.find(RecipientKey(caller.tenant_id, request.recipient_id()));
    if (settings == options_.recipients.end() || settings->second.webhook_url.empty()) {
      return absl::FailedPreconditionError("the recipient has no webhook");
    }
  }
  v1::NotificationResendRequested resend;
  resend.set_channel(v1::NOTIFICATION_CHANNEL_WEBHOOK);
  common::v1::EventEnvelope event;
  event.set_event_type(v1::NotificationResendRequested::descriptor()->full_name());
  *event.mutable_occurred_at() = ToProto(clock_());
  *event.mutable_actor() = caller.actor;
  event.set_tenant_id(caller.tenant_id);
  *event.mutable_trace() = caller.trace;
  event.set_schema_version(1);
  event.mutable_payload()->PackFrom(resend);
  eventstore::AppendRequest append;
  append.aggregate_id = request.notification_id();
  append.command_id = request.command_id();
  append.events.push_back(event);
  auto result = append_(std::move(append));
  if (!result.ok()) return result.status();
  std::lock_guard<std::mutex> lock(mutex_);
  if (!result->duplicate) {
    event.set_aggregate_id(request.notification_id());
    ApplyLocked(event, result->last_version);
  }
  v1::ResendResponse response;
  response.set_version(result->last_version);
  *response.mutable_position() = result->position;
  return response;
}

absl::Status NotificationEngine::CheckSubscribe(const grpcx::Caller& caller,
                                                const v1::SubscribeInboxRequest& request) const {
  grpcx::Violations violations;
  if (request.recipient_id().empty()) violations.Add("recipient_id", "required");
  if (!violations.empty()) return violations.ToStatus();
  return CheckOwnInbox(caller, request.recipient_id());
}

size_t NotificationEngine::InboxEnd(const std::string& tenant_id,
                                    const std::string& recipient_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = inbox_.find(InboxKey(tenant_id, recipient_id));
  return it == inbox_.end() ? 0 : it->second.size();
}

std::vector<v1::Notification> NotificationEngine::WaitForNew(const std::string& tenant_id,
                                                             const std::string& recipient_id,
                                                             size_t* cursor, bool unread_only,
                                                             absl::Time deadline) {
  const std::string key = InboxKey(tenant_id, recipient_id);
  std::unique_lock<std::mutex> lock(mutex_);
  auto size = [&]() -> size_t {
    auto it = inbox_.find(key);
    return it == inbox_.end() ? 0 : it->second.size();
  };
  while (!stopped_ && size() <= *cursor) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return {};
    changed_.wait_for(lock, absl::ToChronoMilliseconds(left));
  }
  std::vector<v1::Notification> out;
  if (stopped_) return out;
  const auto& ids = inbox_.at(key);
  for (size_t i = *cursor; i < ids.size(); ++i) {
    const v1::Notification& n = notifications_.at(ids[i]);
    if (unread_only && n.has_read_at()) continue;
    out.push_back(n);
  }
  *cursor = ids.size();
  return out;
}

std::string NotificationEngine::RecipientKey(const std::string& tenant_id,
                                             const std::string& recipient_id) {
  return absl::StrCat(tenant_id, "/", recipient_id);
}

std::optional<DueWebhook> NotificationEngine::NextDueWebhook(absl::Time now,
                                                             absl::Time* next_due) const {
  std::lock_guard<std::mutex> lock(mutex_);
  *next_due = absl::InfiniteFuture();
  std::optional<DueWebhook> due;
  for (const auto& [id, pending] : pending_webhooks_) {
    if (pending.not_before > now) {
      *next_due = std::min(*next_due, pending.not_before);
      continue;
    }
    if (due.has_value()) continue;
    const v1::Notification& n = notifications_.at(id);
    const auto& settings = options_.recipients.at(RecipientKey(n.tenant_id(), n.recipient_id()));
    due = DueWebhook{FromMessage(n), settings.webhook_url, settings.webhook_secret,
                     pending.attempts_made + 1, pending.generation};
  }
  return due;
}

absl::Status NotificationEngine::RecordWebhookAttempt(const DueWebhook& due, bool delivered,
                                                      const std::string& reason,
                                                      double jitter) {
  const absl::Time now = clock_();
  common::v1::EventEnvelope event;
  *event.mutable_occurred_at() = ToProto(now);
  event.mutable_actor()->set_user_id("notification-service");
  event.mutable_actor()->set_role(common::v1::ROLE_SERVICE);
  event.set_tenant_id(due.notification.tenant_id);
  event.set_schema_version(1);
  if (delivered) {
    v1::NotificationDelivered e;
    e.set_channel(v1::NOTIFICATION_CHANNEL_WEBHOOK);
    e.set_attempt(due.attempt);
    event.set_event_type(v1::NotificationDelivered::descriptor()->full_name());
    event.mutable_payload()->PackFrom(e);
  } else if (ShouldDeadLetter(due.attempt, options_.backoff)) {
    v1::NotificationDeadLettered e;
    e.set_channel(v1::NOTIFICATION_CHANNEL_WEBHOOK);
    e.set_attempts(due.attempt);
    event.set_event_type(v1::NotificationDeadLettered::descriptor()->full_name());
    event.mutable_payload()->PackFrom(e);
  } else {
    v1::NotificationDeliveryFailed e;
    e.set_channel(v1::NOTIFICATION_CHANNEL_WEBHOOK);
    e.set_attempt(due.attempt);
    e.set_reason(reason);
    *e.mutable_next_attempt_at() =
        ToProto(now + BackoffDelay(due.attempt, options_.backoff, jitter));
    event.set_event_type(v1::NotificationDeliveryFailed::descriptor()->full_name());
    event.mutable_payload()->PackFrom(e);
  }
  eventstore::AppendRequest append;
  append.aggregate_id = due.notification.notification_id;
  // One outcome per attempt, whatever retries of the append happen.
  append.command_id = absl::StrCat(due.notification.notification_id, ".webhook.",
                                   due.generation, ".", due.attempt);
  append.events.push_back(event);
  auto result = append_(std::move(append));
  if (!result.ok()) return result.status();
  std::lock_guard<std::mutex> lock(mutex_);
  event.set_aggregate_id(due.notification.notification_id);
  if (!result->duplicate) ApplyLocked(event, result->last_version);
  logger_.Info("webhook attempt", {{"notification_id", due.notification.notification_id},
                                   {"attempt", due.attempt},
                                   {"delivered", delivered},
                                   {"reason", reason}});
  return absl::OkStatus();
}

void NotificationEngine::Stop() {
  std::lock_guard<std::mutex> lock(mutex_);
  stopped_ = true;
  changed_.notify_all();
}

bool NotificationEngine::stopped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stopped_;
}

size_t NotificationEngine::notification_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return notifications_.size();
}

int64_t NotificationEngine::created_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return created_;
}

}  // namespace clinical::notification

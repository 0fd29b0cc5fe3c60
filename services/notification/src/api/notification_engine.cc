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
  m.set_detail(n.detail);
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
  n.detail = m.detail();
  n.source_id = m.source_event_id();
  n.occurred_at = FromProto(m.created_at());
  return n;
}

constexpr std::pair<Trigger, v1::TimerKind> kTimerKinds[] = {
    {Trigger::kTaskOverdue, v1::TIMER_KIND_TASK_OVERDUE},
    {Trigger::kTaskOverdueEscalation, v1::TIMER_KIND_TASK_OVERDUE_ESCALATION},
    {Trigger::kNoContact, v1::TIMER_KIND_NO_CONTACT},
};

v1::TimerKind KindOf(Trigger trigger) {
  for (const auto& [t, kind] : kTimerKinds) {
    if (t == trigger) return kind;
  }
  return v1::TIMER_KIND_UNSPECIFIED;
}

std::optional<Trigger> TriggerOf(v1::TimerKind kind) {
  for (const auto& [trigger, k] : kTimerKinds) {
    if (k == kind) return trigger;
  }
  return std::nullopt;
}

v1::TimerScheduled ToEvent(const Timer& timer, const std::string& cause_event_id) {
  v1::TimerScheduled e;
  e.set_kind(KindOf(timer.trigger));
  *e.mutable_fire_at() = ToProto(timer.fire_at);
  e.set_source_id(timer.fact.source_id);
  e.set_cause_event_id(cause_event_id);
  e.set_case_id(timer.fact.case_id);
  e.set_subject_id(timer.fact.subject_id);
  e.set_task_owner_id(timer.fact.task_owner_id);
  if (timer.fact.due_at != absl::InfinitePast()) *e.mutable_due_at() = ToProto(timer.fact.due_at);
  return e;
}

std::optional<Timer> FromEvent(const v1::TimerScheduled& e, const std::string& timer_id,
                               const std::string& tenant_id) {
  auto trigger = TriggerOf(e.kind());
  if (!trigger) return std::nullopt;
  Timer timer;
  timer.timer_id = timer_id;
  timer.trigger = *trigger;
  timer.fire_at = FromProto(e.fire_at());
  timer.fact.trigger = *trigger;
  timer.fact.source_id = e.source_id();
  timer.fact.tenant_id = tenant_id;
  timer.fact.case_id = e.case_id();
  timer.fact.subject_id = e.subject_id();
  timer.fact.task_owner_id = e.task_owner_id();
  timer.fact.occurred_at = timer.fire_at;
  if (e.has_due_at()) timer.fact.due_at = FromProto(e.due_at());
  return timer;
}

Preferences FromProto(const v1::RecipientPreferences& p) {
  Preferences out;
  for (int c : p.channels()) {
    if (c == v1::NOTIFICATION_CHANNEL_WEBHOOK) out.channels.insert(Channel::kWebhook);
  }
  out.time_zone = p.time_zone().empty() ? "UTC" : p.time_zone();
  out.quiet_start_minute = p.quiet_hours().start_minute();
  out.quiet_end_minute = p.quiet_hours().end_minute();
  out.opted_out_types.insert(p.opted_out_types().begin(), p.opted_out_types().end());
  return out;
}

v1::RecipientPreferences ToProto(const Preferences& p, bool webhook) {
  v1::RecipientPreferences out;
  out.add_channels(v1::NOTIFICATION_CHANNEL_IN_APP);
  if (webhook) out.add_channels(v1::NOTIFICATION_CHANNEL_WEBHOOK);
  out.set_time_zone(p.time_zone);
  out.mutable_quiet_hours()->set_start_minute(p.quiet_start_minute);
  out.mutable_quiet_hours()->set_end_minute(p.quiet_end_minute);
  for (const std::string& t : p.opted_out_types) out.add_opted_out_types(t);
  return out;
}

// IANA names only: absl also accepts "localtime" (the server's zone) and "Fixed/UTC+hh"
// forms, and reads names as file paths under the zoneinfo directory.
bool ValidTimeZoneName(const std::string& name) {
  if (name.empty() || name.size() > 64 || name == "localtime" || name.rfind("Fixed/", 0) == 0 ||
      name.find("..") != std::string::npos || name.front() == '/') {
    return false;
  }
  absl::TimeZone zone;
  return absl::LoadTimeZone(name, &zone);
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
    // History older than max_event_age is not sent again when recipients gain a webhook.
    if (clock_() - FromProto(n.created_at()) <= options_.max_event_age) {
      if (replaying_) {
        // The recipient's PreferencesSet may come later in the replay (another partition):
        // queue it now, FinishReplay decides with the preferences as they finally are.
        pending_webhooks_[id] = PendingWebhook{0, FromProto(n.created_at())};
      } else if (auto at = FirstWebhookAttemptLocked(n)) {
        pending_webhooks_[id] = PendingWebhook{0, *at};
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
  } else if (any.Is<v1::TimerScheduled>()) {
    v1::TimerScheduled e;
    if (!any.UnpackTo(&e)) return;
    auto timer = FromEvent(e, envelope.aggregate_id(), envelope.tenant_id());
    if (!timer) return;
    TimerState& state = timers_[timer->timer_id];
    if (state.pending) due_.erase({state.timer.fire_at, state.timer.timer_id});
    state.timer = *std::move(timer);
    state.pending = true;
    state.causes.insert(e.cause_event_id());
    due_.insert({state.timer.fire_at, state.timer.timer_id});
  } else if (any.Is<v1::TimerCancelled>() || any.Is<v1::TimerFired>()) {
    auto it = timers_.find(envelope.aggregate_id());
    if (it == timers_.end()) return;
    v1::TimerCancelled cancelled;
    v1::TimerFired fired;
    if (any.UnpackTo(&cancelled) && any.Is<v1::TimerCancelled>()) {
      it->second.causes.insert(cancelled.cause_event_id());
    } else if (!any.UnpackTo(&fired) || fired.source_id() != it->second.timer.fact.source_id) {
      return;  // an earlier period fired while this one was being set: this one stays
    }
    if (it->second.pending) due_.erase({it->second.timer.fire_at, it->second.timer.timer_id});
    it->second.pending = false;
  } else if (any.Is<v1::PreferencesSet>()) {
    v1::PreferencesSet e;
    if (!any.UnpackTo(&e)) return;
    preferences_[RecipientKey(envelope.tenant_id(), e.recipient_id())] =
        StoredPreferences{e.preferences(), version};
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

std::optional<absl::Time> NotificationEngine::FirstWebhookAttemptLocked(
    const v1::Notification& n) const {
  auto settings = SettingsLocked(n.tenant_id(), n.recipient_id());
  if (!settings.has_value() || settings->webhook_url.empty()) return std::nullopt;
  settings->preferences.channels.insert(Channel::kWebhook);
  DeliveryPlan plan = PlanDelivery(FromMessage(n), settings->preferences, FromProto(n.created_at()));
  auto at = plan.send_at.find(Channel::kWebhook);
  if (plan.suppressed || at == plan.send_at.end()) return std::nullopt;
  return at->second;
}

absl::Status NotificationEngine::Replay(const eventstore::LoggedEvent& logged) {
  std::lock_guard<std::mutex> lock(mutex_);
  replaying_ = true;
  ApplyLocked(logged.envelope, logged.envelope.aggregate_version());
  replaying_ = false;
  return absl::OkStatus();
}

void NotificationEngine::FinishReplay() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = pending_webhooks_.begin(); it != pending_webhooks_.end();) {
    // Resends and series under way were asked for / started with a webhook: they go on.
    if (it->second.generation > 0 || it->second.attempts_made > 0) {
      ++it;
      continue;
    }
    auto at = FirstWebhookAttemptLocked(notifications_.at(it->first));
    if (!at.has_value()) {
      it = pending_webhooks_.erase(it);
    } else {
      it->second.not_before = *at;
      ++it;
    }
  }
}

void EnrichFromOrganisation(Fact& fact, const relations::OrganisationFacts& organisation) {
  if (fact.trigger != Trigger::kEmergencyAccessGranted) return;
  fact.privacy_officer_ids = organisation.privacy_officer_ids;
  relations::CaseFacts team;
  team.team_id = fact.team_id;
  const std::set<std::string> supervisors = relations::SupervisorsOf(organisation, team);
  fact.team_supervisor_ids.assign(supervisors.begin(), supervisors.end());
}

absl::Status NotificationEngine::OnSourceEvent(const common::v1::EventEnvelope& envelope) {
  auto facts = FactsFromEnvelope(envelope);
  if (!facts.ok()) {
    // A payload we cannot decode is not retried: it would block the topic forever.
    logger_.Warn("undecodable source event", {{"event_type", envelope.event_type()}});
    return absl::OkStatus();
  }
  for (Fact& fact : *facts) {
    if (fact.trigger != Trigger::kEmergencyAccessGranted || !options_.organisation) continue;
    // Asked outside the engine's lock: it may wait for the organisation topic's reader.
    auto organisation = options_.organisation(fact.tenant_id);
    if (!organisation.ok()) return organisation.status();
    EnrichFromOrganisation(fact, *organisation);
  }
  const absl::Time now = clock_();
  const bool is_appointment = envelope.aggregate_type() != "case";
  if (!is_appointment) {
    if (absl::Status s = StoreTimerPlan(envelope, now); !s.ok()) return s;
  }
  std::vector<PlannedNotification> planned;
  {
    std::lock_guard<std::mutex> lock(mutex_);
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
    if (absl::Status s = AppendCreated(n, envelope, now); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status NotificationEngine::AppendCreated(const PlannedNotification& n,
                                               const common::v1::EventEnvelope& cause,
                                               absl::Time now) {
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
  event.set_correlation_id(cause.correlation_id());
  event.set_causation_id(cause.event_id());
  *event.mutable_trace() = cause.trace();
  event.set_schema_version(1);
  event.mutable_payload()->PackFrom(created);
  request.events.push_back(event);
  auto result = append_(std::move(request));
  if (!result.ok() && result.status().code() == absl::StatusCode::kAborted) {
    // It exists in the log already (memory was behind): nothing to do.
    logger_.Info("notification exists", {{"notification_id", n.notification_id}});
    return absl::OkStatus();
  }
  if (!result.ok()) return result.status();
  std::lock_guard<std::mutex> lock(mutex_);
  event.set_aggregate_id(n.notification_id);
  ApplyLocked(event, result->last_version);
  logger_.Info("notification created", {{"notification_id", n.notification_id},
                                        {"rule", n.rule_id},
                                        {"duplicate", result->duplicate}});
  return absl::OkStatus();
}

absl::StatusOr<eventstore::AppendResult> NotificationEngine::AppendAndApply(
    const std::string& aggregate_id, const std::string& command_id,
    common::v1::EventEnvelope event) {
  eventstore::AppendRequest request;
  request.aggregate_id = aggregate_id;
  request.command_id = command_id;
  request.events.push_back(event);
  auto result = append_(std::move(request));
  if (!result.ok()) return result.status();
  std::lock_guard<std::mutex> lock(mutex_);
  event.set_aggregate_id(aggregate_id);
  if (!result->duplicate) ApplyLocked(event, result->last_version);
  return result;
}

namespace {

common::v1::EventEnvelope ServiceEvent(const google::protobuf::Message& payload,
                                       const std::string& tenant_id, absl::Time now) {
  common::v1::EventEnvelope event;
  event.set_event_type(payload.GetDescriptor()->full_name());
  *event.mutable_occurred_at() = ToProto(now);
  event.mutable_actor()->set_user_id("notification-service");
  event.mutable_actor()->set_role(common::v1::ROLE_SERVICE);
  event.set_tenant_id(tenant_id);
  event.set_schema_version(1);
  event.mutable_payload()->PackFrom(payload);
  return event;
}

}  // namespace

absl::Status NotificationEngine::StoreTimerPlan(const common::v1::EventEnvelope& envelope,
                                                absl::Time now) {
  const TimerPlan plan = PlanTimers(envelope, options_.rules);
  const std::string& cause = envelope.event_id();
  auto known = [&](const std::string& timer_id, bool need_pending) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = timers_.find(timer_id);
    if (it == timers_.end()) return need_pending;  // nothing to cancel
    return it->second.causes.count(cause) > 0 || (need_pending && !it->second.pending);
  };
  for (const Timer& timer : plan.set) {
    // Re-read source events (every start) were stored already; timers long past are
    // history (the same bound as notifications: no flood when the service first starts).
    if (known(timer.timer_id, false) || now - timer.fire_at > options_.max_event_age) continue;
    common::v1::EventEnvelope event = ServiceEvent(ToEvent(timer, cause), envelope.tenant_id(), now);
    event.set_correlation_id(envelope.correlation_id());
    event.set_causation_id(cause);
    auto result = AppendAndApply(timer.timer_id, DerivedId({timer.timer_id, "scheduled", cause}),
                                 std::move(event));
    if (!result.ok()) return result.status();
  }
  for (const std::string& timer_id : plan.cancel) {
    if (known(timer_id, true)) continue;
    v1::TimerCancelled cancelled;
    cancelled.set_cause_event_id(cause);
    common::v1::EventEnvelope event = ServiceEvent(cancelled, envelope.tenant_id(), now);
    event.set_correlation_id(envelope.correlation_id());
    event.set_causation_id(cause);
    auto result =
        AppendAndApply(timer_id, DerivedId({timer_id, "cancelled", cause}), std::move(event));
    if (!result.ok()) return result.status();
  }
  return absl::OkStatus();
}

void NotificationEngine::SetTimersReady() {
  std::lock_guard<std::mutex> lock(mutex_);
  timers_ready_ = true;
}

std::optional<Timer> NotificationEngine::NextDueTimer(absl::Time now,
                                                      absl::Time* next_due) const {
  std::lock_guard<std::mutex> lock(mutex_);
  *next_due = absl::InfiniteFuture();
  if (!timers_ready_ || due_.empty()) return std::nullopt;
  const auto& [at, timer_id] = *due_.begin();
  if (at > now) {
    *next_due = at;
    return std::nullopt;
  }
  return timers_.at(timer_id).timer;
}

absl::Status NotificationEngine::FireTimer(const Timer& timer) {
  const absl::Time now = clock_();
  std::vector<PlannedNotification> planned;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = timers_.find(timer.timer_id);
    if (it == timers_.end() || !it->second.pending ||
        it->second.timer.fact.source_id != timer.fact.source_id) {
      return absl::OkStatus();  // cancelled or moved since it was handed out
    }
    Fact fact = it->second.timer.fact;
    bool open = true;
    auto routing = cases_.find(fact.case_id);
    if (routing != cases_.end()) {
      Enrich(fact, routing->second);
      open = routing->second.open;
    }
    // A closed case pages nobody (its timers are normally cancelled with it).
    if (open) {
      for (PlannedNotification& n : Evaluate(fact, options_.rules, /*actor_id=*/"")) {
        if (notifications_.count(n.notification_id) == 0) planned.push_back(std::move(n));
      }
    }
  }
  // The notifications first, then TimerFired: a crash in between fires again, and the
  // notifications' identities (timer source id, rule, recipient) make that a no-op.
  common::v1::EventEnvelope cause;
  cause.set_event_id(timer.fact.source_id);
  cause.set_correlation_id(timer.timer_id);
  for (const PlannedNotification& n : planned) {
    if (absl::Status s = AppendCreated(n, cause, now); !s.ok()) return s;
  }
  v1::TimerFired fired;
  fired.set_source_id(timer.fact.source_id);
  fired.set_notifications(static_cast<int32_t>(planned.size()));
  common::v1::EventEnvelope event = ServiceEvent(fired, timer.fact.tenant_id, now);
  event.set_correlation_id(timer.timer_id);
  auto result = AppendAndApply(timer.timer_id,
                               DerivedId({timer.timer_id, "fired", timer.fact.source_id}),
                               std::move(event));
  if (!result.ok()) return result.status();
  if (!result->duplicate) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++timers_fired_;
  }
  logger_.Info("timer fired", {{"timer_id", timer.timer_id},
                               {"kind", TriggerName(timer.trigger)},
                               {"notifications", static_cast<int64_t>(planned.size())}});
  return absl::OkStatus();
}

size_t NotificationEngine::pending_timer_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return due_.size();
}

NotificationEngine::TimerStats NotificationEngine::timer_stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  TimerStats stats;
  stats.pending = due_.size();
  stats.armed = timers_ready_;
  if (!due_.empty()) stats.earliest_due = due_.begin()->first;
  stats.fired_here = timers_fired_;
  return stats;
}

std::optional<RecipientSettings> NotificationEngine::SettingsLocked(
    const std::string& tenant_id, const std::string& recipient_id) const {
  auto set = preferences_.find(RecipientKey(tenant_id, recipient_id));
  if (set != preferences_.end()) {
    RecipientSettings settings;
    settings.preferences = FromProto(set->second.preferences);
    if (settings.preferences.channels.count(Channel::kWebhook) > 0) {
      auto endpoint = options_.endpoints.find(
          RecipientKey(tenant_id, set->second.preferences.webhook_endpoint_id()));
      if (endpoint != options_.endpoints.end()) {
        settings.webhook_url = endpoint->second.url;
        settings.webhook_secret = endpoint->second.secret;
      } else {
        // The deployment dropped the endpoint since: the inbox still has everything.
        settings.preferences.channels.erase(Channel::kWebhook);
      }
    }
    return settings;
  }
  auto file = options_.recipients.find(RecipientKey(tenant_id, recipient_id));
  if (file != options_.recipients.end()) return file->second;
  return std::nullopt;
}

absl::StatusOr<v1::GetPreferencesResponse> NotificationEngine::GetPreferences(
    const grpcx::Caller& caller, const v1::GetPreferencesRequest& request) const {
  grpcx::Violations violations;
  if (request.recipient_id().empty()) violations.Add("recipient_id", "required");
  if (!violations.empty()) return violations.ToStatus();
  v1::GetPreferencesResponse response;
  std::lock_guard<std::mutex> lock(mutex_);
  auto set = preferences_.find(RecipientKey(caller.tenant_id, request.recipient_id()));
  if (set != preferences_.end()) {
    *response.mutable_preferences() = set->second.preferences;
    response.set_version(set->second.version);
    return response;
  }
  // Deployment defaults (the recipients file; never its URL or secret).
  auto file = options_.recipients.find(RecipientKey(caller.tenant_id, request.recipient_id()));
  *response.mutable_preferences() =
      file != options_.recipients.end()
          ? ToProto(file->second.preferences, !file->second.webhook_url.empty())
          : ToProto(Preferences{}, false);
  return response;
}

absl::StatusOr<v1::SetPreferencesResponse> NotificationEngine::SetPreferences(
    const grpcx::Caller& caller, const v1::SetPreferencesRequest& request) {
  grpcx::Violations violations;
  if (request.command_id().empty()) violations.Add("command_id", "required");
  if (request.recipient_id().empty()) violations.Add("recipient_id", "required");
  if (request.expected_version() < 0) violations.Add("expected_version", "must not be negative");
  if (!request.has_preferences()) violations.Add("preferences", "required");
  const v1::RecipientPreferences& p = request.preferences();
  std::set<int> channels;
  for (int i = 0; i < p.channels_size(); ++i) {
    const int c = p.channels(i);
    const std::string field = absl::StrCat("preferences.channels[", i, "]");
    if (c != v1::NOTIFICATION_CHANNEL_IN_APP && c != v1::NOTIFICATION_CHANNEL_WEBHOOK) {
      violations.Add(field, "must be NOTIFICATION_CHANNEL_IN_APP or NOTIFICATION_CHANNEL_WEBHOOK");
    } else if (!channels.insert(c).second) {
      violations.Add(field, "duplicate");
    }
  }
  if (!p.time_zone().empty() && !ValidTimeZoneName(p.time_zone())) {
    violations.Add("preferences.time_zone", "must be an IANA time zone name, e.g. Europe/Berlin");
  }
  for (const auto& [field, minute] :
       {std::pair<std::string, int>{"preferences.quiet_hours.start_minute",
                                    p.quiet_hours().start_minute()},
        std::pair<std::string, int>{"preferences.quiet_hours.end_minute",
                                    p.quiet_hours().end_minute()}}) {
    if (minute < 0 || minute >= 24 * 60) violations.Add(field, "must be in [0, 1440)");
  }
  const std::set<std::string> types = NotificationTypes(options_.rules.For(caller.tenant_id));
  std::set<std::string> opted_out;
  for (int i = 0; i < p.opted_out_types_size(); ++i) {
    const std::string field = absl::StrCat("preferences.opted_out_types[", i, "]");
    if (types.count(p.opted_out_types(i)) == 0) {
      violations.Add(field, "not a notification type of this tenant's rules");
    } else if (!opted_out.insert(p.opted_out_types(i)).second) {
      violations.Add(field, "duplicate");
    }
  }
  const bool webhook = channels.count(v1::NOTIFICATION_CHANNEL_WEBHOOK) > 0;
  if (webhook && p.webhook_endpoint_id().empty()) {
    violations.Add("preferences.webhook_endpoint_id", "required with the webhook channel");
  } else if (!p.webhook_endpoint_id().empty() &&
             options_.endpoints.count(RecipientKey(caller.tenant_id, p.webhook_endpoint_id())) ==
                 0) {
    violations.Add("preferences.webhook_endpoint_id", "not an endpoint of this tenant");
  }
  if (!violations.empty()) return violations.ToStatus();

  v1::PreferencesSet set;
  set.set_recipient_id(request.recipient_id());
  *set.mutable_preferences() = p;
  // Normalised: the inbox is always on, the zone always named.
  if (channels.count(v1::NOTIFICATION_CHANNEL_IN_APP) == 0) {
    set.mutable_preferences()->add_channels(v1::NOTIFICATION_CHANNEL_IN_APP);
  }
  if (p.time_zone().empty()) set.mutable_preferences()->set_time_zone("UTC");
  common::v1::EventEnvelope event = ServiceEvent(set, caller.tenant_id, clock_());
  *event.mutable_actor() = caller.actor;
  *event.mutable_trace() = caller.trace;
  const std::string aggregate_id =
      DerivedId({"preferences", caller.tenant_id, request.recipient_id()});
  eventstore::AppendRequest append;
  append.aggregate_id = aggregate_id;
  append.command_id = request.command_id();
  append.expected_version = request.expected_version() > 0
                                ? eventstore::ExpectedVersion::Exactly(request.expected_version())
                                : eventstore::ExpectedVersion::Any();
  append.events.push_back(event);
  auto result = append_(std::move(append));
  if (!result.ok()) return result.status();
  v1::SetPreferencesResponse response;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!result->duplicate) {
    event.set_aggregate_id(aggregate_id);
    ApplyLocked(event, result->last_version);
  }
  response.set_version(result->last_version);
  *response.mutable_position() = result->position;
  *response.mutable_preferences() =
      preferences_.at(RecipientKey(caller.tenant_id, request.recipient_id())).preferences;
  return response;
}

absl::StatusOr<v1::ListInboxResponse> NotificationEngine::ListInbox(
    const grpcx::Caller& caller, const v1::ListInboxRequest& request) const {
  grpcx::Violations violations;
  if (request.recipient_id().empty()) violations.Add("recipient_id", "required");
  if (request.page_size() < 0 || request.page_size() > kMaxPageSize) {
    violations.Add("page_size", absl::StrCat("must be between 0 and ", kMaxPageSize));
  }
  if (!violations.empty()) return violations.ToStatus();
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
  v1::MarkReadResponse response;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = notifications_.find(request.notification_id());
    if (it != notifications_.end() && it->second.tenant_id() != caller.tenant_id) {
      return grpcx::NotFoundInTenant("notification");
    }
    if (it == notifications_.end() || it->second.recipient_id() != request.recipient_id()) {
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
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = notifications_.find(request.notification_id());
    if (it != notifications_.end() && it->second.tenant_id() != caller.tenant_id) {
      return grpcx::NotFoundInTenant("notification");
    }
    if (it == notifications_.end() || it->second.recipient_id() != request.recipient_id()) {
      return absl::NotFoundError("notification not found");
    }
    auto settings = SettingsLocked(caller.tenant_id, request.recipient_id());
    if (!settings.has_value() || settings->webhook_url.empty()) {
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

absl::Status NotificationEngine::CheckSubscribe(const grpcx::Caller& /*caller*/,
                                                const v1::SubscribeInboxRequest& request) const {
  grpcx::Violations violations;
  if (request.recipient_id().empty()) violations.Add("recipient_id", "required");
  return violations.ToStatus();
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
    const auto settings = SettingsLocked(n.tenant_id(), n.recipient_id());
    if (!settings.has_value() || settings->webhook_url.empty()) continue;  // webhook removed
    due = DueWebhook{FromMessage(n), settings->webhook_url, settings->webhook_secret,
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

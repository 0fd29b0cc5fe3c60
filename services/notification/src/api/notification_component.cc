#include "notification_component.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "clinical/eventstore/event_store.h"
#include "clinical/http/address_policy.h"
#include "clinical/http/client.h"
#include "clinical/eventstore/metrics.h"
#include "clinical/kafka/admin.h"
#include "clinical/relations/followed_directory.h"
#include "clinical/relations/kafka_follower.h"
#include "notification_engine.h"
#include "nlohmann/json.hpp"
#include "notification_grpc_service.h"
#include "webhook_sender.h"

namespace clinical::notification {
namespace {

// Runs `step` on its own thread until destroyed; `step` returns how long to wait before the
// next run (zero: at once). Destruction interrupts the wait and joins.
class BackgroundLoop {
 public:
  explicit BackgroundLoop(std::function<absl::Duration()> step) : step_(std::move(step)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~BackgroundLoop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
      lock.unlock();
      const absl::Duration wait = step_();
      lock.lock();
      if (wait > absl::ZeroDuration()) {
        wake_.wait_for(lock, absl::ToChronoMilliseconds(wait), [this] { return stop_; });
      }
    }
  }

  const std::function<absl::Duration()> step_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

// Nothing due: wake at the next due time, or poll for newly created work.
absl::Duration UntilNext(absl::Time next_due) {
  return std::clamp(next_due - absl::Now(), absl::Milliseconds(10), absl::Milliseconds(200));
}

// Sends due webhooks one at a time: one HTTPS attempt (bounded by `attempt.timeout`), then
// its outcome appended (delivered / failed with the next time / dead-lettered) before the
// next. A failed append (broker down) backs off a second before the same attempt again.
std::unique_ptr<BackgroundLoop> StartWebhookWorker(NotificationEngine& engine,
                                                   http::RequestOptions attempt,
                                                   logging::Logger& logger) {
  auto random = std::make_shared<std::mt19937_64>(std::random_device()());
  return std::make_unique<BackgroundLoop>([&engine, &logger, attempt = std::move(attempt),
                                           random] {
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    absl::Time next_due;
    auto due = engine.NextDueWebhook(absl::Now(), &next_due);
    if (!due.has_value()) return UntilNext(next_due);
    auto target = ParseWebhookUrl(due->webhook_url, due->webhook_secret);
    bool delivered = false;
    std::string reason = "bad_url";
    if (target.ok()) {
      auto code = PostWebhook(*target, due->notification.notification_id,
                              WebhookBody(due->notification, due->attempt),
                              absl::ToUnixSeconds(absl::Now()), attempt);
      reason = AttemptFailureReason(code);
      delivered = reason.empty();
    }
    absl::Status recorded = engine.RecordWebhookAttempt(*due, delivered,
                                                        delivered ? "" : reason, jitter(*random));
    if (recorded.ok()) return absl::ZeroDuration();
    logger.Warn("webhook outcome not recorded; will retry",
                {{"code", absl::StatusCodeToString(recorded.code())}});
    return absl::Seconds(1);
  });
}

// Fires due timers one at a time (their notifications, then TimerFired). A failed append
// backs off a second; the timer stays pending and is tried again.
std::unique_ptr<BackgroundLoop> StartTimerWorker(NotificationEngine& engine,
                                                 logging::Logger& logger) {
  return std::make_unique<BackgroundLoop>([&engine, &logger] {
    absl::Time next_due;
    auto timer = engine.NextDueTimer(absl::Now(), &next_due);
    if (!timer.has_value()) return UntilNext(next_due);
    absl::Status fired = engine.FireTimer(*timer);
    if (fired.ok()) return absl::ZeroDuration();
    logger.Warn("timer not fired; will retry", {{"timer_id", timer->timer_id},
                                               {"code", absl::StatusCodeToString(fired.code())}});
    return absl::Seconds(1);
  });
}

// A deployment file holding one JSON object; the message says what is wrong, not the content.
absl::StatusOr<nlohmann::json> ReadJsonObject(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError("cannot read the file");
  std::stringstream text;
  text << in.rdbuf();
  auto json = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError("not a JSON object");
  }
  return json;
}

// Webhook endpoints per tenant: {"<tenant>": {"<endpoint id>": {"url": "...",
// "secret_file": "/run/secrets/x"} or {"url": "...", "secret_env": "NAME"}}}. The file holds
// no secret itself, only where the deployment keeps it. Errors name the entry, never a value.
absl::StatusOr<std::map<std::string, WebhookEndpoint>> LoadEndpoints(const std::string& path) {
  std::map<std::string, WebhookEndpoint> out;
  if (path.empty()) return out;
  auto bad = [](const std::string& where) {
    return absl::InvalidArgumentError("config key 'webhook-endpoints-file': " + where);
  };
  auto json = ReadJsonObject(path);
  if (!json.ok()) return bad(std::string(json.status().message()));
  for (const auto& [tenant, endpoints] : json->items()) {
    if (!endpoints.is_object()) return bad(tenant + ": not an object");
    for (const auto& [id, j] : endpoints.items()) {
      const std::string where = tenant + "." + id;
      if (!j.is_object() || !j.contains("url") || !j["url"].is_string()) {
        return bad(where + ".url: required");
      }
      WebhookEndpoint endpoint;
      endpoint.url = j["url"].get<std::string>();
      if (auto url = ParseWebhookUrl(endpoint.url, ""); !url.ok()) {
        return bad(where + ".url: invalid (" + std::string(url.status().message()) + ")");
      }
      if (j.contains("secret_file") == j.contains("secret_env")) {
        return bad(where + ": exactly one of secret_file, secret_env");
      }
      if (j.contains("secret_file")) {
        std::ifstream secret(j.value("secret_file", ""));
        if (!secret) return bad(where + ".secret_file: cannot read");
        std::getline(secret, endpoint.secret);
      } else {
        const char* value = std::getenv(j.value("secret_env", "").c_str());
        if (value != nullptr) endpoint.secret = value;
      }
      if (endpoint.secret.empty()) return bad(where + ": the secret is empty or missing");
      out[NotificationEngine::RecipientKey(tenant, id)] = std::move(endpoint);
    }
  }
  return out;
}

absl::StatusOr<std::map<std::string, RecipientSettings>> LoadRecipients(const std::string& path) {
  std::map<std::string, RecipientSettings> out;
  if (path.empty()) return out;
  auto bad = [](const std::string& where) {
    return absl::InvalidArgumentError("config key 'recipients-file': " + where);
  };
  auto json = ReadJsonObject(path);
  if (!json.ok()) return bad(std::string(json.status().message()));
  for (const auto& [tenant, recipients] : json->items()) {
    if (!recipients.is_object()) return bad(tenant + ": not an object");
    for (const auto& [recipient, j] : recipients.items()) {
      const std::string where = tenant + "." + recipient;
      if (!j.is_object()) return bad(where + ": not an object");
      RecipientSettings s;
      s.webhook_url = j.value("webhook_url", "");
      s.webhook_secret = j.value("webhook_secret", "");
      if (!s.webhook_url.empty()) {
        if (auto url = ParseWebhookUrl(s.webhook_url, ""); !url.ok()) {
          return bad(where + ".webhook_url: invalid (" + std::string(url.status().message()) +
                     ")");
        }
        if (s.webhook_secret.empty()) return bad(where + ".webhook_secret: required");
      }
      s.preferences.time_zone = j.value("time_zone", "UTC");
      absl::TimeZone zone;
      if (!absl::LoadTimeZone(s.preferences.time_zone, &zone)) {
        return bad(where + ".time_zone: unknown");
      }
      s.preferences.quiet_start_minute = j.value("quiet_start_minute", 0);
      s.preferences.quiet_end_minute = j.value("quiet_end_minute", 0);
      if (s.preferences.quiet_start_minute < 0 || s.preferences.quiet_start_minute >= 1440 ||
          s.preferences.quiet_end_minute < 0 || s.preferences.quiet_end_minute >= 1440) {
        return bad(where + ": quiet minutes must be in [0, 1440)");
      }
      if (j.contains("opted_out") && j["opted_out"].is_array()) {
        for (const auto& t : j["opted_out"]) {
          if (t.is_string()) s.preferences.opted_out_types.insert(t.get<std::string>());
        }
      }
      out[NotificationEngine::RecipientKey(tenant, recipient)] = std::move(s);
    }
  }
  return out;
}

struct Runtime {
  // Declared first, destroyed last: the engine asks it for privacy officers and supervisors.
  std::unique_ptr<relations::FollowedDirectory> organisation;
  std::unique_ptr<eventstore::EventStore> store;
  std::unique_ptr<NotificationEngine> engine;
  std::unique_ptr<NotificationGrpcService> service;
  // The case and scheduling topics, whose events the rules react to.
  std::vector<std::unique_ptr<relations::KafkaFollower>> followers;
  std::unique_ptr<BackgroundLoop> webhooks;
  std::unique_ptr<BackgroundLoop> timers;
};

// How webhook attempts connect: the attempt timeout, the CAs that verify receivers and the
// address policy (docs/notification-service.md, "Webhooks"). Checked before anything else
// starts, so a typo stops the service with a message naming the key.
absl::StatusOr<http::RequestOptions> WebhookRequestOptions(const config::Config& config) {
  http::RequestOptions options;
  options.timeout = config.GetDuration("webhook-timeout");
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("config key 'webhook-timeout' must be positive");
  }
  options.ca_file = config.GetString("webhook-ca-file");
  if (!options.ca_file.empty()) {
    if (absl::Status ca = http::ValidateCaFile(options.ca_file); !ca.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("config key 'webhook-ca-file': ", std::string(ca.message())));
    }
  }
  auto policy = http::ParseAllowList(config.GetString("webhook-allow"));
  if (!policy.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config key 'webhook-allow': ", std::string(policy.status().message())));
  }
  options.policy = *std::move(policy);
  return options;
}

absl::StatusOr<RuleBook> LoadRules(const std::string& path) {
  if (path.empty()) return DefaultRuleBook();
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError("config key 'rules-file': cannot read the file");
  std::stringstream text;
  text << in.rdbuf();
  return ParseRuleBook(text.str());
}

absl::StatusOr<std::function<void()>> Setup(const config::Config& config,
                                            grpcx::ServiceHost& host, logging::Logger& logger) {
  auto cluster = kafka::ClusterFromConfig(config, "notification");
  if (!cluster.ok()) return cluster.status();
  const std::string topic = config.GetString("notification-topic");
  const absl::Duration max_age = config.GetDuration("max-event-age");
  if (max_age <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("config key 'max-event-age' must be positive");
  }
  auto rules = LoadRules(config.GetString("rules-file"));
  if (!rules.ok()) return rules.status();
  auto webhook_options = WebhookRequestOptions(config);
  if (!webhook_options.ok()) return webhook_options.status();
  const absl::Duration timeout = config.GetDuration("kafka-timeout");
  const absl::Time started = absl::Now();

  kafka::TopicSpec spec;
  spec.name = topic;
  spec.partitions = static_cast<int>(config.GetInt("notification-topic-partitions"));
  if (absl::Status ensured = kafka::EnsureTopics(*cluster, {spec}, timeout); !ensured.ok()) {
    return ensured;
  }

  auto runtime = std::make_shared<Runtime>();
  eventstore::StoreOptions options;
  options.cluster = *cluster;
  options.topic = topic;
  options.aggregate_type = "notification";
  options.writer_id = config.GetString("writer-id");
  options.max_batch_wait = config.GetDuration("group-commit-wait");
  options.kafka_timeout = timeout;
  auto store = eventstore::EventStore::Open(options, logger);
  if (!store.ok()) return store.status();
  runtime->store = std::move(*store);
  if (absl::Status acquired = runtime->store->Acquire(); !acquired.ok()) return acquired;

  auto recipients = LoadRecipients(config.GetString("recipients-file"));
  if (!recipients.ok()) return recipients.status();
  auto endpoints = LoadEndpoints(config.GetString("webhook-endpoints-file"));
  if (!endpoints.ok()) return endpoints.status();
  EngineOptions engine_options;
  engine_options.recipients = *std::move(recipients);
  engine_options.endpoints = *std::move(endpoints);
  engine_options.backoff.initial = config.GetDuration("webhook-initial-backoff");
  engine_options.backoff.max = config.GetDuration("webhook-max-backoff");
  engine_options.backoff.max_attempts = static_cast<int>(config.GetInt("webhook-max-attempts"));
  if (engine_options.backoff.initial <= absl::ZeroDuration() ||
      engine_options.backoff.max < engine_options.backoff.initial ||
      engine_options.backoff.max_attempts < 1) {
    return absl::InvalidArgumentError(
        "config keys 'webhook-initial-backoff', 'webhook-max-backoff', 'webhook-max-attempts' "
        "must be positive with max >= initial");
  }
  // The organisation (privacy officers, teams) for the emergency-access rule.
  relations::FollowedDirectory::Options follow;
  follow.cluster = *cluster;
  follow.organisation_topic = config.GetString("organisation-topic");
  follow.sync_timeout = config.GetDuration("organisation-sync-timeout");
  follow.name = "organisation";
  auto organisation = relations::FollowedDirectory::Start(std::move(follow), logger);
  if (!organisation.ok()) return organisation.status();
  runtime->organisation = std::move(*organisation);
  engine_options.organisation = [followed = runtime->organisation.get()](const std::string& tenant_id) {
    return followed->Organisation(tenant_id);
  };
  engine_options.rules = *std::move(rules);
  engine_options.max_event_age = max_age;
  engine_options.topic = topic;
  eventstore::EventStore* store_raw = runtime->store.get();
  runtime->engine = std::make_unique<NotificationEngine>(
      [store_raw](eventstore::AppendRequest request) {
        return store_raw->Append(std::move(request));
      },
      std::move(engine_options), [] { return absl::Now(); }, logger);
  int64_t events = 0;
  absl::Status replay_error;
  absl::Status read = eventstore::ReadLog(
      *cluster, topic, eventstore::ReplayStart{},
      [&](const eventstore::LoggedEvent& logged) {
        replay_error = runtime->engine->Replay(logged);
        ++events;
        return replay_error.ok();
      },
      config.GetDuration("replay-timeout"));
  if (!read.ok()) return read;
  if (!replay_error.ok()) return replay_error;
  runtime->engine->FinishReplay();
  logger.Info("replayed", {{"topic", topic},
                           {"events", events},
                           {"notifications", static_cast<int64_t>(runtime->engine->notification_count())},
                           {"ms", absl::ToInt64Milliseconds(absl::Now() - started)}});

  runtime->service = std::make_unique<NotificationGrpcService>(*runtime->engine, host.callers());
  host.AddService(runtime->service.get());
  // The collector holds `runtime`, so the store outlives every scrape.
  host.metrics().AddCollector(
      [runtime, collect = eventstore::StoreMetrics(*runtime->store, topic)](metrics::Sink& sink) {
        collect(sink);
        // Consume lag of the followed topics (the followers are all added during setup,
        // before the first scrape).
        for (const auto& follower : runtime->followers) follower->CollectLag(sink, "source-reader");
        runtime->organisation->follower().CollectLag(sink, "organisation");
        const NotificationEngine::TimerStats timers = runtime->engine->timer_stats();
        sink.Gauge("clinical_notification_timers_pending",
                   "Due-time timers (task overdue, escalation, no contact) not yet fired.", {},
                   static_cast<double>(timers.pending));
        sink.Gauge("clinical_notification_timers_armed",
                   "1 once the case topic has been re-read and timers may fire.", {},
                   timers.armed ? 1.0 : 0.0);
        // How late the earliest pending timer is: grows when firing is stuck (broker down).
        const absl::Duration late = absl::Now() - timers.earliest_due;
        sink.Gauge("clinical_notification_timer_late_seconds",
                   "Seconds the earliest pending timer is past its due time (0 if none).", {},
                   timers.pending > 0 && late > absl::ZeroDuration()
                       ? absl::ToDoubleSeconds(late)
                       : 0.0);
        sink.Counter("clinical_notification_timers_fired_total",
                     "Timers fired by this process.", {},
                     static_cast<double>(timers.fired_here));
      });
  const std::string case_topic = config.GetString("case-topic");
  for (const std::string& name : {case_topic, config.GetString("scheduling-topic")}) {
    std::function<void()> caught_up;
    if (name == case_topic) {
      // Timers wait for the case topic's re-read: a task finished while the service was
      // down must cancel its timer before the timer could fire.
      caught_up = [engine = runtime->engine.get(), &logger, name = name] {
        engine->SetTimersReady();
        logger.Info("source topic read to its end; timers armed",
                    {{"topic", name},
                     {"pending_timers", static_cast<int64_t>(engine->pending_timer_count())}});
      };
    }
    // One follower per topic: the case topic's catch-up arms the timers whether or not the
    // scheduling topic exists yet. Each event is handed to the engine until it succeeds
    // (UNAVAILABLE: retried with backoff); re-reads after a restart append nothing.
    relations::KafkaFollower::Options source;
    source.cluster = *cluster;
    source.topics = {name};
    source.name = "source-reader";
    source.caught_up = std::move(caught_up);
    auto follower = relations::KafkaFollower::Start(
        std::move(source),
        [engine = runtime->engine.get()](const std::string& /*topic*/, const common::v1::EventEnvelope& envelope) {
          return engine->OnSourceEvent(envelope);
        },
        logger);
    if (!follower.ok()) return follower.status();
    runtime->followers.push_back(std::move(*follower));
  }
  runtime->webhooks = StartWebhookWorker(*runtime->engine, *std::move(webhook_options), logger);
  runtime->timers = StartTimerWorker(*runtime->engine, logger);
  return std::function<void()>([runtime, &logger] {
    runtime->timers.reset();
    runtime->webhooks.reset();
    runtime->engine->Stop();
    runtime->followers.clear();
    runtime->organisation.reset();
    const eventstore::StoreStats stats = runtime->store->Stats();
    runtime->store->Release();
    logger.Info("event store released", {{"appends_committed", stats.appends_committed},
                                         {"appends_duplicate", stats.appends_duplicate},
                                         {"notifications_created_here",
                                          runtime->engine->created_count()}});
  });
}

}  // namespace

grpcx::ServiceSpec NotificationServiceSpec() {
  using config::OptionType;
  grpcx::ServiceSpec spec;
  spec.name = "notification";
  spec.default_port = 50054;
  spec.extra_options = kafka::ClusterOptions();
  spec.extra_options.insert(spec.extra_options.end(), {
      {"notification-topic", OptionType::kString, "clinical.notification.events.v1",
       "the notification event topic (written here)"},
      {"notification-topic-partitions", OptionType::kInt, "12",
       "partitions of the notification topic when it is created (fixed afterwards)"},
      {"case-topic", OptionType::kString, "clinical.case.events.v1",
       "the case event topic (read only)"},
      {"scheduling-topic", OptionType::kString, "clinical.scheduling.events.v1",
       "the scheduling event topic (read only)"},
      {"organisation-topic", OptionType::kString, "clinical.case.organisation.v1",
       "the case service's organisation topic: privacy officers and team supervisors for "
       "emergency-access notifications (read only)"},
      {"organisation-sync-timeout", OptionType::kDuration, "5s",
       "how long an emergency-access notification waits for the organisation topic's reader"},
      {"writer-id", OptionType::kString, "notification-service",
       "stable writer name; partition N is written with transactional.id <writer-id>.p<N>"},
      {"group-commit-wait", OptionType::kDuration, "2ms",
       "how long a transaction waits for more appends to share it"},
      {"kafka-timeout", OptionType::kDuration, "30s", "bound on each broker operation"},
      {"replay-timeout", OptionType::kDuration, "120s", "bound on the startup replay"},
      {"max-event-age", OptionType::kDuration, "24h",
       "source events older than this update routing only and notify nobody"},
      {"recipients-file", OptionType::kString, "",
       "JSON per tenant and recipient: webhook_url, webhook_secret, time_zone, quiet hours, "
       "opted_out types (docs/notification-service.md); empty = in-app only"},
      {"webhook-initial-backoff", OptionType::kDuration, "1s", "first webhook retry step"},
      {"webhook-max-backoff", OptionType::kDuration, "5m", "largest webhook retry step"},
      {"webhook-max-attempts", OptionType::kInt, "6", "webhook attempts before dead-letter"},
      {"webhook-timeout", OptionType::kDuration, "10s",
       "bound on one webhook attempt: DNS, connect, TLS and the exchange"},
      {"webhook-ca-file", OptionType::kString, "",
       "PEM bundle of the CAs that verify webhook receivers (only these); empty = the "
       "system CAs"},
      {"webhook-allow", OptionType::kString, "",
       "comma-separated host:port entries and CIDR blocks that webhooks may reach although "
       "they are loopback, link-local or cloud metadata addresses; empty = none"},
      {"webhook-endpoints-file", OptionType::kString, "",
       "JSON per tenant and endpoint id: url and secret_file or secret_env (the secret's "
       "location, never the secret); preferences name endpoints by id"},
      {"rules-file", OptionType::kString, "",
       "JSON rule book (docs/notification-service.md); empty = the built-in rules"},
  });
  spec.setup = Setup;
  return spec;
}

}  // namespace clinical::notification

#include "scheduling_component.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "clinical/eventstore/event_store.h"
#include "clinical/eventstore/metrics.h"
#include "clinical/kafka/admin.h"
#include "scheduling_engine.h"
#include "scheduling_grpc_service.h"
#include "scheduling_relations.h"

namespace clinical::scheduling {
namespace {

// Ids: random (version 4) UUIDs, never derived from patient data.
class UuidGenerator {
 public:
  UuidGenerator() : random_(std::random_device()()) {}
  std::string Next() {
    std::lock_guard<std::mutex> lock(mutex_);
    const uint64_t high = (random_() & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
    const uint64_t low = (random_() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
    return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", high >> 32, (high >> 16) & 0xffff,
                           high & 0xffff, low >> 48, low & 0xffffffffffffULL);
  }

 private:
  std::mutex mutex_;
  std::mt19937_64 random_;
};

// Runs the reminder sweep every `interval` on its own thread until stopped.
class ReminderScheduler {
 public:
  ReminderScheduler(SchedulingEngine& engine, std::vector<absl::Duration> offsets,
                    absl::Duration interval, logging::Logger& logger)
      : engine_(engine), offsets_(std::move(offsets)), interval_(interval), logger_(logger) {
    thread_ = std::thread([this] { Run(); });
  }
  ~ReminderScheduler() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  void Run() {
    bool first = true;
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
      lock.unlock();
      auto emitted = engine_.EmitDueReminders(offsets_);
      if (!emitted.ok()) {
        logger_.Warn("reminder sweep failed", {{"code", absl::StatusCodeToString(emitted.status().code())}});
      } else if (first) {
        // Tests and operators learn here that the scheduler has run once since start.
        logger_.Info("reminder scheduler running", {{"emitted", *emitted}});
        first = false;
      } else if (*emitted > 0) {
        logger_.Info("reminders emitted", {{"emitted", *emitted}});
      }
      lock.lock();
      wake_.wait_for(lock, absl::ToChronoMilliseconds(interval_), [this] { return stop_; });
    }
  }

  SchedulingEngine& engine_;
  const std::vector<absl::Duration> offsets_;
  const absl::Duration interval_;
  logging::Logger& logger_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

struct Runtime {
  UuidGenerator uuids;
  std::unique_ptr<eventstore::EventStore> store;
  std::unique_ptr<EventStoreLog> log;
  std::unique_ptr<relations::FollowedDirectory> followed;
  std::unique_ptr<FollowedCaseDirectory> cases;
  std::unique_ptr<SchedulingEngine> engine;
  std::unique_ptr<SchedulingRelations> relations;
  std::unique_ptr<SchedulingGrpcService> service;
  std::unique_ptr<ReminderScheduler> reminders;
};

absl::StatusOr<std::vector<absl::Duration>> ParseOffsets(const std::string& text) {
  std::vector<absl::Duration> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    absl::Duration d;
    if (!absl::ParseDuration(std::string(absl::StripAsciiWhitespace(part)), &d) ||
        d <= absl::ZeroDuration() || d > absl::Hours(24 * 14)) {
      return absl::InvalidArgumentError(
          "config key 'reminder-offsets' must be a comma-separated list of durations in (0, 336h]");
    }
    out.push_back(d);
  }
  return out;
}

absl::StatusOr<std::function<void()>> Setup(const config::Config& config, grpcx::ServiceHost& host,
                                            logging::Logger& logger) {
  auto cluster = kafka::ClusterFromConfig(config, "scheduling");
  if (!cluster.ok()) return cluster.status();
  const std::string topic = config.GetString("scheduling-topic");
  const std::string case_topic = config.GetString("case-topic");
  auto offsets = ParseOffsets(config.GetString("reminder-offsets"));
  if (!offsets.ok()) return offsets.status();
  const absl::Duration timeout = config.GetDuration("kafka-timeout");
  const absl::Time started = absl::Now();

  kafka::TopicSpec spec;
  spec.name = topic;
  spec.partitions = static_cast<int>(config.GetInt("scheduling-topic-partitions"));
  if (absl::Status ensured = kafka::EnsureTopics(*cluster, {spec}, timeout); !ensured.ok()) {
    return ensured;
  }

  auto runtime = std::make_shared<Runtime>();
  eventstore::StoreOptions options;
  options.cluster = *cluster;
  options.topic = topic;
  // One store stamps one aggregate type; calendars and appointments share it and are told
  // apart by their event types (docs/scheduling-service.md).
  options.aggregate_type = "scheduling";
  options.writer_id = config.GetString("writer-id");
  options.max_batch_wait = config.GetDuration("group-commit-wait");
  options.kafka_timeout = timeout;
  auto store = eventstore::EventStore::Open(options, logger);
  if (!store.ok()) return store.status();
  runtime->store = std::move(*store);
  if (absl::Status acquired = runtime->store->Acquire(); !acquired.ok()) return acquired;
  runtime->log = std::make_unique<EventStoreLog>(*runtime->store);

  // The case service's topics: cases (status, team, assignment, care team, grants) for
  // booking and for the access decisions, the organisation for team supervision.
  relations::FollowedDirectory::Options follow;
  follow.cluster = *cluster;
  follow.case_topic = case_topic;
  follow.organisation_topic = config.GetString("organisation-topic");
  follow.sync_timeout = config.GetDuration("case-sync-timeout");
  follow.name = "case-directory";
  auto followed = relations::FollowedDirectory::Start(std::move(follow), logger);
  if (!followed.ok()) return followed.status();
  runtime->followed = std::move(*followed);
  runtime->cases = std::make_unique<FollowedCaseDirectory>(*runtime->followed);

  Runtime* raw = runtime.get();
  runtime->engine = std::make_unique<SchedulingEngine>(
      *runtime->log, *runtime->cases, topic, [] { return absl::Now(); },
      [raw] { return raw->uuids.Next(); });
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
  logger.Info("replayed", {{"topic", topic},
                           {"events", events},
                           {"calendars", runtime->engine->calendar_count()},
                           {"appointments", runtime->engine->appointment_count()},
                           {"ms", absl::ToInt64Milliseconds(absl::Now() - started)}});

  runtime->relations = std::make_unique<SchedulingRelations>(runtime->followed->directory(), *runtime->engine);
  host.SetRelations(runtime->relations.get());
  runtime->service = std::make_unique<SchedulingGrpcService>(*runtime->engine, host.callers());
  host.AddService(runtime->service.get());
  // The collector holds `runtime`, so the store outlives every scrape.
  host.metrics().AddCollector(
      [runtime, collect = eventstore::StoreMetrics(*runtime->store, topic)](metrics::Sink& sink) {
        collect(sink);
        runtime->followed->follower().CollectLag(sink, "case-directory");
        sink.Gauge("clinical_reader_entities", "Entities a reader keeps in memory.",
                   {{"reader", "case-directory"}, {"topic", runtime->followed->options().case_topic}},
                   static_cast<double>(runtime->followed->directory().case_count()));
      });
  runtime->reminders = std::make_unique<ReminderScheduler>(
      *runtime->engine, *offsets, config.GetDuration("reminder-interval"), logger);
  return std::function<void()>([runtime, &logger] {
    runtime->reminders.reset();
    // The gRPC server has stopped: nothing asks the follower any more.
    runtime->followed.reset();
    const eventstore::StoreStats stats = runtime->store->Stats();
    runtime->store->Release();
    logger.Info("event store released", {{"appends_committed", stats.appends_committed},
                                         {"appends_duplicate", stats.appends_duplicate},
                                         {"transactions", stats.transactions_committed}});
  });
}

}  // namespace

grpcx::ServiceSpec SchedulingServiceSpec() {
  using config::OptionType;
  grpcx::ServiceSpec spec;
  spec.name = "scheduling";
  spec.default_port = 50052;
  spec.extra_options = kafka::ClusterOptions();
  spec.extra_options.insert(spec.extra_options.end(), {
      {"scheduling-topic", OptionType::kString, "clinical.scheduling.events.v1",
       "the scheduling event topic"},
      {"scheduling-topic-partitions", OptionType::kInt, "12",
       "partitions of the scheduling topic when it is created (fixed afterwards)"},
      {"case-topic", OptionType::kString, "clinical.case.events.v1",
       "the case event topic (read only)"},
      {"organisation-topic", OptionType::kString, "clinical.case.organisation.v1",
       "the case service's organisation topic: teams and supervisors (read only)"},
      {"writer-id", OptionType::kString, "scheduling-service",
       "stable writer name; partition N is written with transactional.id <writer-id>.p<N>"},
      {"group-commit-wait", OptionType::kDuration, "2ms",
       "how long a transaction waits for more appends to share it"},
      {"kafka-timeout", OptionType::kDuration, "30s", "bound on each broker operation"},
      {"replay-timeout", OptionType::kDuration, "120s", "bound on the startup replay"},
      {"case-sync-timeout", OptionType::kDuration, "5s",
       "how long a booking or an access decision waits for the case and organisation topics' reader to be up to date"},
      {"reminder-offsets", OptionType::kString, "24h,1h",
       "when reminders are due before an appointment (comma-separated durations)"},
      {"reminder-interval", OptionType::kDuration, "5s", "how often due reminders are looked for"},
  });
  spec.setup = Setup;
  return spec;
}

}  // namespace clinical::scheduling

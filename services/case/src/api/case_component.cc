#include "case_component.h"

#include <memory>
#include <mutex>
#include <random>

#include "absl/strings/str_format.h"
#include "case_engine.h"
#include "case_grpc_service.h"
#include "clinical/relations/directory.h"
#include "organisation_engine.h"
#include "clinical/eventstore/event_store.h"
#include "clinical/eventstore/metrics.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/cluster.h"
#include "programs.h"

namespace clinical::case_service {
namespace {

// Case ids: random (version 4) UUIDs, never derived from patient data.
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

struct Runtime {
  ProgramCatalog programs;
  std::unique_ptr<eventstore::EventStore> store;
  std::unique_ptr<EventStoreLog> log;
  UuidGenerator uuids;
  std::unique_ptr<CaseEngine> engine;
  // The access decisions' facts, fed by both engines (declared before them: they hold it).
  std::unique_ptr<relations::Directory> directory;
  std::unique_ptr<eventstore::EventStore> organisation_store;
  std::unique_ptr<EventStoreLog> organisation_log;
  std::unique_ptr<OrganisationEngine> organisations;
  std::unique_ptr<CaseGrpcService> service;
};

absl::StatusOr<std::function<void()>> Setup(const config::Config& config, grpcx::ServiceHost& host,
                                            logging::Logger& logger) {
  auto cluster = kafka::ClusterFromConfig(config, "case");
  if (!cluster.ok()) return cluster.status();
  const std::string topic = config.GetString("case-topic");
  auto runtime = std::make_shared<Runtime>();
  auto programs = ProgramCatalog::Load(config.GetString("programs-file"));
  if (!programs.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("programs file (config key 'programs-file'): ", programs.status().message()));
  }
  runtime->programs = std::move(*programs);

  const absl::Time started = absl::Now();
  const std::string organisation_topic = config.GetString("organisation-topic");
  kafka::TopicSpec spec;
  spec.name = topic;
  spec.partitions = static_cast<int>(config.GetInt("case-topic-partitions"));
  // One organisation per tenant, few events: a few partitions are plenty.
  kafka::TopicSpec organisation_spec;
  organisation_spec.name = organisation_topic;
  organisation_spec.partitions = 3;
  const absl::Duration timeout = config.GetDuration("kafka-timeout");
  if (absl::Status ensured = kafka::EnsureTopics(*cluster, {spec, organisation_spec}, timeout); !ensured.ok()) {
    return ensured;
  }
  eventstore::StoreOptions options;
  options.cluster = *cluster;
  options.topic = topic;
  options.aggregate_type = "case";
  options.writer_id = config.GetString("writer-id");
  options.max_batch_wait = config.GetDuration("group-commit-wait");
  options.kafka_timeout = timeout;
  auto store = eventstore::EventStore::Open(options, logger);
  if (!store.ok()) return store.status();
  runtime->store = std::move(*store);
  // Owning the partitions fences any earlier writer first, so the replay below sees
  // everything that will ever be committed before this process appends.
  if (absl::Status acquired = runtime->store->Acquire(); !acquired.ok()) return acquired;

  eventstore::StoreOptions organisation_options = options;
  organisation_options.topic = organisation_topic;
  organisation_options.aggregate_type = "organisation";
  organisation_options.writer_id = config.GetString("writer-id") + "-organisation";
  auto organisation_store = eventstore::EventStore::Open(organisation_options, logger);
  if (!organisation_store.ok()) return organisation_store.status();
  runtime->organisation_store = std::move(*organisation_store);
  if (absl::Status acquired = runtime->organisation_store->Acquire(); !acquired.ok()) return acquired;

  // The case service writes every fact the directory folds, and folds each append before
  // the command returns: no catch-up needed.
  runtime->directory = std::make_unique<relations::Directory>();
  runtime->organisation_log = std::make_unique<EventStoreLog>(*runtime->organisation_store);
  runtime->organisations = std::make_unique<OrganisationEngine>(
      *runtime->organisation_log, organisation_topic, [] { return absl::Now(); }, *runtime->directory);
  int64_t organisation_events = 0;
  absl::Status organisation_error;
  absl::Status organisation_read = eventstore::ReadLog(
      *cluster, organisation_topic, eventstore::ReplayStart{},
      [&](const eventstore::LoggedEvent& logged) {
        organisation_error = runtime->organisations->Replay(logged);
        ++organisation_events;
        return organisation_error.ok();
      },
      config.GetDuration("replay-timeout"));
  if (!organisation_read.ok()) return organisation_read;
  if (!organisation_error.ok()) return organisation_error;

  runtime->log = std::make_unique<EventStoreLog>(*runtime->store);
  Runtime* raw = runtime.get();
  runtime->engine = std::make_unique<CaseEngine>(
      *runtime->log, runtime->programs, topic, [] { return absl::Now(); },
      [raw] { return raw->uuids.Next(); }, runtime->directory.get());
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
                           {"partitions", runtime->store->partition_count()},
                           {"events", events},
                           {"cases", runtime->engine->case_count()},
                           {"organisation_events", organisation_events},
                           {"organisations", runtime->organisations->organisation_count()},
                           {"programs", runtime->programs.size()},
                           {"ms", absl::ToInt64Milliseconds(absl::Now() - started)}});

  host.SetRelations(runtime->directory.get());
  runtime->service = std::make_unique<CaseGrpcService>(*runtime->engine, *runtime->organisations, host.callers());
  host.AddService(runtime->service.get());
  // The collector holds `runtime`, so the store outlives every scrape.
  host.metrics().AddCollector(
      [runtime, collect = eventstore::StoreMetrics(*runtime->store, topic),
       organisation = eventstore::StoreMetrics(*runtime->organisation_store, organisation_topic)](
          metrics::Sink& sink) {
        collect(sink);
        organisation(sink);
      });
  return std::function<void()>([runtime, &logger] {
    const eventstore::StoreStats stats = runtime->store->Stats();
    runtime->store->Release();
    runtime->organisation_store->Release();
    logger.Info("event store released", {{"appends_committed", stats.appends_committed},
                                         {"appends_duplicate", stats.appends_duplicate},
                                         {"transactions", stats.transactions_committed}});
  });
}

}  // namespace

grpcx::ServiceSpec CaseServiceSpec() {
  using config::OptionType;
  grpcx::ServiceSpec spec;
  spec.name = "case";
  spec.default_port = 50051;
  spec.extra_options = kafka::ClusterOptions();
  spec.extra_options.insert(spec.extra_options.end(), {
      {"case-topic", OptionType::kString, "clinical.case.events.v1", "the case event topic"},
      {"case-topic-partitions", OptionType::kInt, "12",
       "partitions of the case topic when it is created (fixed afterwards)"},
      {"organisation-topic", OptionType::kString, "clinical.case.organisation.v1",
       "the organisation event topic (teams, privacy officers; one aggregate per tenant)"},
      {"writer-id", OptionType::kString, "case-service",
       "stable writer name; partition N is written with transactional.id <writer-id>.p<N> "
       "(the organisation topic's with <writer-id>-organisation)"},
      {"programs-file", OptionType::kString, CLINICAL_CASE_DEFAULT_PROGRAMS_FILE,
       "JSON file with each tenant's programs and rules"},
      {"group-commit-wait", OptionType::kDuration, "2ms",
       "how long a transaction waits for more appends to share it"},
      {"kafka-timeout", OptionType::kDuration, "30s", "bound on each broker operation"},
      {"replay-timeout", OptionType::kDuration, "120s", "bound on the startup replay"},
  });
  spec.setup = Setup;
  return spec;
}

}  // namespace clinical::case_service

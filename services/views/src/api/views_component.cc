#include "views_component.h"

#include <memory>

#include "clinical/kafka/admin.h"
#include "clinical/projection/projection.h"
#include "clinical/projection/metrics.h"
#include "view_model.h"
#include "views_grpc_service.h"

namespace clinical::views {
namespace {

struct Runtime {
  std::unique_ptr<CaseViewModel> model;
  std::unique_ptr<projection::Projection> projection;
  std::unique_ptr<ViewsGrpcService> service;
};

absl::StatusOr<std::function<void()>> Setup(const config::Config& config, grpcx::ServiceHost& host,
                                            logging::Logger& logger) {
  const std::string bootstrap = config.GetString("kafka-bootstrap");
  if (bootstrap.empty()) {
    return absl::InvalidArgumentError(
        "config key 'kafka-bootstrap' (CLINICAL_KAFKA_BOOTSTRAP) is required");
  }
  const std::string topic = config.GetString("case-topic");
  const int redis_port = static_cast<int>(config.GetInt("redis-port"));
  if (redis_port <= 0 || redis_port > 65535) {
    return absl::InvalidArgumentError("config key 'redis-port' must be a port number");
  }
  auto thresholds = ParseThresholds(config.GetString("contact-thresholds"));
  if (!thresholds.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config key 'contact-thresholds': ", thresholds.status().message()));
  }
  auto limits = LoadCaseloadLimits(config.GetString("programs-file"));
  if (!limits.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config key 'programs-file': ", limits.status().message()));
  }
  const int default_threshold = static_cast<int>(config.GetInt("contact-threshold-days"));
  if (default_threshold < 0) {
    return absl::InvalidArgumentError("config key 'contact-threshold-days' must be >= 0");
  }

  // The case topic may not exist yet (the views can start before the case service): create
  // it with the case service's documented spec. Idempotent; refuses a topic with another
  // partition count (FAILED_PRECONDITION), which would be a misconfiguration.
  kafka::TopicSpec spec;
  spec.name = topic;
  spec.partitions = static_cast<int>(config.GetInt("case-topic-partitions"));
  if (auto s = kafka::EnsureTopics(bootstrap, {spec}, config.GetDuration("kafka-timeout")); !s.ok()) {
    return s;
  }

  auto runtime = std::make_shared<Runtime>();
  runtime->model = std::make_unique<CaseViewModel>(topic);
  projection::ProjectionOptions options;
  options.kafka_bootstrap = bootstrap;
  options.redis_host = config.GetString("redis-host");
  options.redis_port = redis_port;
  options.root = config.GetString("view-root");
  options.version = config.GetString("view-version");
  options.activate_when_caught_up = true;
  options.kafka_timeout = config.GetDuration("kafka-timeout");
  auto created = projection::Projection::Create(options, *runtime->model, logger);
  if (!created.ok()) return created.status();
  runtime->projection = std::move(*created);

  QueryOptions query;
  query.root = options.root;
  query.case_topic = topic;
  query.redis_host = options.redis_host;
  query.redis_port = redis_port;
  query.max_position_wait = config.GetDuration("max-position-wait");
  query.default_contact_threshold_days = default_threshold;
  query.contact_threshold_days = std::move(*thresholds);
  query.caseload_limits = std::move(*limits);
  runtime->service =
      std::make_unique<ViewsGrpcService>(std::move(query), runtime->projection.get());
  host.AddService(runtime->service.get());
  // Lag per partition, dead letters, errors; the collector holds `runtime`, so the
  // projection outlives every scrape.
  host.metrics().AddCollector(
      [runtime, collect = projection::ProjectionMetrics(*runtime->projection, options.root)](
          metrics::Sink& sink) { collect(sink); });
  runtime->projection->Start();
  logger.Info("projection started", {{"topic", topic},
                                     {"root", options.root},
                                     {"version", options.version}});
  return std::function<void()>([runtime, &logger] {
    runtime->projection->Stop();
    const projection::ProjectionStats stats = runtime->projection->Stats();
    logger.Info("projection stopped", {{"events_applied", stats.events_applied},
                                       {"dead_lettered", stats.dead_lettered},
                                       {"batches", stats.batches}});
  });
}

}  // namespace

grpcx::ServiceSpec ViewsServiceSpec() {
  using config::OptionType;
  grpcx::ServiceSpec spec;
  spec.name = "views";
  spec.default_port = 50055;
  spec.extra_options = {
      {"kafka-bootstrap", OptionType::kString, "", "Kafka bootstrap servers (required)"},
      {"redis-host", OptionType::kString, "127.0.0.1", "Redis host of the views"},
      {"redis-port", OptionType::kInt, "6379", "Redis port of the views"},
      {"case-topic", OptionType::kString, "clinical.case.events.v1", "the case event topic"},
      {"case-topic-partitions", OptionType::kInt, "12",
       "partitions of the case topic if the views create it (must match the case service)"},
      {"view-root", OptionType::kString, "views", "Redis key root of the views"},
      {"view-version", OptionType::kString, "v1",
       "version this process builds; a new one rebuilds from offset 0 and becomes active once "
       "caught up"},
      {"max-position-wait", OptionType::kDuration, "10s",
       "longest a query waits for a requested log position"},
      {"contact-threshold-days", OptionType::kInt, "14",
       "days without contact after which a case is flagged"},
      {"contact-thresholds", OptionType::kString, "",
       "per-program thresholds, 'program=days,program=days'"},
      {"programs-file", OptionType::kString, CLINICAL_VIEWS_DEFAULT_PROGRAMS_FILE,
       "the case service's programs file (caseload limits for balancing)"},
      {"kafka-timeout", OptionType::kDuration, "30s", "bound on each broker operation"},
  };
  spec.setup = Setup;
  return spec;
}

}  // namespace clinical::views

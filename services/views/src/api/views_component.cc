#include "views_component.h"

#include <map>
#include <memory>
#include <thread>

#include "absl/synchronization/mutex.h"

#include "clinical/kafka/cluster.h"
#include "clinical/relations/followed_directory.h"
#include "clinical/projection/projection.h"
#include "clinical/projection/metrics.h"
#include "clinical/redis/options.h"
#include "view_model.h"
#include "views_grpc_service.h"

namespace clinical::views {
namespace {

struct Runtime {
  // Team supervision for the access decisions (GetCaseload/GetWorklist: SUPERVISES).
  std::unique_ptr<relations::FollowedDirectory> organisation;
  std::unique_ptr<CaseViewModel> model;
  std::unique_ptr<projection::Projection> projection;
  std::unique_ptr<ViewsGrpcService> service;
  // Readiness: the watcher polls the runtime until it has caught up, then marks the host
  // ready; stopped (and joined) before the projection stops.
  absl::Mutex mutex;
  bool stopping ABSL_GUARDED_BY(mutex) = false;
  std::thread readiness;

  void StopReadiness() {
    {
      absl::MutexLock lock(&mutex);
      stopping = true;
    }
    if (readiness.joinable()) readiness.join();
  }
  ~Runtime() { StopReadiness(); }
};

// Ready = every partition of both topics has been read to its end at least once since start
// (lag 0 observed: Stats().caught_up) and this runtime's version is the active one (it
// activates itself once caught up and not behind), so a query without positions already
// sees everything written before the process started. Pure.
bool Ready(const projection::ProjectionStats& stats) {
  return stats.status.ok() && !stats.partitions.empty() && stats.caught_up && stats.active;
}

absl::StatusOr<std::function<void()>> Setup(const config::Config& config, grpcx::ServiceHost& host,
                                            logging::Logger& logger) {
  auto cluster = kafka::ClusterFromConfig(config, "views");
  if (!cluster.ok()) return cluster.status();
  auto redis = redis::EndpointFromConfig(config);
  if (!redis.ok()) return redis.status();
  const std::string topic = config.GetString("case-topic");
  const std::string scheduling_topic = config.GetString("scheduling-topic");
  if (topic.empty() || scheduling_topic.empty() || topic == scheduling_topic) {
    return absl::InvalidArgumentError(
        "config keys 'case-topic' and 'scheduling-topic' must name two different topics");
  }
  const int64_t due_soon_days = config.GetInt("goal-due-soon-days");
  if (due_soon_days < 0 || due_soon_days > 365) {
    return absl::InvalidArgumentError("config key 'goal-due-soon-days' must be 0..365");
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

  // Wrong credentials are a start-up error, not an endless retry; Redis being down is not
  // (the projection retries with backoff and readiness waits for it).
  if (auto probe = redis::Connection::Connect(*redis, absl::Seconds(2));
      !probe.ok() && probe.status().code() != absl::StatusCode::kUnavailable) {
    return probe.status();
  }
  // The case and scheduling topics may not exist yet (the views can start before their
  // writers). Only their writers create them: the projection waits for them, retrying.

  auto runtime = std::make_shared<Runtime>();
  runtime->model = std::make_unique<CaseViewModel>(topic, scheduling_topic);
  projection::ProjectionOptions options;
  options.kafka = *cluster;
  options.redis = *redis;
  options.root = config.GetString("view-root");
  options.version = config.GetString("view-version");
  options.activate_when_caught_up = true;
  options.kafka_timeout = config.GetDuration("kafka-timeout");
  auto created = projection::Projection::Create(options, *runtime->model, logger);
  if (!created.ok()) return created.status();
  runtime->projection = std::move(*created);

  // Who supervises whom, from the case service's organisation topic (read-your-writes: a
  // team changed just before a supervisor asks is seen): the access decisions
  // (GetCaseload/GetWorklist of a supervised case manager) and the supervisor rollups.
  relations::FollowedDirectory::Options follow;
  follow.cluster = *cluster;
  follow.organisation_topic = config.GetString("organisation-topic");
  follow.sync_timeout = config.GetDuration("organisation-sync-timeout");
  follow.name = "organisation";
  auto followed = relations::FollowedDirectory::Start(std::move(follow), logger);
  if (!followed.ok()) return followed.status();
  runtime->organisation = std::move(*followed);
  host.SetRelations(&runtime->organisation->directory());
  QueryOptions query;
  query.root = options.root;
  query.case_topic = topic;
  query.scheduling_topic = scheduling_topic;
  query.goal_due_soon = absl::Hours(24 * due_soon_days);
  query.organisation = [followed = runtime->organisation.get()](const std::string& tenant_id) {
    return followed->Organisation(tenant_id);
  };
  query.redis = options.redis;
  query.max_position_wait = config.GetDuration("max-position-wait");
  query.default_contact_threshold_days = default_threshold;
  query.contact_threshold_days = std::move(*thresholds);
  query.caseload_limits = std::move(*limits);
  runtime->service =
      std::make_unique<ViewsGrpcService>(std::move(query), runtime->projection.get(), host.callers());
  host.AddService(runtime->service.get());
  // Lag per partition, dead letters, errors; the collector holds `runtime`, so the
  // projection outlives every scrape.
  host.metrics().AddCollector(
      [runtime, collect = projection::ProjectionMetrics(*runtime->projection, options.root)](
          metrics::Sink& sink) {
        collect(sink);
        runtime->organisation->follower().CollectLag(sink, "organisation");
      });
  // Not ready until the view has caught up with both topics as they were at start: a
  // replica that just started (or rebuilds) must not take reads it would answer from far
  // behind. Queries read the ACTIVE version, so they are right either way; readiness only
  // keeps load balancers away meanwhile. Liveness is SERVING throughout.
  host.HoldReadiness();
  runtime->projection->Start();
  logger.Info("projection started", {{"topic", topic},
                                     {"scheduling_topic", scheduling_topic},
                                     {"root", options.root},
                                     {"version", options.version}});
  runtime->readiness = std::thread([runtime_ptr = runtime.get(), &host, &logger] {
    Runtime& r = *runtime_ptr;
    absl::MutexLock lock(&r.mutex);
    // Polls every 100 ms; ends when stopping (bounded by the process's lifetime).
    while (!r.stopping) {
      if (Ready(r.projection->Stats())) {
        host.SetServing(true);
        logger.Info("caught up: ready");
        return;
      }
      r.mutex.AwaitWithTimeout(absl::Condition(&r.stopping), absl::Milliseconds(100));
    }
  });
  return std::function<void()>([runtime, &logger] {
    runtime->StopReadiness();
    runtime->projection->Stop();
    runtime->organisation.reset();
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
  spec.extra_options = kafka::ClusterOptions();
  for (config::Option& option : redis::EndpointOptions()) spec.extra_options.push_back(std::move(option));
  spec.extra_options.insert(spec.extra_options.end(), {
      {"case-topic", OptionType::kString, "clinical.case.events.v1",
       "the case event topic (read only)"},
      {"organisation-topic", OptionType::kString, "clinical.case.organisation.v1",
       "the case service's organisation topic: who supervises whom, for the access decisions and "
       "the supervisor rollups (read only)"},
      {"organisation-sync-timeout", OptionType::kDuration, "5s",
       "how long an access decision or a supervisor rollup waits for the organisation topic's "
       "reader to be up to date"},
      {"scheduling-topic", OptionType::kString, "clinical.scheduling.events.v1",
       "the scheduling event topic (read only)"},
      {"goal-due-soon-days", OptionType::kInt, "14",
       "an open goal is due soon when its target date ends within this many days"},
      {"view-root", OptionType::kString, "views",
       "Redis key root of the views: 'views' or 'views.<name>' (the views' Redis user may touch "
       "only these keys, their Kafka principal only the dead-letter topic <root>.deadletter.v1)"},
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
  });
  spec.setup = Setup;
  return spec;
}

}  // namespace clinical::views

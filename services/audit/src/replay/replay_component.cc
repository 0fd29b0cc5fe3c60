#include "replay_component.h"

#include <memory>

#include "clinical/kafka/cluster.h"
#include "replay_service.h"

namespace clinical::audit::replay {
namespace {

struct Runtime {
  std::unique_ptr<EventSource> source;
  std::unique_ptr<ReplayService> service;
};

}  // namespace

std::vector<config::Option> ReplayOptions() {
  using config::OptionType;
  std::vector<config::Option> options = kafka::ClusterOptions();
  options.insert(options.end(), {
      {"case-topic", OptionType::kString, "clinical.case.events.v1", "the case event topic"},
      {"scheduling-topic", OptionType::kString, "clinical.scheduling.events.v1",
       "the scheduling event topic"},
      {"replay-read-timeout", OptionType::kDuration, "30s",
       "bound on each topic read of one replay or disclosures call"},
  });
  return options;
}

absl::StatusOr<std::function<void()>> SetUpReplay(const config::Config& config,
                                                  grpcx::ServiceHost& host,
                                                  logging::Logger& logger) {
  KafkaSourceOptions options;
  auto cluster = kafka::ClusterFromConfig(config, "audit");
  if (!cluster.ok()) return cluster.status();
  options.cluster = std::move(*cluster);
  options.case_topic = config.GetString("case-topic");
  options.scheduling_topic = config.GetString("scheduling-topic");
  options.timeout = config.GetDuration("replay-read-timeout");
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("config key 'replay-read-timeout' must be positive");
  }
  auto runtime = std::make_shared<Runtime>();
  runtime->source = MakeKafkaSource(options);
  runtime->service = std::make_unique<ReplayService>(*runtime->source, [] { return absl::Now(); }, host.callers());
  host.AddService(runtime->service.get());
  logger.Info("replay service registered", {{"case_topic", options.case_topic},
                                             {"scheduling_topic", options.scheduling_topic}});
  // Nothing to flush: the replay only reads. Holding the runtime keeps the service alive
  // until the server has stopped.
  return std::function<void()>([runtime] {});
}

}  // namespace clinical::audit::replay

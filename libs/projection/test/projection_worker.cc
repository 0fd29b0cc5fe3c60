// A projection process for the crash test: runs the runtime with the sample CounterModel
// on one topic until SIGTERM/SIGINT (or until killed, which is the point).
//
//   projection_worker --topic=T --root=R --version=V --dead-letter-topic=D [--max-batch=N]
// Kafka and Redis (addresses and credentials) come from the kafka-* and redis-* keys,
// usually their CLINICAL_* variables: the crash test runs it as the views service's
// principals.
#include <signal.h>

#include <iostream>
#include <map>
#include <string>

#include "clinical/config/config.h"
#include "clinical/kafka/cluster.h"
#include "clinical/logging/logger.h"
#include "clinical/projection/projection.h"
#include "clinical/redis/options.h"
#include "counter_model.h"

int main(int argc, char** argv) {
  // Block the stop signals before any thread exists; sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  using clinical::config::OptionType;
  std::vector<clinical::config::Option> flags = clinical::kafka::ClusterOptions();
  for (auto& option : clinical::redis::EndpointOptions()) flags.push_back(std::move(option));
  flags.insert(flags.end(), {
      {"topic", OptionType::kString, "", "the source topic"},
      {"root", OptionType::kString, "", "key root"},
      {"version", OptionType::kString, "v1", "version built"},
      {"dead-letter-topic", OptionType::kString, "", "dead letters"},
      {"max-batch", OptionType::kInt, "500", "records per Redis transaction"},
  });
  auto config = clinical::config::Config::Load(flags, argc, argv, clinical::config::ProcessEnvironment());
  absl::StatusOr<clinical::kafka::Cluster> cluster =
      config.ok() ? clinical::kafka::ClusterFromConfig(*config, "views") : config.status();
  absl::StatusOr<clinical::redis::Endpoint> redis =
      cluster.ok() ? clinical::redis::EndpointFromConfig(*config) : cluster.status();
  if (!redis.ok()) {
    std::cerr << redis.status().message() << "\n";
    return 2;
  }
  clinical::logging::Logger logger("projection-worker", std::cerr);
  clinical::projection::ProjectionOptions options;
  options.kafka = *cluster;
  options.redis = *redis;
  options.root = config->GetString("root");
  options.version = config->GetString("version");
  options.dead_letter_topic = config->GetString("dead-letter-topic");
  options.max_batch_events = static_cast<int>(config->GetInt("max-batch"));
  clinical::projection::testing::CounterModel model({config->GetString("topic")});
  auto projection = clinical::projection::Projection::Create(options, model, logger);
  if (!projection.ok()) {
    logger.Error("worker cannot start", {{"code", absl::StatusCodeToString(projection.status().code())}});
    return 1;
  }
  (*projection)->Start();
  logger.Info("worker started", {{"version", options.version}});
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  (*projection)->Stop();
  logger.Info("worker stopped", {{"events_applied", (*projection)->Stats().events_applied}});
  return 0;
}

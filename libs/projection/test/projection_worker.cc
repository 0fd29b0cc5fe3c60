// A projection process for the crash test: runs the runtime with the sample CounterModel
// on one topic until SIGTERM/SIGINT (or until killed, which is the point).
//
//   projection_worker --bootstrap=H:P --redis-host=H --redis-port=P --topic=T --root=R
//                     --version=V --dead-letter-topic=D [--max-batch=N]
#include <signal.h>

#include <iostream>
#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "clinical/logging/logger.h"
#include "clinical/projection/projection.h"
#include "counter_model.h"

int main(int argc, char** argv) {
  // Block the stop signals before any thread exists; sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    const auto eq = arg.find('=');
    if (!arg.starts_with("--") || eq == std::string::npos) {
      std::cerr << "usage: --name=value flags only\n";
      return 2;
    }
    flags[arg.substr(2, eq - 2)] = arg.substr(eq + 1);
  }
  clinical::logging::Logger logger("projection-worker", std::cerr);
  clinical::projection::ProjectionOptions options;
  options.kafka_bootstrap = flags["bootstrap"];
  options.redis_host = flags["redis-host"];
  options.root = flags["root"];
  options.version = flags["version"];
  options.dead_letter_topic = flags["dead-letter-topic"];
  if (!absl::SimpleAtoi(flags["redis-port"], &options.redis_port) ||
      (flags.contains("max-batch") &&
       !absl::SimpleAtoi(flags["max-batch"], &options.max_batch_events))) {
    std::cerr << "--redis-port and --max-batch must be numbers\n";
    return 2;
  }
  clinical::projection::testing::CounterModel model({flags["topic"]});
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

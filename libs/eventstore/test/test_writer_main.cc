// A writer process for the kill tests: owns every partition of --topic and appends
// commands of --events-per-command events to random aggregates from several threads until
// killed, printing "acked <command_id> <aggregate_id> <last_version>" after each commit.
// Kafka settings and credentials: the kafka-* keys (kafka::ClusterOptions), usually from the
// CLINICAL_KAFKA_* environment the test gives it.
#include <atomic>
#include <cstdio>
#include <iostream>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clinical/config/config.h"
#include "clinical/eventstore/event_store.h"
#include "clinical/kafka/cluster.h"
#include "test_events.h"

int main(int argc, char** argv) {
  using clinical::config::OptionType;
  std::vector<clinical::config::Option> options = clinical::kafka::ClusterOptions();
  options.insert(options.end(), {
      {"topic", OptionType::kString, "", "event topic"},
      {"writer-id", OptionType::kString, "", "transactional id prefix"},
      {"threads", OptionType::kInt, "8", "concurrent appenders"},
      {"aggregates", OptionType::kInt, "20", "number of aggregates written"},
      {"events-per-command", OptionType::kInt, "5", "events per append"},
      {"batch-wait", OptionType::kDuration, "5ms", "group commit wait"},
  });
  auto config = clinical::config::Config::Load(options, argc, argv, clinical::config::ProcessEnvironment());
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n";
    return 2;
  }
  clinical::logging::Logger logger("test-writer", std::cerr);
  clinical::eventstore::StoreOptions store_options;
  auto cluster = clinical::kafka::ClusterFromConfig(*config, "case");
  if (!cluster.ok()) {
    std::cerr << cluster.status().message() << "\n";
    return 2;
  }
  store_options.cluster = *cluster;
  store_options.topic = config->GetString("topic");
  store_options.aggregate_type = "case";
  store_options.writer_id = config->GetString("writer-id");
  store_options.max_batch_wait = config->GetDuration("batch-wait");
  auto store = clinical::eventstore::EventStore::Open(store_options, logger);
  if (!store.ok() || !(*store)->Acquire().ok()) {
    std::cerr << "cannot open the store\n";
    return 1;
  }
  std::puts("ready");
  std::fflush(stdout);

  const int aggregates = static_cast<int>(config->GetInt("aggregates"));
  const int events = static_cast<int>(config->GetInt("events-per-command"));
  std::mutex out;
  std::vector<std::thread> threads;
  for (int t = 0; t < config->GetInt("threads"); ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 random(static_cast<unsigned>(t));
      for (int i = 0;; ++i) {
        const std::string aggregate = absl::StrCat("case-", random() % aggregates);
        const std::string command = absl::StrCat("t", t, "-", i);
        auto result = (*store)->Append(clinical::eventstore::testing::MakeRequest(aggregate, command, events));
        if (!result.ok()) continue;
        std::lock_guard<std::mutex> lock(out);
        std::printf("acked %s %s %lld\n", command.c_str(), aggregate.c_str(),
                    static_cast<long long>(result->last_version));
        std::fflush(stdout);
      }
    });
  }
  for (auto& t : threads) t.join();
}

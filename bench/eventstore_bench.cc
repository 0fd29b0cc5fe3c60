// Event store append throughput and latency at several numbers of concurrent callers,
// next to the ceiling measured in the same run against the same broker: raw librdkafka
// idempotent produce (acks=all) of records of the same size, each caller waiting for its
// delivery report before sending the next (a closed loop, like an append's caller).
//
// Usage: eventstore_bench --kafka-bootstrap=HOST:PORT [--seconds=3] [--concurrency=1,16,256]
// Credentials: the kafka-* keys, or their CLINICAL_* variables (bench/run.sh sets the
// platform's admin principal).
// (bench/run.sh starts a private broker and passes it in.)
#include <atomic>
#include <cstdio>
#include <future>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench_support.h"
#include "clinical/config/config.h"
#include "clinical/eventstore/event_store.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/client_config.h"
#include "google/protobuf/util/time_util.h"
#include "google/protobuf/wrappers.pb.h"

namespace clinical::bench {
namespace {

constexpr int kAggregates = 10'000;

// A realistic event: envelope metadata around a payload of about 200 bytes.
common::v1::EventEnvelope SampleEvent() {
  common::v1::EventEnvelope event;
  google::protobuf::StringValue payload;
  payload.set_value(std::string(200, 'x'));
  event.mutable_payload()->PackFrom(payload);
  event.set_event_type("google.protobuf.StringValue");
  event.set_tenant_id("tenant-benchmark");
  event.set_schema_version(1);
  event.mutable_actor()->set_user_id("user-0001");
  event.mutable_actor()->set_role(common::v1::ROLE_CASE_MANAGER);
  event.set_correlation_id("0b7c1e9a-2f3d-4e5a-9b6c-7d8e9f0a1b2c");
  event.mutable_trace()->set_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  *event.mutable_occurred_at() = google::protobuf::util::TimeUtil::SecondsToTimestamp(1'767'225'600);
  return event;
}

// Runs `operation` in a closed loop on `concurrency` threads for `duration`.
Run ClosedLoop(const std::string& name, int concurrency, absl::Duration duration,
               const std::function<bool(int thread, int64_t i)>& operation) {
  Run run;
  run.name = name;
  run.concurrency = concurrency;
  std::vector<std::vector<absl::Duration>> samples(concurrency);
  std::atomic<int64_t> failures{0};
  const absl::Time start = absl::Now();
  const absl::Time stop = start + duration;
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t i = 0; absl::Now() < stop; ++i) {
        const absl::Time began = absl::Now();
        if (!operation(t, i)) {
          ++failures;
          continue;
        }
        samples[t].push_back(absl::Now() - began);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  run.elapsed = absl::Now() - start;
  for (auto& s : samples) run.latencies.insert(run.latencies.end(), s.begin(), s.end());
  run.operations = static_cast<int64_t>(run.latencies.size());
  if (failures > 0) std::cerr << name << ": " << failures << " failed operations\n";
  return run;
}

class DeliveryWaiter : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    static_cast<std::promise<RdKafka::ErrorCode>*>(message.msg_opaque())->set_value(message.err());
  }
};

Run RawProduce(const kafka::Cluster& cluster, const std::string& topic, const std::string& value,
               int concurrency, absl::Duration duration) {
  kafka::Properties props = kafka::ProducerDefaults(cluster);
  props["linger.ms"] = "0";  // as the store: no artificial delay at low concurrency
  auto conf = kafka::MakeConf(props);
  DeliveryWaiter waiter;
  std::string error;
  (*conf)->set("dr_cb", &waiter, error);
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf->get(), error));
  std::atomic<bool> polling{true};
  std::thread poller([&] {
    while (polling) producer->poll(5);
  });
  Run run = ClosedLoop("raw produce", concurrency, duration, [&](int thread, int64_t i) {
    const std::string key = absl::StrCat("aggregate-", (thread * 7919 + i) % kAggregates);
    std::promise<RdKafka::ErrorCode> delivered;
    auto future = delivered.get_future();
    if (producer->produce(topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                          const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0,
                          &delivered) != RdKafka::ERR_NO_ERROR) {
      return false;
    }
    return future.get() == RdKafka::ERR_NO_ERROR;
  });
  polling = false;
  poller.join();
  producer->flush(10'000);
  return run;
}

Run Appends(eventstore::EventStore& store, const common::v1::EventEnvelope& sample, int concurrency,
            absl::Duration duration, const std::string& label) {
  static std::atomic<int64_t> command_counter{0};
  return ClosedLoop(label, concurrency, duration, [&](int thread, int64_t i) {
    eventstore::AppendRequest request;
    request.aggregate_id = absl::StrCat("aggregate-", (thread * 7919 + i) % kAggregates);
    request.command_id = absl::StrCat("cmd-", command_counter++);
    request.events.push_back(sample);
    return store.Append(std::move(request)).ok();
  });
}

void PrintRow(Run& raw, Run& append) {
  std::printf("| %5d | %9.0f | %10s | %10s | %9.0f | %10s | %10s | %5.0f%% |\n", raw.concurrency,
              raw.PerSecond(), Millis(raw.Percentile(50)).c_str(), Millis(raw.Percentile(99)).c_str(),
              append.PerSecond(), Millis(append.Percentile(50)).c_str(),
              Millis(append.Percentile(99)).c_str(), 100.0 * append.PerSecond() / raw.PerSecond());
  std::fflush(stdout);
}

int Main(int argc, char** argv) {
  // The Kafka keys every client declares (kafka::ClusterOptions); bench/run.sh gives the
  // platform's admin principal, which may create the benchmark's topics.
  std::vector<config::Option> options = kafka::ClusterOptions();
  options.insert(options.end(), {
      {"seconds", config::OptionType::kInt, "3", "duration of each measurement"},
      {"concurrency", config::OptionType::kString, "1,16,256", "concurrent callers, comma-separated"},
      {"partitions", config::OptionType::kInt, "12", "partitions of the benchmark topics"},
      {"kafka-debug", config::OptionType::kString, "", "librdkafka debug contexts for the store's producers (logged to stderr)"},
  });
  auto cfg = config::Config::Load(options, argc, argv, config::ProcessEnvironment());
  absl::StatusOr<kafka::Cluster> cluster = cfg.ok() ? kafka::ClusterFromConfig(*cfg, "bench") : cfg.status();
  if (!cluster.ok()) {
    std::cerr << cluster.status().message() << "\n";
    return 2;
  }
  const absl::Duration duration = absl::Seconds(cfg->GetInt("seconds"));
  std::vector<int> concurrencies;
  for (const std::string& part : std::vector<std::string>(absl::StrSplit(cfg->GetString("concurrency"), ','))) {
    int c = 0;
    if (absl::SimpleAtoi(part, &c) && c > 0) concurrencies.push_back(c);
  }

  const std::string suffix = absl::StrCat(absl::ToUnixMicros(absl::Now()));
  kafka::TopicSpec raw_topic, store_topic;
  raw_topic.name = "bench.raw." + suffix;
  store_topic.name = "bench.store." + suffix;
  raw_topic.partitions = store_topic.partitions = static_cast<int>(cfg->GetInt("partitions"));
  if (absl::Status created = kafka::EnsureTopics(*cluster, {raw_topic, store_topic}, absl::Seconds(60));
      !created.ok()) {
    std::cerr << created << "\n";
    return 1;
  }

  std::ostringstream quiet;
  const bool debug = !cfg->GetString("kafka-debug").empty();
  logging::Logger logger("bench", debug ? std::cerr : quiet,
                         debug ? logging::Level::kDebug : logging::Level::kError);
  eventstore::StoreOptions store_options;
  store_options.cluster = *cluster;
  store_options.topic = store_topic.name;
  store_options.aggregate_type = "bench";
  store_options.writer_id = "bench-writer-" + suffix;
  if (debug) store_options.extra_producer_properties["debug"] = cfg->GetString("kafka-debug");
  auto store = eventstore::EventStore::Open(store_options, logger);
  if (!store.ok() || !(*store)->Acquire().ok()) {
    std::cerr << "cannot open the event store\n";
    return 1;
  }

  const common::v1::EventEnvelope sample = SampleEvent();
  // The raw baseline sends what the store sends: a complete envelope.
  common::v1::EventEnvelope stamped = sample;
  stamped.set_event_id("6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b");
  stamped.set_aggregate_type("bench");
  stamped.set_aggregate_id("aggregate-1234");
  stamped.set_aggregate_version(17);
  stamped.set_command_id("cmd-123456");
  *stamped.mutable_recorded_at() = sample.occurred_at();
  const std::string value = stamped.SerializeAsString();

  std::printf("event store append vs raw librdkafka idempotent produce (closed loop)\n");
  std::printf("%s; Kafka 3.9 single local broker; librdkafka %s; record %zu bytes; %d partitions; %s per cell\n\n",
              MachineDescription().c_str(), RdKafka::version_str().c_str(), value.size(),
              raw_topic.partitions, absl::FormatDuration(duration).c_str());
  std::printf("| callers | raw ops/s | raw p50 | raw p99 | append/s | append p50 | append p99 | ratio |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (int c : concurrencies) {
    Run raw = RawProduce(*cluster, raw_topic.name, value, c, duration);
    const eventstore::StoreStats before = (*store)->Stats();
    Run append = Appends(**store, sample, c, duration, "append");
    const eventstore::StoreStats after = (*store)->Stats();
    PrintRow(raw, append);
    std::fprintf(stderr, "  callers=%d: %lld transactions for %lld appends (%.1f appends per transaction)\n", c,
                 static_cast<long long>(after.transactions_committed - before.transactions_committed),
                 static_cast<long long>(after.appends_committed - before.appends_committed),
                 static_cast<double>(after.appends_committed - before.appends_committed) /
                     static_cast<double>(std::max<int64_t>(1, after.transactions_committed - before.transactions_committed)));
  }
  return 0;
}

}  // namespace
}  // namespace clinical::bench

int main(int argc, char** argv) { return clinical::bench::Main(argc, argv); }

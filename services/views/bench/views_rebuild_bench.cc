// Full rebuild of the views from N case events: generates N random valid events (the
// property test's generator: commands through the case service's Decide/Evolve), produces
// them to a fresh topic, then times a projection runtime building a new version of the
// views from offset 0 until it has applied every record and activated itself. Leaves the
// built view in Redis (root/version printed) so the query benchmark can run against it.
//
//   views_rebuild_bench --kafka-bootstrap=H:P --redis-host=H --redis-port=P [--events=1000000]
//                       [--topic=NAME] [--root=NAME]
// Credentials: the kafka-* and redis-* keys or their CLINICAL_* variables (run.sh sets the
// platform's admin principals: the benchmark creates its topics).
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clinical/config/config.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/client_config.h"
#include "clinical/redis/options.h"
#include "clinical/logging/logger.h"
#include "clinical/projection/projection.h"
#include "event_generator.h"
#include "librdkafka/rdkafkacpp.h"
#include "view_model.h"

namespace {

class Recorder : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    if (message.err() != RdKafka::ERR_NO_ERROR) {
      ++failed;
      return;
    }
    int64_t& l = last[message.partition()];
    l = std::max(l, message.offset());
    ++delivered;
  }
  std::map<int32_t, int64_t> last;
  int64_t delivered = 0;
  int64_t failed = 0;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace clinical;  // NOLINT: a benchmark's main
  std::vector<config::Option> flags = kafka::ClusterOptions();
  for (config::Option& option : redis::EndpointOptions()) flags.push_back(std::move(option));
  flags.insert(flags.end(), {
      {"events", config::OptionType::kInt, "1000000", "events generated and rebuilt"},
      {"topic", config::OptionType::kString, "clinical.case.bench", "the case topic written"},
      {"root", config::OptionType::kString, "views.bench", "the views' key root"},
  });
  auto cfg = config::Config::Load(flags, argc, argv, config::ProcessEnvironment());
  absl::StatusOr<kafka::Cluster> cluster = cfg.ok() ? kafka::ClusterFromConfig(*cfg, "bench") : cfg.status();
  absl::StatusOr<redis::Endpoint> endpoint = cluster.ok() ? redis::EndpointFromConfig(*cfg) : cluster.status();
  if (!endpoint.ok() || cfg->GetInt("events") < 1) {
    std::cerr << "views_rebuild_bench: "
              << (endpoint.ok() ? "--events must be positive" : endpoint.status().message()) << "\n";
    return 2;
  }
  const int events_wanted = static_cast<int>(cfg->GetInt("events"));
  const std::string topic = cfg->GetString("topic");
  const std::string root = cfg->GetString("root");

  // 1. Events: ~14 commands per case give ~7-8 events per case.
  views::testing::GeneratorOptions options;
  options.seed = 42;
  options.cases = std::max(1, events_wanted / 7);
  options.managers = std::max(10, options.cases / 40);
  options.tenants = {"tenant-a", "tenant-b", "tenant-c"};
  const absl::Time gen_start = absl::Now();
  auto events = views::testing::GenerateEvents(options);
  if (static_cast<int>(events.size()) > events_wanted) events.resize(static_cast<size_t>(events_wanted));
  const absl::Duration generated = absl::Now() - gen_start;

  // 2. Produce (not timed as part of the rebuild).
  // The generator's appointment events go to the case topic too (the model tells them apart
  // by event type); the scheduling topic the model also reads stays empty.
  kafka::TopicSpec spec;
  spec.name = topic;
  spec.partitions = 12;
  kafka::TopicSpec scheduling_spec;
  scheduling_spec.name = "clinical.scheduling." + topic.substr(topic.rfind('.') + 1);
  if (auto s = kafka::EnsureTopics(*cluster, {spec, scheduling_spec}, absl::Seconds(30)); !s.ok()) {
    std::cerr << "topic: " << s << "\n";
    return 1;
  }
  kafka::Properties props = kafka::ProducerDefaults(*cluster);
  props["linger.ms"] = "20";
  props["batch.num.messages"] = "10000";
  props["queue.buffering.max.messages"] = "200000";
  auto conf = kafka::MakeConf(props);
  if (!conf.ok()) {
    std::cerr << conf.status() << "\n";
    return 1;
  }
  Recorder recorder;
  std::string error;
  (*conf)->set("dr_cb", &recorder, error);
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf->get(), error));
  if (producer == nullptr) {
    std::cerr << "producer: " << error << "\n";
    return 1;
  }
  const absl::Time produce_start = absl::Now();
  for (const auto& e : events) {
    const std::string value = e.SerializeAsString();
    while (true) {
      const auto err = producer->produce(topic, RdKafka::Topic::PARTITION_UA,
                                         RdKafka::Producer::RK_MSG_COPY,
                                         const_cast<char*>(value.data()), value.size(),
                                         e.aggregate_id().data(), e.aggregate_id().size(), 0, nullptr);
      if (err == RdKafka::ERR_NO_ERROR) break;
      if (err != RdKafka::ERR__QUEUE_FULL) {
        std::cerr << "produce: " << RdKafka::err2str(err) << "\n";
        return 1;
      }
      producer->poll(10);
    }
    producer->poll(0);
  }
  if (producer->flush(120'000) != RdKafka::ERR_NO_ERROR || recorder.failed > 0 ||
      recorder.delivered != static_cast<int64_t>(events.size())) {
    std::cerr << "produce: " << recorder.failed << " failed\n";
    return 1;
  }
  const absl::Duration produced = absl::Now() - produce_start;

  // 3. The rebuild: a new version from offset 0 until every record is applied.
  logging::Logger logger("views-bench", std::cerr, logging::Level::kWarn);
  views::CaseViewModel model(topic, scheduling_spec.name);
  projection::ProjectionOptions popts;
  popts.kafka = *cluster;
  popts.redis = *endpoint;
  popts.root = root;
  popts.version = absl::StrCat("r", absl::ToUnixSeconds(absl::Now()));
  popts.activate_when_caught_up = true;
  auto runtime = projection::Projection::Create(popts, model, logger);
  if (!runtime.ok()) {
    std::cerr << runtime.status() << "\n";
    return 1;
  }
  const absl::Time start = absl::Now();
  (*runtime)->Start();
  bool done = false;
  projection::ProjectionStats stats;
  for (int i = 0; i < 3'600'000 && !done; ++i) {  // bounded: at most an hour of 1 ms polls
    stats = (*runtime)->Stats();
    if (!stats.status.ok()) break;
    done = stats.caught_up && stats.active;
    for (const auto& [partition, offset] : recorder.last) {
      bool reached = false;
      for (const auto& p : stats.partitions) {
        if (p.partition == partition && p.applied_offset >= offset) reached = true;
      }
      done = done && reached;
    }
    if (!done) absl::SleepFor(absl::Milliseconds(1));  // poll interval of the wait
  }
  const absl::Duration rebuild = absl::Now() - start;
  (*runtime)->Stop();
  if (!done) {
    std::cerr << "rebuild did not finish: " << stats.status << "\n";
    return 1;
  }
  const double seconds = absl::ToDoubleSeconds(rebuild);
  std::printf("| events | cases | managers | generate | produce | **full rebuild** | events/s | mean apply batch |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  std::printf("| %zu | %d | %d | %.1f s | %.1f s | **%.1f s** | %.0f | %.2f ms (%lld batches) |\n",
              events.size(), options.cases, options.managers, absl::ToDoubleSeconds(generated),
              absl::ToDoubleSeconds(produced), seconds, static_cast<double>(events.size()) / seconds,
              stats.batches > 0 ? absl::ToDoubleMilliseconds(stats.apply_latency_total) /
                                      static_cast<double>(stats.batches)
                                : 0.0,
              static_cast<long long>(stats.batches));
  std::printf("built: root=%s version=%s topic=%s scheduling_topic=%s (events applied %lld, dead-lettered %lld)\n",
              root.c_str(), popts.version.c_str(), topic.c_str(), scheduling_spec.name.c_str(),
              static_cast<long long>(stats.events_applied), static_cast<long long>(stats.dead_lettered));
  return 0;
}

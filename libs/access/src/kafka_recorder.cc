#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "clinical/access/recorder.h"
#include "clinical/access/snapshot.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/client_config.h"
#include "clinical/kafka/log_bridge.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical::access {
namespace {

// One record waiting for its delivery report. Shared between Record() (which may give up
// at its deadline) and the delivery callback (which may come later).
struct Pending {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  RdKafka::ErrorCode error = RdKafka::ERR_NO_ERROR;
};

class DeliveryReports : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    // The opaque is a heap-held shared_ptr made in Record(); this is its only owner now.
    std::unique_ptr<std::shared_ptr<Pending>> holder(
        static_cast<std::shared_ptr<Pending>*>(message.msg_opaque()));
    if (holder == nullptr) return;
    Pending& pending = **holder;
    {
      std::lock_guard lock(pending.mutex);
      pending.done = true;
      pending.error = message.err();
    }
    pending.done_cv.notify_all();
  }
};

}  // namespace

class KafkaRecorder::Impl {
 public:
  Impl(KafkaRecorderOptions options, logging::Logger& logger, metrics::Registry& metrics)
      : options_(std::move(options)),
        logger_(logger),
        log_bridge_(logger),
        failures_(metrics.GetCounter("clinical_access_record_failures_total",
                                     "Access records not acknowledged in time (the read failed closed).",
                                     {})),
        latency_(metrics.GetHistogram("clinical_access_record_seconds",
                                      "Time from producing an access record to its acknowledgement.",
                                      {})) {
    for (auto [outcome, name] : {std::pair{audit::v1::ACCESS_OUTCOME_ALLOWED, "allowed"},
                                 std::pair{audit::v1::ACCESS_OUTCOME_DENIED, "denied"},
                                 std::pair{audit::v1::ACCESS_OUTCOME_FAILED, "failed"}}) {
      produced_[outcome] = &metrics.GetCounter(
          "clinical_access_records_total", "Access records acknowledged by Kafka, by outcome.",
          {{"outcome", name}});
    }
  }

  absl::Status Start() {
    kafka::Properties properties = kafka::ProducerDefaults(options_.cluster);
    properties["message.timeout.ms"] = std::to_string(absl::ToInt64Milliseconds(options_.ack_timeout));
    properties["client.id"] = "clinical-access-recorder";
    auto conf = kafka::MakeConf(properties, &log_bridge_);
    if (!conf.ok()) return conf.status();
    std::string error;
    if ((*conf)->set("dr_cb", &reports_, error) != RdKafka::Conf::CONF_OK) {
      return absl::InternalError("kafka: cannot install the delivery report callback");
    }
    producer_.reset(RdKafka::Producer::create(conf->get(), error));
    if (producer_ == nullptr) return absl::InternalError(absl::StrCat("kafka producer: ", error));
    poller_ = std::thread([this] { Poll(); });
    topic_creator_ = std::thread([this] {
      if (EnsureTopics()) PublishPolicies();
    });
    return absl::OkStatus();
  }

  ~Impl() {
    {
      std::lock_guard lock(stop_mutex_);
      stopping_ = true;
    }
    stop_cv_.notify_all();
    if (topic_creator_.joinable()) topic_creator_.join();
    if (producer_ != nullptr) {
      producer_->flush(static_cast<int>(absl::ToInt64Milliseconds(options_.ack_timeout)));
      // Whatever is left fails its delivery report now, which frees its opaque.
      producer_->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
    }
    poll_stop_ = true;
    if (poller_.joinable()) poller_.join();
    if (producer_ != nullptr) producer_->poll(0);
  }

  absl::Status Record(const audit::v1::AccessRecord& record) {
    const absl::Time started = absl::Now();
    std::string value;
    if (!record.SerializeToString(&value)) return absl::InternalError("access record: cannot serialize");
    const RdKafka::ErrorCode err = Produce(options_.topic, record.record_id(), value, started);
    if (err != RdKafka::ERR_NO_ERROR) {
      failures_.Increment();
      logger_.Warn("access record not acknowledged",
                   {{"topic", options_.topic}, {"reason", RdKafka::err2str(err)}});
      return absl::UnavailableError("access record could not be written");
    }
    latency_.Observe(absl::ToDoubleSeconds(absl::Now() - started));
    if (auto it = produced_.find(record.outcome()); it != produced_.end()) it->second->Increment();
    return absl::OkStatus();
  }

  void PublishPolicy(const std::string& service) {
    {
      std::lock_guard lock(stop_mutex_);
      if (!policies_seen_.insert(service).second) return;
      policies_queued_.push_back(service);
    }
    stop_cv_.notify_all();
  }

  bool topic_ready() const { return topic_ready_.load(); }

 private:
  void Poll() {
    while (!poll_stop_.load()) producer_->poll(50);
  }

  // Produces one record and waits for its acknowledgement; ERR__TIMED_OUT when none came
  // within the bound.
  RdKafka::ErrorCode Produce(const std::string& topic, const std::string& key, const std::string& value,
                             absl::Time started) {
    auto pending = std::make_shared<Pending>();
    auto* opaque = new std::shared_ptr<Pending>(pending);
    const RdKafka::ErrorCode err =
        producer_->produce(topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                           const_cast<char*>(value.data()), value.size(), key.data(), key.size(),
                           /*timestamp=*/0, opaque);
    if (err != RdKafka::ERR_NO_ERROR) {
      delete opaque;
      return err;
    }
    // librdkafka reports every message within message.timeout.ms; the margin covers the
    // poll interval. Past it, the read fails closed even if the record lands later.
    const auto deadline = absl::ToChronoTime(started + options_.ack_timeout + absl::Seconds(1));
    std::unique_lock lock(pending->mutex);
    if (!pending->done_cv.wait_until(lock, deadline, [&] { return pending->done; })) {
      return RdKafka::ERR__TIMED_OUT;
    }
    return pending->error;
  }

  // Creates the access topic and the policy topic if needed, retrying until they exist or
  // the recorder stops (false then). Bounded per attempt; attempts are spaced so a missing
  // broker is not hammered.
  bool EnsureTopics() {
    kafka::TopicSpec records;
    records.name = options_.topic;
    records.partitions = options_.partitions;
    // Policy snapshots: one record per service and version, kept forever by compaction.
    kafka::TopicSpec policies;
    policies.name = options_.policy_topic;
    policies.partitions = 1;
    policies.configs = {{"cleanup.policy", "compact"}, {"retention.ms", "-1"}};
    for (int attempt = 0;; ++attempt) {
      // Short attempts: shutdown joins this thread, so one attempt bounds how long a
      // service with an unreachable broker takes to stop.
      const absl::Status status = kafka::EnsureTopics(options_.cluster, {records, policies}, absl::Seconds(3));
      if (status.ok()) {
        topic_ready_ = true;
        logger_.Info("access topic ready", {{"topic", options_.topic}, {"policy_topic", options_.policy_topic}});
        return true;
      }
      if (attempt % 30 == 0) {  // the first failure, then once a minute
        logger_.Warn("access topic not ensured yet",
                     {{"topic", options_.topic},
                      {"code", absl::StatusCodeToString(status.code())},
                      {"reason", std::string(status.message())}});
      }
      std::unique_lock lock(stop_mutex_);
      if (stop_cv_.wait_for(lock, std::chrono::seconds(2), [&] { return stopping_; })) return false;
    }
  }

  // Publishes the policy snapshot of every service that recorded a call, once per process
  // (the key makes it idempotent across processes), retrying until acknowledged.
  void PublishPolicies() {
    for (;;) {
      std::string service;
      {
        std::unique_lock lock(stop_mutex_);
        stop_cv_.wait(lock, [&] { return stopping_ || !policies_queued_.empty(); });
        if (stopping_) return;
        service = policies_queued_.front();
        policies_queued_.pop_front();
      }
      const auto* descriptor = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
      if (descriptor == nullptr) continue;
      audit::v1::AccessPolicySnapshot snapshot = SnapshotOf(*descriptor);
      const absl::Time now = absl::Now();
      snapshot.mutable_published_at()->set_seconds(absl::ToUnixSeconds(now));
      const std::string key = absl::StrCat(snapshot.service(), "@", snapshot.version());
      const RdKafka::ErrorCode err = Produce(options_.policy_topic, key, snapshot.SerializeAsString(), now);
      if (err == RdKafka::ERR_NO_ERROR) {
        logger_.Info("access policy published", {{"service", service}, {"version", snapshot.version()}});
        continue;
      }
      logger_.Warn("access policy not published yet", {{"service", service}, {"reason", RdKafka::err2str(err)}});
      std::unique_lock lock(stop_mutex_);
      policies_queued_.push_back(service);
      if (stop_cv_.wait_for(lock, std::chrono::seconds(2), [&] { return stopping_; })) return;
    }
  }

  const KafkaRecorderOptions options_;
  logging::Logger& logger_;
  kafka::LogBridge log_bridge_;
  DeliveryReports reports_;
  metrics::Counter& failures_;
  metrics::Histogram& latency_;
  std::map<audit::v1::AccessOutcome, metrics::Counter*> produced_;
  std::unique_ptr<RdKafka::Producer> producer_;
  std::thread poller_, topic_creator_;
  std::atomic<bool> poll_stop_{false};
  std::atomic<bool> topic_ready_{false};
  std::mutex stop_mutex_;  // guards stopping_ and the policy queue
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::set<std::string> policies_seen_;
  std::deque<std::string> policies_queued_;
};

absl::StatusOr<std::unique_ptr<KafkaRecorder>> KafkaRecorder::Create(KafkaRecorderOptions options,
                                                                      logging::Logger& logger,
                                                                      metrics::Registry& metrics) {
  if (options.cluster.bootstrap.empty()) {
    return absl::InvalidArgumentError("access recorder: no Kafka bootstrap");
  }
  if (options.topic.empty()) return absl::InvalidArgumentError("access recorder: empty topic");
  auto impl = std::make_unique<Impl>(std::move(options), logger, metrics);
  if (absl::Status s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<KafkaRecorder>(new KafkaRecorder(std::move(impl)));
}

KafkaRecorder::KafkaRecorder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KafkaRecorder::~KafkaRecorder() = default;

absl::Status KafkaRecorder::Record(const audit::v1::AccessRecord& record) { return impl_->Record(record); }

void KafkaRecorder::PublishPolicy(const std::string& service) { impl_->PublishPolicy(service); }

bool KafkaRecorder::topic_ready() const { return impl_->topic_ready(); }

}  // namespace clinical::access

#include "clinical/relations/kafka_follower.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/client_config.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical::relations {
namespace {

// `isolation` is the consumer's isolation.level. The reader reads committed records only;
// the watermark client must not: librdkafka answers query_watermark_offsets with the last
// stable offset under read_committed, and a transaction's commit markers reach the
// partition only after the producer's commit has returned. A writer's acknowledged record
// would then lie above the "end", and a catch-up made right after it would answer from the
// state before it. Under read_uncommitted the high watermark includes every acknowledged
// record, and the reader passes it once the markers land.
absl::StatusOr<std::unique_ptr<RdKafka::KafkaConsumer>> MakeConsumer(const kafka::Cluster& cluster,
                                                                     const std::string& group,
                                                                     const std::string& isolation,
                                                                     RdKafka::EventCb* events) {
  kafka::Properties props = kafka::ConsumerDefaults(cluster, group);
  props["fetch.wait.max.ms"] = "20";
  props["isolation.level"] = isolation;
  auto conf = kafka::MakeConf(props, events);
  if (!conf.ok()) return conf.status();
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf->get(), error));
  if (consumer == nullptr) return absl::InternalError(absl::StrCat("kafka consumer: ", error));
  return consumer;
}

}  // namespace

KafkaFollower::KafkaFollower(Options options, Handler handler, logging::Logger& logger)
    : options_(std::move(options)), handler_(std::move(handler)), logger_(logger), bridge_(logger) {}

absl::StatusOr<std::unique_ptr<KafkaFollower>> KafkaFollower::Start(Options options, Handler handler,
                                                                    logging::Logger& logger) {
  if (options.topics.empty()) return absl::InvalidArgumentError("a follower needs at least one topic");
  std::unique_ptr<KafkaFollower> follower(new KafkaFollower(std::move(options), std::move(handler), logger));
  auto reader = MakeConsumer(follower->options_.cluster, follower->options_.name, "read_committed",
                             &follower->bridge_);
  if (!reader.ok()) return reader.status();
  auto meta = MakeConsumer(follower->options_.cluster, follower->options_.name, "read_uncommitted",
                           &follower->bridge_);
  if (!meta.ok()) return meta.status();
  follower->reader_ = std::move(*reader);
  {
    std::lock_guard<std::mutex> lock(follower->meta_mutex_);
    follower->meta_ = std::move(*meta);
  }
  follower->thread_ = std::thread([raw = follower.get()] { raw->Run(); });
  return follower;
}

KafkaFollower::~KafkaFollower() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (reader_) reader_->close();
  std::lock_guard<std::mutex> lock(meta_mutex_);
  if (meta_) meta_->close();
}

bool KafkaFollower::Stopping() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stop_;
}

bool KafkaFollower::DiscoverTopics() {
  bool all = true;
  for (const std::string& topic : options_.topics) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (progress_.Partitions(topic) > 0) continue;
    }
    auto count = kafka::PartitionCount(options_.cluster, topic, absl::Seconds(5));
    if (!count.ok() || *count <= 0) {
      all = false;
      continue;
    }
    std::vector<std::unique_ptr<RdKafka::TopicPartition>> owned;
    std::vector<RdKafka::TopicPartition*> assignment;
    for (int32_t p = 0; p < *count; ++p) {
      owned.emplace_back(RdKafka::TopicPartition::create(topic, p, RdKafka::Topic::OFFSET_BEGINNING));
      assignment.push_back(owned.back().get());
    }
    std::unique_ptr<RdKafka::Error> error(reader_->incremental_assign(assignment));
    if (error != nullptr) {
      logger_.Warn("cannot assign a followed topic; will retry",
                   {{"reader", options_.name}, {"topic", topic}, {"error", error->name()}});
      all = false;
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      progress_.AddTopic(topic, *count);
    }
    changed_.notify_all();
    logger_.Info("following a topic", {{"reader", options_.name}, {"topic", topic}, {"partitions", *count}});
  }
  return all;
}

bool KafkaFollower::Deliver(const std::string& topic, int32_t partition, int64_t offset,
                            const common::v1::EventEnvelope& envelope) {
  for (int failures = 1;; ++failures) {
    const absl::Status status = handler_(topic, envelope);
    if (status.ok()) return true;
    logger_.Warn("followed event not handled; retrying",
                 {{"reader", options_.name},
                  {"topic", topic},
                  {"partition", partition},
                  {"offset", offset},
                  {"code", absl::StatusCodeToString(status.code())}});
    std::unique_lock<std::mutex> lock(mutex_);
    if (changed_.wait_for(lock, absl::ToChronoMilliseconds(RetryBackoff(failures)), [this] { return stop_; })) {
      return false;
    }
  }
}

void KafkaFollower::Run() {
  bool all_found = false, assigned_any = false, announced = false;
  std::set<std::string> waiting_logged;
  absl::Time next_discovery = absl::InfinitePast();
  while (true) {
    bool discover = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) return;
      discover = discover_now_;
      discover_now_ = false;
    }
    if (!all_found && (discover || absl::Now() >= next_discovery)) {
      all_found = DiscoverTopics();
      next_discovery = absl::Now() + absl::Seconds(1);
      std::lock_guard<std::mutex> lock(mutex_);
      for (const std::string& topic : options_.topics) {
        assigned_any |= progress_.Partitions(topic) > 0;
        if (progress_.Partitions(topic) == 0 && waiting_logged.insert(topic).second) {
          logger_.Warn("waiting for a topic to be created by its writer", {{"reader", options_.name}, {"topic", topic}});
        }
      }
    }
    if (!assigned_any) {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_ || discover_now_; });
      continue;
    }
    std::unique_ptr<RdKafka::Message> message(reader_->consume(100));
    const int32_t partition = message->partition();
    switch (message->err()) {
      case RdKafka::ERR_NO_ERROR: {
        common::v1::EventEnvelope envelope;
        if (!envelope.ParseFromArray(message->payload(), static_cast<int>(message->len()))) {
          int64_t count = 0;
          {
            std::lock_guard<std::mutex> lock(mutex_);
            count = ++undecodable_;
          }
          logger_.Warn("undecodable record on a followed topic",
                       {{"reader", options_.name},
                        {"topic", message->topic_name()},
                        {"partition", partition},
                        {"offset", message->offset()},
                        {"count", count}});
        } else if (!Deliver(message->topic_name(), partition, message->offset(), envelope)) {
          return;  // stopped while retrying
        }
        std::lock_guard<std::mutex> lock(mutex_);
        progress_.Record(message->topic_name(), partition, message->offset());
        break;
      }
      case RdKafka::ERR__PARTITION_EOF: {
        std::lock_guard<std::mutex> lock(mutex_);
        progress_.End(message->topic_name(), partition, message->offset());
        break;
      }
      default:
        // Timeouts, and transport errors librdkafka recovers from by itself; CatchUp's
        // deadline bounds whoever waits meanwhile.
        continue;
    }
    changed_.notify_all();
    if (!announced && options_.caught_up) {
      bool caught_up = false;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        caught_up = progress_.CaughtUp(options_.topics);
      }
      if (caught_up) {
        announced = true;
        options_.caught_up();
      }
    }
  }
}

absl::Status KafkaFollower::CatchUp(const std::string& topic, const std::string& key) const {
  if (std::find(options_.topics.begin(), options_.topics.end(), topic) == options_.topics.end()) {
    return absl::OkStatus();
  }
  const absl::Time deadline = absl::Now() + options_.sync_timeout;
  const auto chrono_deadline = absl::ToChronoTime(deadline);
  int32_t partitions = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    partitions = progress_.Partitions(topic);
  }
  if (partitions == 0) {
    // Not found by the reader yet: a topic that does not exist holds nothing committed.
    auto count = kafka::PartitionCount(options_.cluster, topic, options_.sync_timeout);
    if (!count.ok()) {
      if (count.status().code() == absl::StatusCode::kNotFound) return absl::OkStatus();
      return absl::UnavailableError(absl::StrCat("the topic ", topic, " cannot be described; retry"));
    }
    std::unique_lock<std::mutex> lock(mutex_);
    discover_now_ = true;
    changed_.notify_all();
    if (!changed_.wait_until(lock, chrono_deadline,
                             [&] { return stop_ || progress_.Partitions(topic) > 0; }) ||
        stop_) {
      return absl::UnavailableError(absl::StrCat("the topic ", topic, " is not being read yet; retry"));
    }
    partitions = progress_.Partitions(topic);
  }
  std::map<int32_t, int64_t> ends;
  {
    std::lock_guard<std::mutex> lock(meta_mutex_);
    for (int32_t p : PartitionsFor(key, partitions)) {
      int64_t low = 0, high = 0;
      const int64_t left_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(deadline - absl::Now()));
      const RdKafka::ErrorCode err =
          meta_->query_watermark_offsets(topic, p, &low, &high, static_cast<int>(left_ms));
      if (err != RdKafka::ERR_NO_ERROR) {
        return absl::UnavailableError(
            absl::StrCat("the topic ", topic, ": watermarks of partition ", p, ": ", RdKafka::err2str(err)));
      }
      ends[p] = high;
    }
  }
  std::unique_lock<std::mutex> lock(mutex_);
  if (!changed_.wait_until(lock, chrono_deadline, [&] { return stop_ || progress_.Passed(topic, ends); }) ||
      stop_) {
    return absl::UnavailableError(absl::StrCat("the topic ", topic, " could not be read up to date in time; retry"));
  }
  return absl::OkStatus();
}

std::vector<KafkaFollower::PartitionLag> KafkaFollower::Lag() const {
  struct Read {
    std::string topic;
    int32_t partition;
    int64_t next;
  };
  std::vector<Read> reads;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const std::string& topic : options_.topics) {
      for (int32_t p = 0; p < progress_.Partitions(topic); ++p) reads.push_back({topic, p, progress_.Next(topic, p)});
    }
  }
  std::vector<PartitionLag> lag;
  for (const Read& read : reads) {
    int64_t low = -1, high = -1;
    const bool known =
        reader_->get_watermark_offsets(read.topic, read.partition, &low, &high) == RdKafka::ERR_NO_ERROR &&
        high >= 0;
    lag.push_back({read.topic, read.partition, known ? std::max<int64_t>(0, high - read.next) : -1});
  }
  return lag;
}

void KafkaFollower::CollectLag(metrics::Sink& sink, const std::string& reader) const {
  for (const PartitionLag& entry : Lag()) {
    sink.Gauge("clinical_reader_lag_records",
               "Consume lag of a reader of another service's topic: records between what it has "
               "read and the partition's end at its last fetch (-1 unknown).",
               {{"reader", reader}, {"topic", entry.topic}, {"partition", std::to_string(entry.partition)}},
               static_cast<double>(entry.lag));
  }
}

int64_t KafkaFollower::undecodable() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return undecodable_;
}

}  // namespace clinical::relations

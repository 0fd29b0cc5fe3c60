#include "case_directory.h"

#include "absl/strings/str_cat.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/client_config.h"
#include "clinical/kafka/partitioner.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical::scheduling {
namespace {

// `isolation` is the consumer's isolation.level. The reader reads committed records only;
// the watermark client must not: librdkafka answers query_watermark_offsets with the last
// stable offset under read_committed, and a transaction's commit markers reach the
// partition only after the producer's commit has returned. The case service's
// acknowledged close would then lie above the "end" and a lookup made right after it
// would answer from the state before it. Under read_uncommitted the high watermark
// includes every acknowledged record, and the reader passes it once the markers land.
absl::StatusOr<std::unique_ptr<RdKafka::KafkaConsumer>> MakeConsumer(const kafka::Cluster& cluster,
                                                                     const std::string& isolation,
                                                                     RdKafka::EventCb* events) {
  // group.id is mandatory for a KafkaConsumer even with manual assignment; nothing is ever
  // committed under it (the directory always rebuilds from offset 0).
  kafka::Properties props = kafka::ConsumerDefaults(cluster, "case-reader");
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

KafkaCaseDirectory::KafkaCaseDirectory(kafka::Cluster cluster, std::string topic,
                                       absl::Duration sync_timeout, logging::Logger& logger)
    : cluster_(std::move(cluster)),
      topic_(std::move(topic)),
      sync_timeout_(sync_timeout),
      logger_(logger),
      bridge_(logger) {}

absl::StatusOr<std::unique_ptr<KafkaCaseDirectory>> KafkaCaseDirectory::Start(
    const kafka::Cluster& cluster, const std::string& topic, absl::Duration sync_timeout,
    logging::Logger& logger) {
  std::unique_ptr<KafkaCaseDirectory> directory(
      new KafkaCaseDirectory(cluster, topic, sync_timeout, logger));
  auto reader = MakeConsumer(cluster, "read_committed", &directory->bridge_);
  if (!reader.ok()) return reader.status();
  auto meta = MakeConsumer(cluster, "read_uncommitted", &directory->bridge_);
  if (!meta.ok()) return meta.status();
  directory->reader_ = std::move(*reader);
  directory->meta_ = std::move(*meta);
  directory->thread_ = std::thread([raw = directory.get()] { raw->Run(); });
  return directory;
}

KafkaCaseDirectory::~KafkaCaseDirectory() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  advanced_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (reader_) reader_->close();
  if (meta_) meta_->close();
}

bool KafkaCaseDirectory::AwaitTopic() {
  bool logged = false;
  while (true) {
    auto count = kafka::PartitionCount(cluster_, topic_, absl::Seconds(5));
    if (count.ok() && *count > 0) {
      std::vector<std::unique_ptr<RdKafka::TopicPartition>> owned;
      std::vector<RdKafka::TopicPartition*> assignment;
      for (int32_t p = 0; p < *count; ++p) {
        owned.emplace_back(
            RdKafka::TopicPartition::create(topic_, p, RdKafka::Topic::OFFSET_BEGINNING));
        assignment.push_back(owned.back().get());
      }
      if (RdKafka::ErrorCode err = reader_->assign(assignment); err == RdKafka::ERR_NO_ERROR) {
        std::lock_guard<std::mutex> lock(mutex_);
        partitions_ = *count;
        next_offset_.assign(static_cast<size_t>(*count), 0);
        logger_.Info("reading the case topic", {{"topic", topic_}, {"partitions", *count}});
        return true;
      }
    } else if (!logged) {
      logger_.Warn("waiting for the case topic",
                   {{"topic", topic_}, {"code", absl::StatusCodeToString(count.status().code())}});
      logged = true;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    advanced_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; });
    if (stop_) return false;
  }
}

void KafkaCaseDirectory::Run() {
  if (!AwaitTopic()) return;
  int64_t undecodable = 0;
  int32_t partitions = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    partitions = partitions_;
  }
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) return;
    }
    std::unique_ptr<RdKafka::Message> message(reader_->consume(100));
    const int32_t p = message->partition();
    switch (message->err()) {
      case RdKafka::ERR_NO_ERROR: {
        common::v1::EventEnvelope envelope;
        const bool parsed =
            envelope.ParseFromArray(message->payload(), static_cast<int>(message->len()));
        std::lock_guard<std::mutex> lock(mutex_);
        if (parsed && !envelope.aggregate_id().empty()) {
          ApplyCaseEvent(cases_[envelope.aggregate_id()], envelope);
        } else {
          ++undecodable;
        }
        if (p >= 0 && p < partitions) next_offset_[static_cast<size_t>(p)] = message->offset() + 1;
        advanced_.notify_all();
        if (!parsed) {
          logger_.Warn("undecodable record on the case topic",
                       {{"partition", p}, {"offset", message->offset()}, {"count", undecodable}});
        }
        break;
      }
      case RdKafka::ERR__PARTITION_EOF: {
        // read_committed stops at the last stable offset: markers and aborted records below
        // it are skipped, so the EOF offset is how far the partition has been read.
        std::lock_guard<std::mutex> lock(mutex_);
        if (p >= 0 && p < partitions) {
          int64_t& next = next_offset_[static_cast<size_t>(p)];
          next = std::max(next, message->offset());
        }
        advanced_.notify_all();
        break;
      }
      case RdKafka::ERR__TIMED_OUT:
        break;
      default:
        // Transport errors: librdkafka reconnects by itself; Lookup's deadline bounds callers.
        break;
    }
  }
}

absl::StatusOr<CaseInfo> KafkaCaseDirectory::Lookup(const std::string& case_id) {
  int32_t partitions = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    partitions = partitions_;
  }
  if (partitions == 0) {
    return absl::UnavailableError("the case topic does not exist yet; retry");
  }
  const int32_t partition = kafka::Murmur2Partition(case_id, partitions);
  const absl::Time deadline = absl::Now() + sync_timeout_;
  int64_t low = 0, high = 0;
  {
    std::lock_guard<std::mutex> lock(meta_mutex_);
    RdKafka::ErrorCode err = meta_->query_watermark_offsets(
        topic_, partition, &low, &high, static_cast<int>(absl::ToInt64Milliseconds(sync_timeout_)));
    if (err != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("case topic: watermarks of partition ", partition,
                                                 ": ", RdKafka::err2str(err)));
    }
  }
  std::unique_lock<std::mutex> lock(mutex_);
  while (next_offset_[static_cast<size_t>(partition)] < high) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::UnavailableError("the case topic could not be read up to date in time; retry");
    }
    advanced_.wait_for(lock, absl::ToChronoMilliseconds(left));
  }
  auto it = cases_.find(case_id);
  if (it == cases_.end()) return absl::NotFoundError("case not found");
  return it->second;
}

std::vector<std::pair<int32_t, int64_t>> KafkaCaseDirectory::Lag() const {
  std::vector<int64_t> next;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    next = next_offset_;
  }
  std::vector<std::pair<int32_t, int64_t>> lag;
  for (int32_t p = 0; p < static_cast<int32_t>(next.size()); ++p) {
    int64_t low = -1, high = -1;
    const bool known = reader_->get_watermark_offsets(topic_, p, &low, &high) == RdKafka::ERR_NO_ERROR &&
                       high >= 0;
    lag.emplace_back(p, known ? std::max<int64_t>(0, high - next[static_cast<size_t>(p)]) : -1);
  }
  return lag;
}

size_t KafkaCaseDirectory::case_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cases_.size();
}

}  // namespace clinical::scheduling

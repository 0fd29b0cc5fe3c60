#include "topic_reader.h"

#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/client_config.h"

namespace clinical::audit {

absl::StatusOr<std::unique_ptr<RdKafka::KafkaConsumer>> OpenReader(const kafka::Cluster& cluster) {
  auto conf = kafka::MakeConf(kafka::ConsumerDefaults(cluster, "verify"));
  if (!conf.ok()) return conf.status();
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf->get(), error));
  if (consumer == nullptr) return absl::InternalError("kafka consumer: " + error);
  return consumer;
}

absl::Status ReadPartition(RdKafka::KafkaConsumer& consumer, const std::string& topic, int32_t partition,
                           int64_t from, int64_t until, absl::Time deadline,
                           const std::function<void(int64_t, std::string)>& each) {
  std::vector<RdKafka::TopicPartition*> assignment = {RdKafka::TopicPartition::create(topic, partition, from)};
  const RdKafka::ErrorCode assigned = consumer.assign(assignment);
  RdKafka::TopicPartition::destroy(assignment);
  if (assigned != RdKafka::ERR_NO_ERROR) return absl::UnavailableError("kafka assign failed");
  while (absl::Now() < deadline) {
    std::unique_ptr<RdKafka::Message> message(consumer.consume(200));
    const RdKafka::ErrorCode err = message->err();
    if (err == RdKafka::ERR__TIMED_OUT) continue;
    if (err == RdKafka::ERR__PARTITION_EOF) return absl::OkStatus();
    if (err != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("kafka: ", RdKafka::err2str(err)));
    }
    each(message->offset(), std::string(static_cast<const char*>(message->payload()), message->len()));
    if (message->offset() >= until) return absl::OkStatus();
  }
  return absl::UnavailableError("kafka: reading the source partition timed out");
}

absl::Status ReadWholeTopic(const kafka::Cluster& cluster, const std::string& topic, absl::Duration timeout,
                            const std::function<void(std::string)>& each) {
  auto partitions = kafka::PartitionCount(cluster, topic, timeout);
  if (partitions.status().code() == absl::StatusCode::kNotFound) return absl::OkStatus();
  if (!partitions.ok()) return partitions.status();
  auto consumer = OpenReader(cluster);
  if (!consumer.ok()) return consumer.status();
  const absl::Time deadline = absl::Now() + timeout;
  for (int32_t p = 0; p < *partitions; ++p) {
    const absl::Status read = ReadPartition(**consumer, topic, p, RdKafka::Topic::OFFSET_BEGINNING,
                                            std::numeric_limits<int64_t>::max(), deadline,
                                            [&](int64_t, std::string value) { each(std::move(value)); });
    if (!read.ok()) {
      (*consumer)->close();
      return read;
    }
  }
  (*consumer)->close();
  return absl::OkStatus();
}

}  // namespace clinical::audit

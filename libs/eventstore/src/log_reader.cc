#include "log_reader.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clinical/kafka/client_config.h"

namespace clinical::eventstore::internal {

absl::StatusOr<std::unique_ptr<RdKafka::KafkaConsumer>> MakeReader(const kafka::Cluster& cluster,
                                                                   RdKafka::EventCb* events) {
  // group.id is mandatory for a KafkaConsumer even when partitions are assigned by hand;
  // nothing is ever committed under it.
  kafka::Properties props = kafka::ConsumerDefaults(cluster, "eventstore-reader");
  props["fetch.wait.max.ms"] = "10";
  auto conf = kafka::MakeConf(props, events);
  if (!conf.ok()) return conf.status();
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf->get(), error));
  if (consumer == nullptr) return absl::InternalError(absl::StrCat("kafka consumer: ", error));
  return consumer;
}

absl::StatusOr<int64_t> ReadRecords(RdKafka::KafkaConsumer& consumer, const std::string& topic,
                                    int32_t partition, int64_t from_offset,
                                    const std::function<bool(const RawRecord&)>& visit,
                                    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  int64_t low = 0, high = 0;
  RdKafka::ErrorCode watermark_error;
  while (true) {
    watermark_error = consumer.query_watermark_offsets(
        topic, partition, &low, &high,
        static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now())));
    // Leadership moves (a new topic, a broker restart) are transient: ask again.
    const bool transient = watermark_error == RdKafka::ERR_NOT_LEADER_FOR_PARTITION ||
                           watermark_error == RdKafka::ERR_LEADER_NOT_AVAILABLE ||
                           watermark_error == RdKafka::ERR_UNKNOWN_TOPIC_OR_PART ||
                           watermark_error == RdKafka::ERR__TRANSPORT;
    if (!transient || absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(50));  // bounded by the deadline
  }
  if (watermark_error != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("kafka: watermarks of partition ", partition, ": ", RdKafka::err2str(watermark_error)));
  }
  if (from_offset >= high) return from_offset;

  std::unique_ptr<RdKafka::TopicPartition> assignment(
      RdKafka::TopicPartition::create(topic, partition, std::max(from_offset, low)));
  std::vector<RdKafka::TopicPartition*> assignments = {assignment.get()};
  if (RdKafka::ErrorCode err = consumer.assign(assignments); err != RdKafka::ERR_NO_ERROR) {
    return absl::InternalError(absl::StrCat("kafka assign: ", RdKafka::err2str(err)));
  }

  int64_t next = std::max(from_offset, low);
  absl::Status result = absl::OkStatus();
  bool stopped = false;
  while (next < high && !stopped) {
    if (absl::Now() > deadline) {
      result = absl::UnavailableError(
          absl::StrCat("kafka: reading partition ", partition, " timed out at offset ", next));
      break;
    }
    std::unique_ptr<RdKafka::Message> message(consumer.consume(100));
    switch (message->err()) {
      case RdKafka::ERR_NO_ERROR: {
        RawRecord record;
        record.offset = message->offset();
        if (message->key() != nullptr) record.key = *message->key();
        record.tombstone = message->payload() == nullptr;
        if (!record.tombstone) {
          record.value.assign(static_cast<const char*>(message->payload()), message->len());
        }
        next = message->offset() + 1;
        if (!visit(record)) stopped = true;
        break;
      }
      case RdKafka::ERR__PARTITION_EOF:
        // With read_committed the consumer stops at the last stable offset; transaction
        // markers and aborted records below it are skipped, so the EOF offset is how far
        // the partition has really been read.
        next = std::max(next, message->offset());
        break;
      case RdKafka::ERR__TIMED_OUT:
        break;
      default:
        if (message->err() == RdKafka::ERR__TRANSPORT || message->err() == RdKafka::ERR__ALL_BROKERS_DOWN) {
          break;  // librdkafka reconnects by itself; the deadline bounds the wait
        }
        result = absl::UnavailableError(
            absl::StrCat("kafka: reading partition ", partition, ": ", RdKafka::err2str(message->err())));
        stopped = true;
        break;
    }
  }
  consumer.unassign();
  if (!result.ok()) return result;
  return next;
}

absl::StatusOr<int64_t> ReadPartition(RdKafka::KafkaConsumer& consumer, const std::string& topic,
                                      int32_t partition, int64_t from_offset,
                                      const std::function<bool(const LoggedEvent&)>& visit,
                                      absl::Duration timeout) {
  absl::Status decoded = absl::OkStatus();
  auto read = ReadRecords(
      consumer, topic, partition, from_offset,
      [&](const RawRecord& record) {
        LoggedEvent event;
        event.partition = partition;
        event.offset = record.offset;
        if (!event.envelope.ParseFromString(record.value)) {
          decoded = absl::DataLossError(absl::StrCat("partition ", partition, " offset ",
                                                     record.offset, " is not an event envelope"));
          return false;
        }
        return visit(event);
      },
      timeout);
  if (!decoded.ok()) return decoded;
  return read;
}

}  // namespace clinical::eventstore::internal

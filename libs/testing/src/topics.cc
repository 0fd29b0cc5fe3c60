#include "clinical/testing/topics.h"

#include <memory>

#include "clinical/kafka/admin.h"
#include "clinical/kafka/client_config.h"
#include "clinical/testing/platform.h"
#include "gtest/gtest.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical::testing {
namespace {

std::unique_ptr<RdKafka::KafkaConsumer> Consumer() {
  // The harness reads as the platform's administrator, not as any service under test.
  auto conf = kafka::MakeConf(kafka::ConsumerDefaults(Platform::Get().kafka_admin, UniqueName("test-reader")));
  EXPECT_TRUE(conf.ok()) << conf.status();
  if (!conf.ok()) return nullptr;
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf->get(), error));
  EXPECT_NE(consumer, nullptr) << error;
  return consumer;
}

std::map<int32_t, int64_t> Ends(RdKafka::KafkaConsumer& consumer, const std::string& topic) {
  std::map<int32_t, int64_t> ends;
  RdKafka::Metadata* raw = nullptr;
  std::string error;
  std::unique_ptr<RdKafka::Topic> handle(RdKafka::Topic::create(&consumer, topic, nullptr, error));
  const RdKafka::ErrorCode err = consumer.metadata(false, handle.get(), &raw, 10000);
  std::unique_ptr<RdKafka::Metadata> metadata(raw);
  EXPECT_EQ(err, RdKafka::ERR_NO_ERROR) << RdKafka::err2str(err);
  if (metadata == nullptr) return ends;
  for (const RdKafka::TopicMetadata* t : *metadata->topics()) {
    if (t->topic() != topic || t->err() != RdKafka::ERR_NO_ERROR) continue;
    for (const RdKafka::PartitionMetadata* p : *t->partitions()) {
      int64_t low = 0, high = 0;
      const RdKafka::ErrorCode w = consumer.query_watermark_offsets(topic, p->id(), &low, &high, 10000);
      EXPECT_EQ(w, RdKafka::ERR_NO_ERROR) << topic << "/" << p->id() << ": " << RdKafka::err2str(w);
      ends[p->id()] = high;
    }
  }
  return ends;
}

}  // namespace

void CreateTopic(const std::string& topic, int partitions) {
  kafka::TopicSpec spec;
  spec.name = topic;
  spec.partitions = partitions;
  const absl::Status created = kafka::EnsureTopics(Platform::Get().kafka_admin, {spec}, absl::Seconds(30));
  EXPECT_TRUE(created.ok()) << topic << ": " << created;
}

std::map<int32_t, int64_t> EndOffsets(const std::string& topic) {
  auto consumer = Consumer();
  if (consumer == nullptr) return {};
  std::map<int32_t, int64_t> ends = Ends(*consumer, topic);
  consumer->close();
  return ends;
}

std::vector<TopicRecord> ReadTopicToEnd(const std::string& topic, absl::Duration timeout) {
  std::vector<TopicRecord> records;
  auto consumer = Consumer();
  if (consumer == nullptr) return records;
  std::map<int32_t, int64_t> end = Ends(*consumer, topic);
  std::erase_if(end, [](const auto& entry) { return entry.second == 0; });
  std::vector<RdKafka::TopicPartition*> assignment;
  for (const auto& [p, high] : end) assignment.push_back(RdKafka::TopicPartition::create(topic, p, 0));
  consumer->assign(assignment);
  RdKafka::TopicPartition::destroy(assignment);
  // A partition is read to its end once the reader's position reached its high watermark
  // (transaction markers count as offsets, so EOF can come without a last record).
  std::map<int32_t, int64_t> next;
  auto done = [&] {
    for (const auto& [p, high] : end) {
      if (next[p] < high) return false;
    }
    return true;
  };
  const absl::Time deadline = absl::Now() + timeout;
  while (!done() && absl::Now() < deadline) {
    std::unique_ptr<RdKafka::Message> message(consumer->consume(200));
    if (message->err() == RdKafka::ERR__PARTITION_EOF) {
      next[message->partition()] = std::max(next[message->partition()], message->offset());
      continue;
    }
    if (message->err() != RdKafka::ERR_NO_ERROR) continue;
    next[message->partition()] = message->offset() + 1;
    TopicRecord record;
    record.partition = message->partition();
    record.offset = message->offset();
    if (message->key() != nullptr) record.key = *message->key();
    record.value.assign(static_cast<const char*>(message->payload()), message->len());
    records.push_back(std::move(record));
  }
  EXPECT_TRUE(done()) << topic << " not read to its end in time";
  consumer->close();
  return records;
}

}  // namespace clinical::testing

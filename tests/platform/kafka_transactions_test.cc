// Proof that the local Kafka 3.9 broker and Debian's librdkafka 2.0.2 give the event store
// what DESIGN.md needs: idempotent transactional producers, read_committed consumers that
// never see aborted data, fencing of a zombie producer by transactional.id, and Java-
// compatible key partitioning.
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/client_config.h"
#include "clinical/kafka/partitioner.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/wait.h"
#include "gtest/gtest.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical {
namespace {

using testing::Platform;
using testing::UniqueName;

constexpr int kPartitions = 3;
constexpr int kTimeoutMs = 30'000;

std::string CreateTopic() {
  const std::string topic = UniqueName("platform-test");
  kafka::TopicSpec spec;
  spec.name = topic;
  spec.partitions = kPartitions;
  const absl::Status created =
      kafka::EnsureTopics(Platform::Get().kafka_admin, {spec}, absl::Seconds(30));
  EXPECT_TRUE(created.ok()) << created;
  return topic;
}

std::unique_ptr<RdKafka::Producer> MakeTransactionalProducer(const std::string& transactional_id) {
  kafka::Properties props = kafka::ProducerDefaults(Platform::Get().kafka_admin);
  props["transactional.id"] = transactional_id;
  auto conf = kafka::MakeConf(props);
  EXPECT_TRUE(conf.ok()) << conf.status();
  std::string error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf->get(), error));
  EXPECT_NE(producer, nullptr) << error;
  return producer;
}

void Produce(RdKafka::Producer& producer, const std::string& topic, const std::string& key,
             const std::string& value) {
  const RdKafka::ErrorCode err = producer.produce(
      topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
      const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0, nullptr);
  ASSERT_EQ(err, RdKafka::ERR_NO_ERROR) << RdKafka::err2str(err);
}

void ExpectOk(RdKafka::Error* raw, const char* what) {
  std::unique_ptr<RdKafka::Error> error(raw);
  ASSERT_EQ(error, nullptr) << what << ": " << error->str();
}

struct Record {
  std::string key;
  std::string value;
  int32_t partition;
};

// Reads every record of `topic` from the beginning until `done` holds for what was read
// (or the deadline passes) with the given isolation level.
std::vector<Record> ReadUntil(const std::string& topic, const std::string& isolation,
                              const std::function<bool(const std::vector<Record>&)>& done) {
  kafka::Properties props =
      kafka::ConsumerDefaults(Platform::Get().kafka_admin, UniqueName("reader"));
  props["isolation.level"] = isolation;
  auto conf = kafka::MakeConf(props);
  EXPECT_TRUE(conf.ok());
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf->get(), error));
  EXPECT_NE(consumer, nullptr) << error;
  std::vector<RdKafka::TopicPartition*> partitions;
  for (int p = 0; p < kPartitions; ++p) {
    partitions.push_back(RdKafka::TopicPartition::create(topic, p, RdKafka::Topic::OFFSET_BEGINNING));
  }
  consumer->assign(partitions);
  RdKafka::TopicPartition::destroy(partitions);

  std::vector<Record> records;
  testing::WaitUntil(
      [&] {
        std::unique_ptr<RdKafka::Message> message(consumer->consume(100));
        if (message->err() == RdKafka::ERR_NO_ERROR) {
          records.push_back({std::string(static_cast<const char*>(message->key_pointer()),
                                         message->key_len()),
                             std::string(static_cast<const char*>(message->payload()),
                                         message->len()),
                             message->partition()});
        }
        return done(records);
      },
      absl::Seconds(30), absl::ZeroDuration());
  consumer->close();
  return records;
}

bool ContainsValue(const std::vector<Record>& records, const std::string& value) {
  for (const Record& r : records) {
    if (r.value == value) return true;
  }
  return false;
}

TEST(KafkaPlatformTest, CommittedTransactionIsSeenByReadCommittedConsumer) {
  const std::string topic = CreateTopic();
  auto producer = MakeTransactionalProducer(UniqueName("txn"));
  ExpectOk(producer->init_transactions(kTimeoutMs), "init_transactions");
  ExpectOk(producer->begin_transaction(), "begin_transaction");
  for (int i = 0; i < 10; ++i) Produce(*producer, topic, absl::StrCat("case-", i), absl::StrCat("event-", i));
  ExpectOk(producer->commit_transaction(kTimeoutMs), "commit_transaction");

  auto records = ReadUntil(topic, "read_committed",
                           [](const auto& r) { return r.size() >= 10; });
  ASSERT_EQ(records.size(), 10u);
  std::set<std::string> values;
  for (const Record& r : records) values.insert(r.value);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(values.contains(absl::StrCat("event-", i)));
}

TEST(KafkaPlatformTest, AbortedTransactionIsNeverSeenByReadCommittedConsumer) {
  const std::string topic = CreateTopic();
  auto producer = MakeTransactionalProducer(UniqueName("txn"));
  ExpectOk(producer->init_transactions(kTimeoutMs), "init_transactions");

  // One key keeps all three batches in one partition, so order is total: seeing "after"
  // proves the consumer has read past the aborted batch, not merely not reached it yet.
  ExpectOk(producer->begin_transaction(), "begin");
  Produce(*producer, topic, "case-1", "before");
  ExpectOk(producer->commit_transaction(kTimeoutMs), "commit");
  ExpectOk(producer->begin_transaction(), "begin");
  Produce(*producer, topic, "case-1", "aborted-1");
  Produce(*producer, topic, "case-1", "aborted-2");
  ASSERT_EQ(producer->flush(kTimeoutMs), RdKafka::ERR_NO_ERROR);  // really on the broker
  ExpectOk(producer->abort_transaction(kTimeoutMs), "abort");
  ExpectOk(producer->begin_transaction(), "begin");
  Produce(*producer, topic, "case-1", "after");
  ExpectOk(producer->commit_transaction(kTimeoutMs), "commit");

  auto committed = ReadUntil(topic, "read_committed",
                             [](const auto& r) { return ContainsValue(r, "after"); });
  ASSERT_TRUE(ContainsValue(committed, "after"));
  EXPECT_TRUE(ContainsValue(committed, "before"));
  EXPECT_FALSE(ContainsValue(committed, "aborted-1"));
  EXPECT_FALSE(ContainsValue(committed, "aborted-2"));
  EXPECT_EQ(committed.size(), 2u);

  // The aborted records were written: a read_uncommitted reader sees them. Without this
  // the test above could pass against a producer that never sent them.
  auto uncommitted = ReadUntil(topic, "read_uncommitted",
                               [](const auto& r) { return ContainsValue(r, "after"); });
  EXPECT_TRUE(ContainsValue(uncommitted, "aborted-1"));
}

TEST(KafkaPlatformTest, NewProducerWithSameTransactionalIdFencesTheOld) {
  const std::string topic = CreateTopic();
  const std::string transactional_id = UniqueName("partition-owner");
  auto zombie = MakeTransactionalProducer(transactional_id);
  ExpectOk(zombie->init_transactions(kTimeoutMs), "zombie init");
  ExpectOk(zombie->begin_transaction(), "zombie begin");
  Produce(*zombie, topic, "case-7", "from-zombie");
  ASSERT_EQ(zombie->flush(kTimeoutMs), RdKafka::ERR_NO_ERROR);

  // The new owner's init_transactions bumps the epoch and aborts the zombie's transaction.
  auto owner = MakeTransactionalProducer(transactional_id);
  ExpectOk(owner->init_transactions(kTimeoutMs), "owner init");

  std::unique_ptr<RdKafka::Error> commit(zombie->commit_transaction(kTimeoutMs));
  ASSERT_NE(commit, nullptr) << "a fenced producer must not commit";
  EXPECT_TRUE(commit->is_fatal()) << commit->str();
  EXPECT_EQ(commit->code(), RdKafka::ERR__FENCED) << commit->str();

  ExpectOk(owner->begin_transaction(), "owner begin");
  Produce(*owner, topic, "case-7", "from-owner");
  ExpectOk(owner->commit_transaction(kTimeoutMs), "owner commit");

  auto records = ReadUntil(topic, "read_committed",
                           [](const auto& r) { return ContainsValue(r, "from-owner"); });
  EXPECT_TRUE(ContainsValue(records, "from-owner"));
  EXPECT_FALSE(ContainsValue(records, "from-zombie"));
}

// librdkafka's murmur2_random and our Murmur2Partition (the Java default partitioner) must
// agree, or an owner would route an aggregate to a partition its records never land in.
TEST(KafkaPlatformTest, KeysLandInTheSamePartitionsAsWithJavaClients) {
  const std::string topic = CreateTopic();
  auto producer = MakeTransactionalProducer(UniqueName("txn"));
  ExpectOk(producer->init_transactions(kTimeoutMs), "init");
  ExpectOk(producer->begin_transaction(), "begin");
  std::map<std::string, int32_t> expected;
  for (int i = 0; i < 30; ++i) {
    const std::string key = absl::StrCat("0b7c1e9a-case-", i);
    expected[key] = kafka::Murmur2Partition(key, kPartitions);
    Produce(*producer, topic, key, key);
  }
  ExpectOk(producer->commit_transaction(kTimeoutMs), "commit");
  std::set<int32_t> used;
  for (const auto& [key, partition] : expected) used.insert(partition);
  ASSERT_GT(used.size(), 1u) << "keys should spread over partitions";

  auto records = ReadUntil(topic, "read_committed", [](const auto& r) { return r.size() >= 30; });
  ASSERT_EQ(records.size(), 30u);
  for (const Record& r : records) EXPECT_EQ(r.partition, expected[r.key]) << r.key;
}

TEST(KafkaPlatformTest, EnsureTopicsIsIdempotentAndRefusesAChangedPartitionCount) {
  const std::string topic = CreateTopic();
  kafka::TopicSpec same;
  same.name = topic;
  same.partitions = kPartitions;
  EXPECT_TRUE(kafka::EnsureTopics(Platform::Get().kafka_admin, {same}, absl::Seconds(30)).ok());
  kafka::TopicSpec changed = same;
  changed.partitions = kPartitions + 1;
  EXPECT_EQ(kafka::EnsureTopics(Platform::Get().kafka_admin, {changed}, absl::Seconds(30)).code(),
            absl::StatusCode::kFailedPrecondition);
  auto count = kafka::PartitionCount(Platform::Get().kafka_admin, topic, absl::Seconds(10));
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, kPartitions);
}

}  // namespace
}  // namespace clinical

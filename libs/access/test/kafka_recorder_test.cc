// The Kafka recorder against the real broker: it creates its topic, a record it
// acknowledges is on the topic (read_committed) under its record id; and with no broker
// it answers UNAVAILABLE within its bound instead of hanging.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <sstream>

#include "clinical/access/record.h"
#include "clinical/access/recorder.h"
#include "clinical/kafka/client_config.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/wait.h"
#include "gtest/gtest.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical::access {
namespace {

audit::v1::AccessRecord SampleRecord(const std::string& id) {
  CallFacts facts;
  facts.method = "/clinical.case.v1.CaseService/GetCase";
  facts.actor_id = "cm-1";
  facts.actor_role = "case_manager";
  facts.tenant_id = "t-1";
  facts.resource_type = "case";
  facts.case_ids = {"c-1"};
  return BuildRecord(facts, id, absl::Now());
}

// Every record on `topic` (all partitions), read_committed, until `expected` are seen or
// the deadline passes.
std::vector<std::pair<std::string, audit::v1::AccessRecord>> ReadTopic(const std::string& topic,
                                                                        size_t expected) {
  auto conf = kafka::MakeConf(kafka::ConsumerDefaults(testing::Platform::Get().kafka_admin,
                                                      testing::UniqueName("access-test")));
  EXPECT_TRUE(conf.ok());
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf->get(), error));
  EXPECT_NE(consumer, nullptr) << error;
  std::vector<RdKafka::TopicPartition*> partitions;
  for (int p = 0; p < 12; ++p) partitions.push_back(RdKafka::TopicPartition::create(topic, p, 0));
  consumer->assign(partitions);
  RdKafka::TopicPartition::destroy(partitions);
  std::vector<std::pair<std::string, audit::v1::AccessRecord>> out;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (out.size() < expected && absl::Now() < deadline) {
    std::unique_ptr<RdKafka::Message> message(consumer->consume(200));
    if (message->err() != RdKafka::ERR_NO_ERROR) continue;
    audit::v1::AccessRecord record;
    EXPECT_TRUE(record.ParseFromArray(message->payload(), static_cast<int>(message->len())));
    out.emplace_back(message->key() != nullptr ? *message->key() : "", record);
  }
  consumer->close();
  return out;
}

TEST(KafkaRecorderTest, AnAcknowledgedRecordIsOnTheTopicUnderItsId) {
  std::ostringstream log;
  logging::Logger logger("test", log);
  metrics::Registry registry;
  KafkaRecorderOptions options;
  // As a service writes: its own principal, which may create and write the access topics
  // but not read them (the test reads back as admin).
  options.cluster = testing::Platform::Get().KafkaAs("case");
  options.topic = testing::UniqueName("clinical.access.recorder");
  auto recorder = KafkaRecorder::Create(options, logger, registry);
  ASSERT_TRUE(recorder.ok()) << recorder.status();
  ASSERT_TRUE(testing::WaitUntil([&] { return (*recorder)->topic_ready(); }, absl::Seconds(30)));

  ASSERT_TRUE((*recorder)->Record(SampleRecord("11111111-1111-4111-8111-111111111111")).ok());
  ASSERT_TRUE((*recorder)->Record(SampleRecord("22222222-2222-4222-8222-222222222222")).ok());

  const auto records = ReadTopic(options.topic, 2);
  ASSERT_EQ(records.size(), 2u);
  std::set<std::string> keys;
  for (const auto& [key, record] : records) {
    EXPECT_EQ(key, record.record_id());
    EXPECT_EQ(record.actor_id(), "cm-1");
    keys.insert(key);
  }
  EXPECT_EQ(keys, (std::set<std::string>{"11111111-1111-4111-8111-111111111111",
                                         "22222222-2222-4222-8222-222222222222"}));
  const std::string metrics = registry.Render();
  EXPECT_NE(metrics.find("clinical_access_records_total{outcome=\"allowed\"} 2"), std::string::npos) << metrics;
}

// A loopback port with nothing listening: bound, then closed.
int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

TEST(KafkaRecorderTest, WithoutABrokerARecordFailsWithinItsBound) {
  std::ostringstream log;
  logging::Logger logger("test", log);
  metrics::Registry registry;
  KafkaRecorderOptions options;
  options.cluster = testing::Platform::Get().KafkaAs("case");
  options.cluster.bootstrap = "127.0.0.1:" + std::to_string(ClosedPort());
  options.topic = "clinical.access.v1";
  options.ack_timeout = absl::Seconds(2);
  auto recorder = KafkaRecorder::Create(options, logger, registry);
  ASSERT_TRUE(recorder.ok()) << recorder.status();
  const absl::Time started = absl::Now();
  const absl::Status status = (*recorder)->Record(SampleRecord("33333333-3333-4333-8333-333333333333"));
  const absl::Duration took = absl::Now() - started;
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(took, absl::Seconds(4)) << "bounded by ack_timeout plus a margin";
  EXPECT_FALSE((*recorder)->topic_ready());
  EXPECT_NE(registry.Render().find("clinical_access_record_failures_total 1"), std::string::npos)
      << registry.Render();
}

}  // namespace
}  // namespace clinical::access

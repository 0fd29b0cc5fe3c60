// Who may do what on the platform's broker, proved with real librdkafka clients against the
// real SASL_SSL listener (deploy/local/kafka/acls.txt, docs/security.md "Kafka and Redis"):
// without valid credentials nothing is read or written, and the refusal is an
// authentication error, not a timeout; each service's principal is refused what is not its
// own (the views cannot write the case topic, a writer cannot read the access records) and
// can do what its service needs.
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/client_config.h"
#include "clinical/kafka/cluster.h"
#include "clinical/testing/platform.h"
#include "gtest/gtest.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical {
namespace {

using testing::Platform;
using testing::UniqueName;

// How long a refused client is given to show its refusal. An authentication or
// authorization error arrives within a round trip or two; this is not the message timeout.
constexpr absl::Duration kRefusal = absl::Seconds(15);

// The client-level errors librdkafka reports (authentication, transport, ...).
class Errors : public RdKafka::EventCb {
 public:
  void event_cb(RdKafka::Event& event) override {
    if (event.type() != RdKafka::Event::EVENT_ERROR) return;
    std::lock_guard<std::mutex> lock(mutex_);
    codes_.push_back(event.err());
  }
  bool Saw(RdKafka::ErrorCode code) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (RdKafka::ErrorCode c : codes_) {
      if (c == code) return true;
    }
    return false;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<RdKafka::ErrorCode> codes_;
};

class Delivery : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override { result = message.err(); }
  std::optional<RdKafka::ErrorCode> result;  // poll thread == test thread
};

struct Outcome {
  std::optional<RdKafka::ErrorCode> delivery;  // the record's delivery report, if any came
  bool authentication_failed = false;          // ERR__AUTHENTICATION reported by the client
};

// Produces one record to partition 0 of `topic` as `cluster`'s principal and waits for its
// delivery report or, failing that, for `give_up`.
Outcome Produce(const kafka::Cluster& cluster, const std::string& topic,
                absl::Duration give_up = kRefusal) {
  kafka::Properties properties = kafka::ProducerDefaults(cluster);
  properties["message.timeout.ms"] = std::to_string(absl::ToInt64Milliseconds(give_up) + 10'000);
  Errors errors;
  Delivery delivery;
  auto conf = kafka::MakeConf(properties, &errors);
  EXPECT_TRUE(conf.ok()) << conf.status();
  std::string error;
  (*conf)->set("dr_cb", &delivery, error);
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf->get(), error));
  EXPECT_NE(producer, nullptr) << error;
  Outcome outcome;
  if (producer == nullptr) return outcome;
  const std::string value = "acl-test", key = UniqueName("k");
  const RdKafka::ErrorCode queued =
      producer->produce(topic, 0, RdKafka::Producer::RK_MSG_COPY, const_cast<char*>(value.data()),
                        value.size(), key.data(), key.size(), 0, nullptr);
  EXPECT_EQ(queued, RdKafka::ERR_NO_ERROR) << RdKafka::err2str(queued);
  const absl::Time deadline = absl::Now() + give_up;
  while (!delivery.result.has_value() && !errors.Saw(RdKafka::ERR__AUTHENTICATION) &&
         absl::Now() < deadline) {
    producer->poll(100);
  }
  outcome.delivery = delivery.result;
  outcome.authentication_failed = errors.Saw(RdKafka::ERR__AUTHENTICATION);
  producer->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
  producer->poll(0);
  return outcome;
}

struct Read {
  std::optional<std::string> value;            // the first record's value
  std::optional<RdKafka::ErrorCode> error;     // the first error the consumer returned
  bool authentication_failed = false;
};

// Reads partition 0 of `topic` from the start as `cluster`'s principal until a record, an
// error other than "no record yet", or `give_up`.
Read Consume(const kafka::Cluster& cluster, const std::string& topic,
             absl::Duration give_up = kRefusal) {
  Errors errors;
  auto conf = kafka::MakeConf(kafka::ConsumerDefaults(cluster, UniqueName("acl-test")), &errors);
  EXPECT_TRUE(conf.ok()) << conf.status();
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf->get(), error));
  EXPECT_NE(consumer, nullptr) << error;
  Read read;
  if (consumer == nullptr) return read;
  std::unique_ptr<RdKafka::TopicPartition> partition(
      RdKafka::TopicPartition::create(topic, 0, RdKafka::Topic::OFFSET_BEGINNING));
  std::vector<RdKafka::TopicPartition*> assignment = {partition.get()};
  EXPECT_EQ(consumer->assign(assignment), RdKafka::ERR_NO_ERROR);
  const absl::Time deadline = absl::Now() + give_up;
  while (!read.value.has_value() && !read.error.has_value() && absl::Now() < deadline) {
    std::unique_ptr<RdKafka::Message> message(consumer->consume(100));
    switch (message->err()) {
      case RdKafka::ERR_NO_ERROR:
        read.value = std::string(static_cast<const char*>(message->payload()), message->len());
        break;
      case RdKafka::ERR__TIMED_OUT:
      case RdKafka::ERR__PARTITION_EOF:
        break;
      default:
        read.error = message->err();
        break;
    }
    if (errors.Saw(RdKafka::ERR__AUTHENTICATION)) break;
  }
  read.authentication_failed = errors.Saw(RdKafka::ERR__AUTHENTICATION);
  consumer->close();
  return read;
}

// Runs one transaction of one record on `transactional_id`; the first error's code, or OK.
RdKafka::ErrorCode WriteTransaction(const kafka::Cluster& cluster, const std::string& transactional_id,
                                    const std::string& topic) {
  kafka::Properties properties = kafka::ProducerDefaults(cluster);
  properties["transactional.id"] = transactional_id;
  auto conf = kafka::MakeConf(properties);
  EXPECT_TRUE(conf.ok()) << conf.status();
  std::string error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf->get(), error));
  EXPECT_NE(producer, nullptr) << error;
  if (producer == nullptr) return RdKafka::ERR_UNKNOWN;
  auto code_of = [](RdKafka::Error* raw) {
    std::unique_ptr<RdKafka::Error> failure(raw);
    return failure == nullptr ? RdKafka::ERR_NO_ERROR : failure->code();
  };
  if (auto code = code_of(producer->init_transactions(20'000)); code != RdKafka::ERR_NO_ERROR) return code;
  if (auto code = code_of(producer->begin_transaction()); code != RdKafka::ERR_NO_ERROR) return code;
  const std::string value = "acl-test";
  const RdKafka::ErrorCode queued = producer->produce(
      topic, 0, RdKafka::Producer::RK_MSG_COPY, const_cast<char*>(value.data()), value.size(), nullptr, 0, 0, nullptr);
  if (queued != RdKafka::ERR_NO_ERROR) return queued;
  return code_of(producer->commit_transaction(20'000));
}

class KafkaAclTest : public ::testing::Test {
 protected:
  // A case topic, a scheduling topic and an access topic with one record each, written by
  // the harness as admin, named as the services' own would be.
  static void SetUpTestSuite() {
    const std::string unique = UniqueName("acl-test");
    case_topic_ = new std::string("clinical.case." + unique);
    scheduling_topic_ = new std::string("clinical.scheduling." + unique);
    access_topic_ = new std::string("clinical.access." + unique);
    std::vector<kafka::TopicSpec> specs(3);
    specs[0].name = *case_topic_;
    specs[1].name = *scheduling_topic_;
    specs[2].name = *access_topic_;
    for (kafka::TopicSpec& spec : specs) spec.partitions = 1;
    ASSERT_TRUE(kafka::EnsureTopics(Admin(), specs, absl::Seconds(30)).ok());
    for (const kafka::TopicSpec& spec : specs) {
      const Outcome written = Produce(Admin(), spec.name);
      ASSERT_EQ(written.delivery, RdKafka::ERR_NO_ERROR) << spec.name;
    }
  }
  static void TearDownTestSuite() {
    delete case_topic_;
    delete scheduling_topic_;
    delete access_topic_;
  }

  static const kafka::Cluster& Admin() { return Platform::Get().kafka_admin; }
  static kafka::Cluster As(const std::string& principal) { return Platform::Get().KafkaAs(principal); }
  // A client that offers credentials the broker does not know.
  static kafka::Cluster Stranger() {
    kafka::Cluster cluster = Admin();
    cluster.security.username = "stranger";
    cluster.security.password = "not-a-platform-password";
    return cluster;
  }

  static inline std::string* case_topic_ = nullptr;
  static inline std::string* scheduling_topic_ = nullptr;
  static inline std::string* access_topic_ = nullptr;
};

TEST_F(KafkaAclTest, WithoutValidCredentialsTheCaseTopicCanBeNeitherWrittenNorRead) {
  for (const kafka::Cluster& cluster : {Stranger(), [] {
         kafka::Cluster wrong = Platform::Get().KafkaAs("case");
         wrong.security.password = "a-wrong-password";
         return wrong;
       }()}) {
    const Outcome written = Produce(cluster, *case_topic_);
    EXPECT_TRUE(written.authentication_failed) << cluster.security.username << ": no SASL authentication error";
    EXPECT_NE(written.delivery, RdKafka::ERR_NO_ERROR) << cluster.security.username << " wrote";
    const Read read = Consume(cluster, *case_topic_);
    EXPECT_TRUE(read.authentication_failed) << cluster.security.username << ": no SASL authentication error";
    EXPECT_FALSE(read.value.has_value()) << cluster.security.username << " read a record";
  }
}

TEST_F(KafkaAclTest, AClientWithoutSaslOrTlsIsDisconnectedAtOnce) {
  // The same client, first speaking plaintext and then TLS without SASL: the listener drops
  // the connection before any request is served (a transport error within a round trip,
  // well before the metadata call gives up), so no metadata ever comes back.
  for (const std::string protocol : {"plaintext", "ssl"}) {
    kafka::Properties properties = kafka::ClientProperties(Admin());
    properties["security.protocol"] = protocol;
    for (const char* key : {"sasl.mechanisms", "sasl.username", "sasl.password"}) properties.erase(key);
    Errors errors;
    auto conf = kafka::MakeConf(properties, &errors);
    ASSERT_TRUE(conf.ok()) << conf.status();
    std::string error;
    std::unique_ptr<RdKafka::Producer> client(RdKafka::Producer::create(conf->get(), error));
    ASSERT_NE(client, nullptr) << error;
    RdKafka::Metadata* raw = nullptr;
    const RdKafka::ErrorCode answer = client->metadata(true, nullptr, &raw, 3000);
    std::unique_ptr<RdKafka::Metadata> metadata(raw);
    EXPECT_NE(answer, RdKafka::ERR_NO_ERROR) << protocol << " got metadata";
    client->poll(100);  // the client's error events are served by poll()
    EXPECT_TRUE(errors.Saw(RdKafka::ERR__TRANSPORT) || errors.Saw(RdKafka::ERR__ALL_BROKERS_DOWN))
        << protocol << ": the broker did not drop the connection";
  }
}

TEST_F(KafkaAclTest, TheViewsCannotWriteTheCaseTopicButCanReadIt) {
  const Outcome written = Produce(As("views"), *case_topic_);
  EXPECT_FALSE(written.authentication_failed);
  EXPECT_EQ(written.delivery, RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED)
      << (written.delivery ? RdKafka::err2str(*written.delivery) : "no delivery report");
  const Read read = Consume(As("views"), *case_topic_);
  EXPECT_EQ(read.value, "acl-test") << (read.error ? RdKafka::err2str(*read.error) : "nothing read");
}

TEST_F(KafkaAclTest, AServiceCannotReadTheAccessRecordsOnlyAuditCan) {
  for (const std::string service : {"case", "scheduling", "notification", "views"}) {
    const Read read = Consume(As(service), *access_topic_);
    EXPECT_FALSE(read.value.has_value()) << service << " read an access record";
    EXPECT_EQ(read.error, RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED)
        << service << ": " << (read.error ? RdKafka::err2str(*read.error) : "no error");
    // ... while writing its own records there is what it must do.
    EXPECT_EQ(Produce(As(service), *access_topic_).delivery, RdKafka::ERR_NO_ERROR) << service;
  }
  const Read audited = Consume(As("audit"), *access_topic_);
  EXPECT_EQ(audited.value, "acl-test")
      << (audited.error ? RdKafka::err2str(*audited.error) : "nothing read");
}

TEST_F(KafkaAclTest, ReadersNeverCreateAnotherServicesTopics) {
  kafka::TopicSpec spec;
  spec.name = UniqueName("clinical.case.acl-created-by-a-reader");
  spec.partitions = 1;
  for (const std::string service : {"scheduling", "notification", "views", "audit"}) {
    const absl::Status created = kafka::EnsureTopics(As(service), {spec}, absl::Seconds(10));
    EXPECT_EQ(created.code(), absl::StatusCode::kPermissionDenied) << service << ": " << created;
  }
}

TEST_F(KafkaAclTest, AWriterCannotTakeAnotherWritersTransactionalIds) {
  const std::string topic = UniqueName("clinical.scheduling.acl-txn");
  kafka::TopicSpec spec;
  spec.name = topic;
  spec.partitions = 1;
  ASSERT_TRUE(kafka::EnsureTopics(As("scheduling"), {spec}, absl::Seconds(30)).ok());
  // The case service's partition owners are "case-service...p<N>": fencing them is not
  // the scheduling service's to do.
  EXPECT_EQ(WriteTransaction(As("scheduling"), UniqueName("case-service.acl") + ".p0", topic),
            RdKafka::ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
}

// One positive check per principal: each can do what its service does.
TEST_F(KafkaAclTest, EachServiceCanDoWhatItsServiceNeeds) {
  // case: create its topic, write it transactionally under its writer id, read it back.
  {
    kafka::TopicSpec own;
    own.name = UniqueName("clinical.case.acl-own");
    own.partitions = 1;
    ASSERT_TRUE(kafka::EnsureTopics(As("case"), {own}, absl::Seconds(30)).ok());
    EXPECT_EQ(WriteTransaction(As("case"), UniqueName("case-service.acl") + ".p0", own.name),
              RdKafka::ERR_NO_ERROR);
    EXPECT_EQ(Consume(As("case"), own.name).value, "acl-test");
  }
  // scheduling: read the case topic; write its own topic transactionally.
  {
    EXPECT_EQ(Consume(As("scheduling"), *case_topic_).value, "acl-test");
    EXPECT_EQ(WriteTransaction(As("scheduling"), UniqueName("scheduling-service.acl") + ".p0",
                               *scheduling_topic_),
              RdKafka::ERR_NO_ERROR);
  }
  // notification: read case and scheduling events; own topic, own transactional ids.
  {
    EXPECT_EQ(Consume(As("notification"), *case_topic_).value, "acl-test");
    EXPECT_EQ(Consume(As("notification"), *scheduling_topic_).value, "acl-test");
    kafka::TopicSpec own;
    own.name = UniqueName("clinical.notification.acl-own");
    own.partitions = 1;
    ASSERT_TRUE(kafka::EnsureTopics(As("notification"), {own}, absl::Seconds(30)).ok());
    EXPECT_EQ(WriteTransaction(As("notification"), UniqueName("notification-service.acl") + ".p0", own.name),
              RdKafka::ERR_NO_ERROR);
  }
  // views: read scheduling events; create and write its dead-letter topic.
  {
    EXPECT_EQ(Consume(As("views"), *scheduling_topic_).value, "acl-test");
    kafka::TopicSpec dead_letters;
    dead_letters.name = UniqueName("views.acl") + ".deadletter.v1";
    dead_letters.partitions = 1;
    ASSERT_TRUE(kafka::EnsureTopics(As("views"), {dead_letters}, absl::Seconds(30)).ok());
    EXPECT_EQ(Produce(As("views"), dead_letters.name).delivery, RdKafka::ERR_NO_ERROR);
  }
  // audit: read every event topic; create and write its checkpoint topic.
  {
    EXPECT_EQ(Consume(As("audit"), *case_topic_).value, "acl-test");
    EXPECT_EQ(Consume(As("audit"), *scheduling_topic_).value, "acl-test");
    kafka::TopicSpec checkpoints;
    checkpoints.name = UniqueName("clinical.audit.acl-checkpoints");
    checkpoints.partitions = 1;
    ASSERT_TRUE(kafka::EnsureTopics(As("audit"), {checkpoints}, absl::Seconds(30)).ok());
    EXPECT_EQ(Produce(As("audit"), checkpoints.name).delivery, RdKafka::ERR_NO_ERROR);
  }
}

}  // namespace
}  // namespace clinical

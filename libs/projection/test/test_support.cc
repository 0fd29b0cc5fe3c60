#include "test_support.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/client_config.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/wait.h"
#include "gtest/gtest.h"

namespace clinical::projection::testing {

using clinical::testing::Platform;

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

std::unique_ptr<clinical::testing::Subprocess> StartRedisServer(int port) {
  auto server = clinical::testing::Subprocess::Start(
      {"/usr/bin/redis-server", "--port", absl::StrCat(port), "--bind", "127.0.0.1", "--save",
       "", "--appendonly", "no"});
  EXPECT_TRUE(server.ok()) << server.status();
  if (!server.ok()) return nullptr;
  auto ready = (*server)->WaitForLine(
      [](const std::string& line) { return line.find("Ready to accept") != std::string::npos; },
      absl::Seconds(20));
  EXPECT_TRUE(ready.has_value()) << "redis-server did not start on port " << port;
  return std::move(*server);
}

std::string CreateTopic(const std::string& prefix, int partitions) {
  const std::string topic = clinical::testing::UniqueName(prefix);
  kafka::TopicSpec spec;
  spec.name = topic;
  spec.partitions = partitions;
  const absl::Status created =
      kafka::EnsureTopics(Platform::Get().kafka_admin, {spec}, absl::Seconds(30));
  EXPECT_TRUE(created.ok()) << created;
  return topic;
}

redis::Connection ConnectRedis(const redis::Endpoint& endpoint) {
  auto connection = redis::Connection::Connect(endpoint, absl::Seconds(5));
  EXPECT_TRUE(connection.ok()) << connection.status();
  return std::move(*connection);
}

redis::Connection ConnectPlatformRedis() {
  return ConnectRedis(Platform::Get().redis_admin);
}

class TestProducer::Reports : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    auto* landed = static_cast<Landed*>(message.msg_opaque());
    EXPECT_EQ(message.err(), RdKafka::ERR_NO_ERROR) << message.errstr();
    landed->partition = message.partition();
    landed->offset = message.offset();
  }
};

TestProducer::TestProducer() : reports_(std::make_unique<Reports>()) {
  kafka::Properties props = kafka::ProducerDefaults(Platform::Get().kafka_admin);
  props["transactional.id"] = clinical::testing::UniqueName("projection-test-producer");
  auto conf = kafka::MakeConf(props);
  EXPECT_TRUE(conf.ok()) << conf.status();
  std::string error;
  EXPECT_EQ((*conf)->set("dr_cb", reports_.get(), error), RdKafka::Conf::CONF_OK) << error;
  producer_.reset(RdKafka::Producer::create(conf->get(), error));
  EXPECT_NE(producer_, nullptr) << error;
  std::unique_ptr<RdKafka::Error> init(producer_->init_transactions(30'000));
  EXPECT_EQ(init, nullptr) << init->str();
}

TestProducer::~TestProducer() = default;

std::vector<Landed> TestProducer::Send(
    const std::string& topic, const std::vector<std::pair<std::string, std::string>>& records,
    bool commit) {
  std::vector<Landed> landed(records.size());
  std::unique_ptr<RdKafka::Error> begin(producer_->begin_transaction());
  EXPECT_EQ(begin, nullptr) << begin->str();
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& [key, value] = records[i];
    RdKafka::ErrorCode err;
    while ((err = producer_->produce(topic, RdKafka::Topic::PARTITION_UA,
                                     RdKafka::Producer::RK_MSG_COPY,
                                     const_cast<char*>(value.data()), value.size(), key.data(),
                                     key.size(), 0, &landed[i])) == RdKafka::ERR__QUEUE_FULL) {
      producer_->poll(100);  // the local queue drains as the broker acknowledges
    }
    EXPECT_EQ(err, RdKafka::ERR_NO_ERROR) << RdKafka::err2str(err);
  }
  EXPECT_EQ(producer_->flush(30'000), RdKafka::ERR_NO_ERROR);
  std::unique_ptr<RdKafka::Error> end(commit ? producer_->commit_transaction(30'000)
                                             : producer_->abort_transaction(30'000));
  EXPECT_EQ(end, nullptr) << end->str();
  return landed;
}

std::map<int32_t, int64_t> LastOffsets(const std::vector<Landed>& landed) {
  std::map<int32_t, int64_t> last;
  for (const Landed& l : landed) last[l.partition] = std::max(last[l.partition], l.offset);
  return last;
}

bool OffsetsReached(redis::Connection& redis, const std::string& prefix, const std::string& topic,
                    const std::map<int32_t, int64_t>& last) {
  for (const auto& [partition, offset] : last) {
    auto stored = redis.Command({"GET", absl::StrCat(prefix, "_offset:", topic, ":", partition)});
    if (!stored.ok() || stored->is_nil()) return false;
    int64_t value = -1;
    if (!absl::SimpleAtoi(stored->str(), &value) || value < offset) return false;
  }
  return true;
}

std::vector<KafkaRecord> ReadTopic(const std::string& topic, int partitions,
                                   const std::function<bool(const std::vector<KafkaRecord>&)>& done,
                                   absl::Duration timeout) {
  auto conf = kafka::MakeConf(kafka::ConsumerDefaults(Platform::Get().kafka_admin,
                                                      clinical::testing::UniqueName("reader")));
  EXPECT_TRUE(conf.ok());
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf->get(), error));
  EXPECT_NE(consumer, nullptr) << error;
  std::vector<RdKafka::TopicPartition*> assignment;
  for (int p = 0; p < partitions; ++p) {
    assignment.push_back(
        RdKafka::TopicPartition::create(topic, p, RdKafka::Topic::OFFSET_BEGINNING));
  }
  consumer->assign(assignment);
  RdKafka::TopicPartition::destroy(assignment);
  std::vector<KafkaRecord> records;
  clinical::testing::WaitUntil(
      [&] {
        std::unique_ptr<RdKafka::Message> message(consumer->consume(100));
        if (message->err() == RdKafka::ERR_NO_ERROR) {
          KafkaRecord record;
          if (message->key() != nullptr) record.key = *message->key();
          record.value.assign(static_cast<const char*>(message->payload()), message->len());
          if (RdKafka::Headers* headers = message->headers(); headers != nullptr) {
            for (const RdKafka::Headers::Header& header : headers->get_all()) {
              record.headers[header.key()] =
                  std::string(static_cast<const char*>(header.value()), header.value_size());
            }
          }
          records.push_back(std::move(record));
        }
        return done(records);
      },
      timeout, absl::ZeroDuration());
  consumer->close();
  return records;
}

namespace {

std::string Framed(const std::string& bytes) { return absl::StrCat(bytes.size(), ":", bytes); }

std::string Render(redis::Connection& redis, const std::string& key) {
  auto type = redis.Command({"TYPE", key});
  EXPECT_TRUE(type.ok()) << type.status();
  const std::string kind = type.ok() ? type->str() : "error";
  std::string out = kind + "|";
  if (kind == "string") {
    out += Framed(redis.Command({"GET", key})->str());
  } else if (kind == "hash") {
    auto all = redis.Command({"HGETALL", key});
    std::vector<std::string> pairs;
    for (size_t i = 0; i + 1 < all->elements().size(); i += 2) {
      pairs.push_back(Framed(all->elements()[i].str()) + Framed(all->elements()[i + 1].str()));
    }
    std::sort(pairs.begin(), pairs.end());
    for (const std::string& p : pairs) out += p;
  } else if (kind == "set") {
    auto members = redis.Command({"SMEMBERS", key});
    std::vector<std::string> sorted;
    for (const redis::Reply& m : members->elements()) sorted.push_back(Framed(m.str()));
    std::sort(sorted.begin(), sorted.end());
    for (const std::string& m : sorted) out += m;
  } else if (kind == "list") {
    auto items = redis.Command({"LRANGE", key, "0", "-1"});
    for (const redis::Reply& m : items->elements()) out += Framed(m.str());
  } else if (kind == "zset") {
    auto items = redis.Command({"ZRANGE", key, "0", "-1", "WITHSCORES"});
    for (const redis::Reply& m : items->elements()) out += Framed(m.str());
  } else {
    ADD_FAILURE() << "snapshot does not know type " << kind;
  }
  return out;
}

}  // namespace

std::map<std::string, std::string> Snapshot(redis::Connection& redis, const std::string& prefix) {
  std::map<std::string, std::string> snapshot;
  std::string cursor = "0";
  do {
    auto scan = redis.Command({"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
    EXPECT_TRUE(scan.ok()) << scan.status();
    if (!scan.ok()) break;
    cursor = scan->elements()[0].str();
    for (const redis::Reply& key : scan->elements()[1].elements()) {
      snapshot[key.str().substr(prefix.size())] = Render(redis, key.str());
    }
  } while (cursor != "0");
  return snapshot;
}

}  // namespace clinical::projection::testing

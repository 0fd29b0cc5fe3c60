// Integration tests of the projection runtime against the platform's real Kafka and Redis
// (and, for outages, a redis-server started here). Each test uses its own topics and key
// root, so tests never see each other's data.
#include "clinical/projection/projection.h"

#include <signal.h>

#include <atomic>
#include <iostream>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "clinical/kafka/client_config.h"
#include "clinical/projection/versions.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/wait.h"
#include "counter_model.h"
#include "gtest/gtest.h"
#include "test_support.h"

namespace clinical::projection {
namespace {

using clinical::testing::Platform;
using clinical::testing::UniqueName;
using clinical::testing::WaitUntil;
using testing::ConnectPlatformRedis;
using testing::CounterModel;
using testing::Landed;
using testing::MakeEvent;
using testing::TestProducer;

constexpr absl::Duration kCatchUp = absl::Seconds(60);

class ProjectionTest : public ::testing::Test {
 protected:
  ProjectionOptions Options(const std::string& root) {
    ProjectionOptions options;
    // The test harness's principals (admin); crash_test.cc runs the runtime as the views.
    options.kafka = Platform::Get().kafka_admin;
    options.redis = Platform::Get().redis_admin;
    options.root = root;
    options.dead_letter_topic = UniqueName("projection-test-dlq");
    options.max_backoff = absl::Milliseconds(500);
    return options;
  }

  std::unique_ptr<Projection> Make(const ProjectionOptions& options, const ReadModel& model) {
    auto projection = Projection::Create(options, model, logger_);
    EXPECT_TRUE(projection.ok()) << projection.status();
    return std::move(*projection);
  }

  // `count` events over `aggregates` aggregates in transactions of `per_transaction`;
  // versions continue from `versions` (per aggregate), which is updated.
  std::vector<Landed> ProduceCounted(const std::string& topic, int count, int aggregates,
                                     int per_transaction, std::map<std::string, int64_t>& versions) {
    std::vector<Landed> landed;
    std::vector<std::pair<std::string, std::string>> batch;
    for (int i = 0; i < count; ++i) {
      const std::string aggregate = absl::StrCat("agg-", i % aggregates);
      batch.emplace_back(aggregate, MakeEvent(aggregate, ++versions[aggregate]));
      if (static_cast<int>(batch.size()) == per_transaction || i + 1 == count) {
        auto sent = producer_.Send(topic, batch);
        landed.insert(landed.end(), sent.begin(), sent.end());
        batch.clear();
      }
    }
    return landed;
  }

  int64_t Integer(redis::Connection& redis, const redis::Args& command) {
    auto reply = redis.Command(command);
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok() || reply->is_nil()) return -1;
    if (reply->type() == redis::Reply::Type::kInteger) return reply->integer();
    int64_t value = -1;
    EXPECT_TRUE(absl::SimpleAtoi(reply->str(), &value));
    return value;
  }

  // The sample view's per-aggregate counters match what was produced.
  void ExpectCounters(redis::Connection& redis, const KeySpace& keys,
                      const std::map<std::string, int64_t>& versions) {
    int64_t total = 0;
    for (const auto& [aggregate, version] : versions) {
      const std::string key = keys.Key("agg:" + aggregate);
      EXPECT_EQ(Integer(redis, {"HGET", key, "events"}), version) << aggregate;
      EXPECT_EQ(Integer(redis, {"HGET", key, "last_version"}), version) << aggregate;
      total += version;
    }
    EXPECT_EQ(Integer(redis, {"GET", keys.Key("total")}), total);
    EXPECT_EQ(Integer(redis, {"SCARD", keys.Key("aggregates")}),
              static_cast<int64_t>(versions.size()));
  }

  logging::Logger logger_{"projection-test", std::cerr, logging::Level::kInfo};
  TestProducer producer_;
  redis::Connection redis_ = ConnectPlatformRedis();
};

TEST_F(ProjectionTest, AppliesEachCommittedEventOnceAndStoresOffsetsWithThem) {
  const std::string topic = testing::CreateTopic("projection-exact", 3);
  std::map<std::string, int64_t> versions;
  auto landed = ProduceCounted(topic, 300, 20, 50, versions);
  // An aborted transaction in the middle: read_committed must never apply it.
  producer_.Send(topic, {{"aborted-agg", MakeEvent("aborted-agg", 1)}}, /*commit=*/false);
  auto more = ProduceCounted(topic, 60, 20, 30, versions);
  landed.insert(landed.end(), more.begin(), more.end());

  CounterModel model({topic});
  auto projection = Make(Options(UniqueName("exact")), model);
  projection->Start();
  const auto last = testing::LastOffsets(landed);
  ASSERT_TRUE(WaitUntil(
      [&] { return testing::OffsetsReached(redis_, projection->keys().prefix(), topic, last); },
      kCatchUp));
  ExpectCounters(redis_, projection->keys(), versions);
  EXPECT_EQ(Integer(redis_, {"EXISTS", projection->keys().Key("agg:aborted-agg")}), 0);
  for (const auto& [partition, offset] : last) {
    EXPECT_EQ(Integer(redis_, {"GET", projection->keys().OffsetKey(topic, partition)}), offset);
  }
  ASSERT_TRUE(WaitUntil([&] { return projection->Stats().caught_up; }, kCatchUp));
  const ProjectionStats stats = projection->Stats();
  EXPECT_EQ(stats.events_applied, 360);
  EXPECT_GT(stats.batches, 0);
  EXPECT_GT(stats.apply_latency_total, absl::ZeroDuration());
  EXPECT_TRUE(stats.status.ok());
  ASSERT_EQ(stats.partitions.size(), 3u);
  for (const PartitionStats& p : stats.partitions) {
    EXPECT_EQ(p.applied_offset, last.at(p.partition));
    EXPECT_EQ(p.lag, 0) << "partition " << p.partition << " hw " << p.high_watermark;
  }
}

// A concurrent reader must never see the effects of a batch without its offset or the
// other way round: each observed offset determines exactly how many events are counted.
TEST_F(ProjectionTest, ReaderNeverSeesEffectsWithoutTheirOffset) {
  const std::string topic = testing::CreateTopic("projection-atomic", 1);
  std::map<std::string, int64_t> versions;
  const auto landed = ProduceCounted(topic, 2000, 10, 100, versions);
  std::vector<int64_t> offsets;
  for (const Landed& l : landed) offsets.push_back(l.offset);
  std::sort(offsets.begin(), offsets.end());

  CounterModel model({topic});
  ProjectionOptions options = Options(UniqueName("atomic"));
  options.max_batch_events = 25;  // many small transactions to observe between
  auto projection = Make(options, model);
  const std::string offset_key = projection->keys().OffsetKey(topic, 0);
  const std::string total_key = projection->keys().Key("total");
  projection->Start();

  int observations = 0, torn = 0;
  redis::Connection reader = ConnectPlatformRedis();
  const absl::Time deadline = absl::Now() + kCatchUp;
  int64_t offset = -1;
  while (offset < offsets.back() && absl::Now() < deadline) {
    auto replies = reader.Pipeline({{"MULTI"}, {"GET", offset_key}, {"GET", total_key}, {"EXEC"}});
    ASSERT_TRUE(replies.ok()) << replies.status();
    const auto& both = replies->back().elements();
    ASSERT_EQ(both.size(), 2u);
    if (both[0].is_nil()) continue;
    ASSERT_TRUE(absl::SimpleAtoi(both[0].str(), &offset));
    int64_t total = 0;
    if (!both[1].is_nil()) {
      ASSERT_TRUE(absl::SimpleAtoi(both[1].str(), &total));
    }
    const int64_t expected =
        std::upper_bound(offsets.begin(), offsets.end(), offset) - offsets.begin();
    ++observations;
    if (total != expected) ++torn;
  }
  EXPECT_EQ(offset, offsets.back());
  EXPECT_GT(observations, 10);
  EXPECT_EQ(torn, 0);
  // The offset is in Redis a moment before the runtime has counted the batch.
  EXPECT_TRUE(WaitUntil([&] { return projection->Stats().batches >= 2000 / 25; },
                        absl::Seconds(10)))
      << projection->Stats().batches;
}

TEST_F(ProjectionTest, RestartResumesFromRedisOffsetsAndIgnoresKafkaGroupOffsets) {
  const std::string topic = testing::CreateTopic("projection-restart", 3);
  std::map<std::string, int64_t> versions;
  auto landed = ProduceCounted(topic, 150, 15, 50, versions);
  CounterModel model({topic});
  ProjectionOptions options = Options(UniqueName("restart"));
  options.consumer_group = UniqueName("restart-group");
  {
    auto first = Make(options, model);
    first->Start();
    ASSERT_TRUE(WaitUntil(
        [&] {
          return testing::OffsetsReached(redis_, first->keys().prefix(), topic,
                                         testing::LastOffsets(landed));
        },
        kCatchUp));
    first->Stop();
  }
  // Plant group offsets at 0: a runtime that resumed from Kafka's group offsets would
  // apply everything again.
  {
    auto conf = kafka::MakeConf(
        kafka::ConsumerDefaults(Platform::Get().kafka_admin, options.consumer_group));
    ASSERT_TRUE(conf.ok());
    std::string error;
    std::unique_ptr<RdKafka::KafkaConsumer> committer(
        RdKafka::KafkaConsumer::create(conf->get(), error));
    ASSERT_NE(committer, nullptr) << error;
    std::vector<RdKafka::TopicPartition*> zero;
    for (int p = 0; p < 3; ++p) zero.push_back(RdKafka::TopicPartition::create(topic, p, 0));
    EXPECT_EQ(committer->commitSync(zero), RdKafka::ERR_NO_ERROR);
    RdKafka::TopicPartition::destroy(zero);
    committer->close();
  }
  auto more = ProduceCounted(topic, 90, 15, 30, versions);
  landed.insert(landed.end(), more.begin(), more.end());

  auto second = Make(options, model);
  second->Start();
  ASSERT_TRUE(WaitUntil(
      [&] {
        return testing::OffsetsReached(redis_, second->keys().prefix(), topic,
                                       testing::LastOffsets(landed));
      },
      kCatchUp));
  ExpectCounters(redis_, second->keys(), versions);
  EXPECT_EQ(second->Stats().events_applied, 90) << "only the new events are applied";
}

// Two runtimes writing the same version (a zombie that did not notice its replacement):
// WATCH on the offset lets only one commit each batch, so nothing is counted twice.
TEST_F(ProjectionTest, SecondWriterOfTheSameVersionNeverDoubleApplies) {
  const std::string topic = testing::CreateTopic("projection-zombie", 3);
  CounterModel model({topic});
  ProjectionOptions options = Options(UniqueName("zombie"));
  options.max_batch_events = 20;
  auto one = Make(options, model);
  auto two = Make(options, model);
  one->Start();
  two->Start();
  // Both idle at the end of the (empty) topic, so both receive every new record at about
  // the same time and race to apply it.
  ASSERT_TRUE(WaitUntil([&] { return one->Stats().caught_up && two->Stats().caught_up; },
                        kCatchUp));
  std::map<std::string, int64_t> versions;
  auto landed = ProduceCounted(topic, 1000, 30, 50, versions);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return testing::OffsetsReached(redis_, one->keys().prefix(), topic,
                                       testing::LastOffsets(landed));
      },
      kCatchUp));
  // Both must have finished their in-flight batch before counting.
  ASSERT_TRUE(WaitUntil(
      [&] { return one->Stats().events_applied + two->Stats().events_applied == 1000; },
      absl::Seconds(10)))
      << one->Stats().events_applied << " + " << two->Stats().events_applied;
  one->Stop();
  two->Stop();
  ExpectCounters(redis_, one->keys(), versions);
  // The race really happened: a writer found the offset moved under it and re-synced.
  EXPECT_GT(one->Stats().resyncs + two->Stats().resyncs, 0);
  std::cerr << "zombie test: applied " << one->Stats().events_applied << " + "
            << two->Stats().events_applied << ", resyncs " << one->Stats().resyncs << " + "
            << two->Stats().resyncs << "\n";
}

TEST_F(ProjectionTest, PoisonEventsGoToTheDeadLetterTopicAndLaterEventsApply) {
  const std::string topic = testing::CreateTopic("projection-poison", 1);
  const std::string undecodable = "\xff\xff\xff not an envelope";
  const auto landed = producer_.Send(
      topic, {{"a", MakeEvent("a", 1)},
              {"b", undecodable},
              {"c", MakeEvent("c", 1, testing::kPoisonType)},
              {"d", MakeEvent("d", 1)}});
  CounterModel model({topic});
  ProjectionOptions options = Options(UniqueName("poison"));
  auto projection = Make(options, model);
  projection->Start();
  ASSERT_TRUE(WaitUntil(
      [&] {
        return testing::OffsetsReached(redis_, projection->keys().prefix(), topic,
                                       testing::LastOffsets(landed));
      },
      kCatchUp));
  ExpectCounters(redis_, projection->keys(), {{"a", 1}, {"d", 1}});
  EXPECT_EQ(projection->Stats().dead_lettered, 2);
  EXPECT_EQ(projection->Stats().events_applied, 2);

  auto dead = testing::ReadTopic(
      options.dead_letter_topic, 1, [](const auto& r) { return r.size() >= 2; }, kCatchUp);
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0].key, absl::StrCat(topic, "/0/", landed[1].offset));
  EXPECT_EQ(dead[0].value, undecodable) << "the original bytes";
  EXPECT_EQ(dead[0].headers["reason"], "undecodable envelope");
  EXPECT_EQ(dead[0].headers["source.topic"], topic);
  EXPECT_EQ(dead[0].headers["source.partition"], "0");
  EXPECT_EQ(dead[0].headers["source.offset"], absl::StrCat(landed[1].offset));
  EXPECT_EQ(dead[1].key, absl::StrCat(topic, "/0/", landed[2].offset));
  EXPECT_EQ(dead[1].headers["reason"],
            absl::StrCat("INVALID_ARGUMENT: counters view cannot handle event type ",
                         testing::kPoisonType));
  EXPECT_EQ(dead[1].headers["projection"], projection->keys().prefix());
}

TEST_F(ProjectionTest, WaitForPositionReturnsOnceTheEventIsReadable) {
  const std::string topic = testing::CreateTopic("projection-wait", 2);
  CounterModel model({topic});
  auto projection = Make(Options(UniqueName("wait")), model);
  projection->Start();
  ASSERT_TRUE(WaitUntil([&] { return projection->Stats().caught_up; }, kCatchUp));

  for (int i = 1; i <= 3; ++i) {
    const Landed at = producer_.Send(topic, {{"case-7", MakeEvent("case-7", i)}}).front();
    ASSERT_TRUE(projection
                    ->WaitForPosition(topic, at.partition, at.offset, absl::Now() + kCatchUp)
                    .ok());
    // Read-your-writes: the effect is visible as soon as the wait returns.
    EXPECT_EQ(Integer(redis_, {"HGET", projection->keys().Key("agg:case-7"), "events"}), i);
  }
  const absl::Time start = absl::Now();
  EXPECT_EQ(projection->WaitForPosition(topic, 0, 1'000'000, start + absl::Milliseconds(300))
                .code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  EXPECT_EQ(projection->WaitForPosition("no-such-topic", 0, 0, absl::Now() + absl::Milliseconds(50))
                .code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ProjectionTest, RebuildUnderQueryLoadSwitchesAtomicallyAndDropsTheOldVersion) {
  const std::string topic = testing::CreateTopic("projection-rebuild", 3);
  std::map<std::string, int64_t> versions;
  const auto landed = ProduceCounted(topic, 900, 40, 150, versions);
  const std::string root = UniqueName("rebuild");
  CounterModel model({topic});

  ProjectionOptions v1_options = Options(root);
  v1_options.version = "v1";
  v1_options.activate_when_caught_up = true;
  auto v1 = Make(v1_options, model);
  v1->Start();
  ASSERT_TRUE(WaitUntil([&] { return v1->Stats().active; }, kCatchUp));
  ASSERT_EQ(**ActiveVersion(redis_, root), "v1");

  // Query load: every read must see a complete view (all 900 events) of one version.
  std::atomic<bool> stop_reading{false};
  std::atomic<int> reads_v1{0}, reads_v2{0}, bad{0}, errors{0};
  std::thread reader([&] {
    redis::Connection redis = ConnectPlatformRedis();
    while (!stop_reading) {
      auto read = ReadActive(redis, root, [](const KeySpace& keys) {
        return std::vector<redis::Args>{{"GET", keys.Key("total")},
                                        {"SCARD", keys.Key("aggregates")}};
      });
      if (!read.ok()) {
        ++errors;
        continue;
      }
      (read->version == "v1" ? reads_v1 : reads_v2)++;
      if (read->replies[0].str() != "900" || read->replies[1].integer() != 40) ++bad;
    }
  });

  ProjectionOptions v2_options = Options(root);
  v2_options.version = "v2";
  v2_options.activate_when_caught_up = true;
  v2_options.max_batch_events = 50;  // a slower build, so readers overlap with it
  auto v2 = Make(v2_options, model);
  v2->Start();
  ASSERT_TRUE(WaitUntil([&] { return v2->Stats().active; }, kCatchUp));
  EXPECT_EQ(**ActiveVersion(redis_, root), "v2");
  ASSERT_TRUE(WaitUntil([&] { return reads_v2 > 50; }, absl::Seconds(30)));

  v1->Stop();
  EXPECT_EQ(testing::Snapshot(redis_, v1->keys().prefix()),
            testing::Snapshot(redis_, v2->keys().prefix()));
  EXPECT_EQ(DropVersion(redis_, root, "v2").status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto dropped = DropVersion(redis_, root, "v1");
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_EQ(*dropped, 40 + 2 + 3);  // aggregates, total + set, offsets
  EXPECT_TRUE(testing::Snapshot(redis_, v1->keys().prefix()).empty());
  const int after_drop = reads_v2;
  ASSERT_TRUE(WaitUntil([&] { return reads_v2 > after_drop + 50; }, absl::Seconds(30)));
  stop_reading = true;
  reader.join();
  EXPECT_GT(reads_v1, 0);
  EXPECT_EQ(bad, 0) << "a reader saw a half-built view";
  EXPECT_EQ(errors, 0);
  (void)landed;
}

TEST_F(ProjectionTest, RedisOutageStopsProgressAndRecoveryNeitherLosesNorRepeats) {
  const int port = testing::FreePort();
  const std::string topic = testing::CreateTopic("projection-outage", 3);
  std::map<std::string, int64_t> versions;
  auto landed = ProduceCounted(topic, 200, 12, 50, versions);
  CounterModel model({topic});
  ProjectionOptions options = Options(UniqueName("outage"));
  // A private redis-server of this test (no ACL users): nothing listens yet.
  options.redis = redis::Endpoint{"127.0.0.1", port, "", ""};
  options.redis_timeout = absl::Milliseconds(500);
  options.max_backoff = absl::Milliseconds(200);
  auto projection = Make(options, model);
  projection->Start();
  ASSERT_TRUE(WaitUntil([&] { return projection->Stats().redis_errors >= 3; }, kCatchUp));
  EXPECT_EQ(projection->Stats().events_applied, 0);
  EXPECT_TRUE(projection->Stats().status.ok());

  auto server = testing::StartRedisServer(port);
  redis::Connection redis = testing::ConnectRedis(options.redis);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return testing::OffsetsReached(redis, projection->keys().prefix(), topic,
                                       testing::LastOffsets(landed));
      },
      kCatchUp));
  ExpectCounters(redis, projection->keys(), versions);
  ASSERT_TRUE(WaitUntil([&] { return projection->Stats().caught_up; }, kCatchUp));

  // Redis dies (and, started without persistence, comes back empty).
  server->Signal(SIGKILL);
  ASSERT_TRUE(server->Wait(absl::Seconds(10)).has_value());
  const int64_t errors_before = projection->Stats().redis_errors;
  const int64_t applied_before = projection->Stats().events_applied;
  auto more = ProduceCounted(topic, 100, 12, 100, versions);
  landed.insert(landed.end(), more.begin(), more.end());
  ASSERT_TRUE(WaitUntil(
      [&] {
        const ProjectionStats stats = projection->Stats();
        int64_t lag = 0;
        for (const PartitionStats& p : stats.partitions) lag += std::max<int64_t>(p.lag, 0);
        return stats.redis_errors > errors_before + 2 && lag >= 100;
      },
      kCatchUp))
      << "lag must show the unapplied events while Redis is down";
  EXPECT_EQ(projection->Stats().events_applied, applied_before) << "no progress without Redis";

  server = testing::StartRedisServer(port);
  redis = testing::ConnectRedis(options.redis);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return testing::OffsetsReached(redis, projection->keys().prefix(), topic,
                                       testing::LastOffsets(landed));
      },
      kCatchUp));
  ExpectCounters(redis, projection->keys(), versions);
  EXPECT_GE(projection->Stats().resyncs, 1) << "the emptied Redis must trigger a replay";
  projection->Stop();
}

TEST_F(ProjectionTest, UnreachableBrokerIsRetriedAndStopStaysPrompt) {
  CounterModel model({"any-topic"});
  ProjectionOptions options = Options(UniqueName("nobroker"));
  options.kafka.bootstrap = absl::StrCat("127.0.0.1:", testing::FreePort());
  options.kafka_timeout = absl::Milliseconds(300);
  options.max_backoff = absl::Milliseconds(100);
  auto projection = Make(options, model);
  projection->Start();
  ASSERT_TRUE(WaitUntil([&] { return projection->Stats().kafka_errors >= 3; }, kCatchUp));
  EXPECT_TRUE(projection->Stats().status.ok());
  const absl::Time start = absl::Now();
  projection->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(ProjectionTest, RunTimeRedisErrorStopsTheRuntimeWithInternal) {
  const std::string topic = testing::CreateTopic("projection-bug", 1);
  const auto landed = producer_.Send(
      topic, {{"a", MakeEvent("a", 1)}, {"a", MakeEvent("a", 2, testing::kBuggyType)}});
  CounterModel model({topic});
  auto projection = Make(Options(UniqueName("bug")), model);
  projection->Start();
  ASSERT_TRUE(WaitUntil([&] { return !projection->Stats().status.ok(); }, kCatchUp));
  EXPECT_EQ(projection->Stats().status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(projection->Stats().status.message().find("WRONGTYPE"), std::string::npos);
  EXPECT_EQ(projection->WaitForPosition(topic, 0, landed.back().offset, absl::Now() + kCatchUp)
                .code(),
            absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace clinical::projection

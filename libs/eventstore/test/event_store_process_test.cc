// Failure tests with real processes: a writer killed with SIGKILL in the middle of its
// transactions, and the Kafka broker stopped and restarted under appends.
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "clinical/eventstore/event_store.h"
#include "clinical/kafka/admin.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/subprocess.h"
#include "clinical/testing/wait.h"
#include "gtest/gtest.h"
#include "test_events.h"

namespace clinical::eventstore {
namespace {

using ::clinical::testing::Platform;
using ::clinical::testing::Subprocess;
using ::clinical::testing::UniqueName;
using testing::MakeRequest;

// A case-service-like topic (clinical.case.*), created by the harness as admin.
std::string CreateTopic(const kafka::Cluster& admin, int partitions) {
  const std::string topic = UniqueName("clinical.case.eventstore-process-test");
  kafka::TopicSpec spec;
  spec.name = topic;
  spec.partitions = partitions;
  const absl::Status created = kafka::EnsureTopics(admin, {spec}, absl::Seconds(60));
  EXPECT_TRUE(created.ok()) << created;
  return topic;
}

std::vector<LoggedEvent> ReadAll(const kafka::Cluster& cluster, const std::string& topic) {
  std::vector<LoggedEvent> events;
  const absl::Status read = ReadLog(cluster, topic, ReplayStart{}, [&](const LoggedEvent& e) {
    events.push_back(e);
    return true;
  });
  EXPECT_TRUE(read.ok()) << read;
  return events;
}

// Every aggregate's versions run 1..n in log order; every command's events are all there.
void ExpectWholeCommandsAndGaplessVersions(const std::vector<LoggedEvent>& events,
                                           size_t events_per_command) {
  std::map<std::string, int64_t> versions;
  std::map<std::string, size_t> command_sizes;
  for (const LoggedEvent& e : events) {
    const auto& envelope = e.envelope;
    EXPECT_EQ(envelope.aggregate_version(), ++versions[envelope.aggregate_id()])
        << envelope.aggregate_id() << " at offset " << e.offset;
    ++command_sizes[absl::StrCat(envelope.aggregate_id(), "/", envelope.command_id())];
  }
  for (const auto& [command, size] : command_sizes) {
    EXPECT_EQ(size, events_per_command) << "command " << command << " is partial or duplicated";
  }
}

TEST(EventStoreProcessTest, WriterKilledMidTransactionLeavesNoPartialBatchAndNewOwnerContinues) {
  const std::string topic = CreateTopic(Platform::Get().kafka_admin, 3);
  // Both writers run as the case service's principal: its ACLs must allow the fencing
  // hand-over (transactional ids under case-service).
  const kafka::Cluster cluster = Platform::Get().KafkaAs("case");
  const std::string writer_id = UniqueName("case-service.killed-writer");
  constexpr int kEventsPerCommand = 5;
  auto writer = Subprocess::Start({clinical::testing::BinaryPath("libs/eventstore/eventstore_test_writer"),
                                   "--topic=" + topic, "--writer-id=" + writer_id, "--threads=8",
                                   absl::StrCat("--events-per-command=", kEventsPerCommand)},
                                  Platform::Get().ClientEnvironment("case"));
  ASSERT_TRUE(writer.ok()) << writer.status();
  std::set<std::string> acked;
  ASSERT_TRUE(clinical::testing::WaitUntil(
      [&] {
        acked.clear();
        for (const std::string& line : (*writer)->Lines()) {
          if (line.starts_with("acked ")) acked.insert(std::vector<std::string>(absl::StrSplit(line, ' '))[1]);
        }
        return acked.size() >= 200;
      },
      absl::Seconds(60)))
      << "writer made no progress";
  (*writer)->Signal(SIGKILL);
  ASSERT_TRUE((*writer)->Wait(absl::Seconds(10)).has_value());
  for (const std::string& line : (*writer)->Lines()) {  // acks printed before the kill
    if (line.starts_with("acked ")) acked.insert(std::vector<std::string>(absl::StrSplit(line, ' '))[1]);
  }

  // The new owner fences the dead writer's transactional ids, which aborts whatever
  // transaction it left open, and rebuilds from what was committed.
  std::ostringstream log;
  logging::Logger logger("test", log);
  StoreOptions options;
  options.cluster = cluster;
  options.topic = topic;
  options.aggregate_type = "case";
  options.writer_id = writer_id;
  auto owner = EventStore::Open(options, logger);
  ASSERT_TRUE(owner.ok());
  ASSERT_TRUE((*owner)->Acquire().ok());

  const std::vector<LoggedEvent> events = ReadAll(cluster, topic);
  ExpectWholeCommandsAndGaplessVersions(events, kEventsPerCommand);
  std::set<std::string> logged;
  for (const LoggedEvent& e : events) logged.insert(e.envelope.command_id());
  for (const std::string& command : acked) EXPECT_TRUE(logged.contains(command)) << "lost " << command;

  const int64_t version = *(*owner)->CurrentVersion("case-0");
  ASSERT_GT(version, 0);
  auto next = (*owner)->Append(MakeRequest("case-0", "after-kill", 1, ExpectedVersion::Exactly(version)));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->last_version, version + 1);
}

// A broker of this test's own (the shared one serves other tests in parallel), stopped and
// started again on the same ports by deploy/local/platform.sh: Kafka only, as secured as the
// shared one.
class PrivateBroker {
 public:
  PrivateBroker() : dir_(absl::StrCat(clinical::testing::BinaryPath("test-platform-"), UniqueName("broker"))) {}
  ~PrivateBroker() {
    Run("clean");
  }
  bool Run(const std::string& command) {
    const std::string line = absl::StrCat("CLINICAL_PLATFORM_DIR='", dir_, "' CLINICAL_PLATFORM_COMPONENTS=kafka '",
                                          clinical::testing::SourcePath("deploy/local/platform.sh"),
                                          "' ", command, " >>'", dir_, ".log' 2>&1");
    return std::system(line.c_str()) == 0;
  }
  // The admin principal of this broker (empty bootstrap if it did not start).
  kafka::Cluster Admin() {
    auto platform = clinical::testing::Platform::Load(dir_ + "/platform.env");
    EXPECT_TRUE(platform.ok()) << platform.status();
    return platform.ok() ? platform->kafka_admin : kafka::Cluster{};
  }

 private:
  std::string dir_;
};

TEST(EventStoreProcessTest, BrokerRestartDuringAppendsLosesAndDuplicatesNothing) {
  PrivateBroker broker;
  ASSERT_TRUE(broker.Run("start"));
  const kafka::Cluster admin = broker.Admin();
  ASSERT_FALSE(admin.bootstrap.empty());
  const std::string topic = CreateTopic(admin, 3);

  std::ostringstream log;
  logging::Logger logger("test", log);
  StoreOptions options;
  options.cluster = admin;
  options.topic = topic;
  options.aggregate_type = "case";
  options.writer_id = UniqueName("restart-writer");
  options.kafka_timeout = absl::Seconds(5);
  auto store = EventStore::Open(options, logger);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Acquire().ok());

  // Clients retry UNAVAILABLE with the same command id, as the API contract tells them to.
  constexpr int kClients = 4, kCommandsEach = 60;
  std::atomic<int> acknowledged{0}, unavailable{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kCommandsEach; ++i) {
        const std::string command = absl::StrCat("c", c, "-", i);
        const absl::Time give_up = absl::Now() + absl::Seconds(120);
        while (true) {
          auto result = (*store)->Append(MakeRequest(absl::StrCat("case-", (c * 7 + i) % 10), command, 2));
          if (result.ok()) break;
          ASSERT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
          ++unavailable;
          ASSERT_LT(absl::Now(), give_up) << "no recovery after the broker came back";
        }
        ++acknowledged;
      }
    });
  }
  ASSERT_TRUE(clinical::testing::WaitUntil([&] { return acknowledged >= 40; }, absl::Seconds(60)));
  ASSERT_TRUE(broker.Run("stop"));
  ASSERT_TRUE(clinical::testing::WaitUntil([&] { return unavailable > 0; }, absl::Seconds(60)))
      << "appends kept succeeding with the broker down";
  ASSERT_TRUE(broker.Run("start"));
  for (auto& t : clients) t.join();
  ASSERT_EQ(acknowledged, kClients * kCommandsEach);

  const std::vector<LoggedEvent> events = ReadAll(admin, topic);
  ExpectWholeCommandsAndGaplessVersions(events, 2);
  EXPECT_EQ(events.size(), static_cast<size_t>(2 * kClients * kCommandsEach))
      << "every acknowledged command exactly once";
  EXPECT_GT((*store)->Stats().recoveries, 0);
}

}  // namespace
}  // namespace clinical::eventstore

// The event store against the real Kafka broker: appends, optimistic concurrency,
// idempotent retries, group commit, ownership and fencing, rebuild on acquire, replay.
#include "clinical/eventstore/event_store.h"

#include <atomic>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "clinical/kafka/admin.h"
#include "clinical/testing/platform.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "google/protobuf/wrappers.pb.h"
#include "test_events.h"

namespace clinical::eventstore {
namespace {

using ::clinical::testing::Platform;
using ::clinical::testing::UniqueName;
using ::testing::HasSubstr;
using testing::MakeRequest;
using testing::PayloadText;

class EventStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    topic_ = UniqueName("eventstore-test");
    kafka::TopicSpec spec;
    spec.name = topic_;
    spec.partitions = 4;
    ASSERT_TRUE(kafka::EnsureTopics(Platform::Get().kafka_admin, {spec}, absl::Seconds(30)).ok());
    writer_id_ = UniqueName("writer");
  }

  std::unique_ptr<EventStore> OpenStore(int max_batch = 512, int64_t checkpoint_every = 50'000) {
    StoreOptions options;
    options.checkpoint_every_events = checkpoint_every;
    options.cluster = Platform::Get().kafka_admin;
    options.topic = topic_;
    options.aggregate_type = "case";
    options.writer_id = writer_id_;
    options.max_batch_appends = max_batch;
    auto store = EventStore::Open(options, logger_);
    EXPECT_TRUE(store.ok()) << store.status();
    return std::move(*store);
  }

  std::unique_ptr<EventStore> OpenOwner(int64_t checkpoint_every = 50'000) {
    auto store = OpenStore(512, checkpoint_every);
    const absl::Status acquired = store->Acquire();
    EXPECT_TRUE(acquired.ok()) << acquired;
    return store;
  }

  std::vector<LoggedEvent> ReadAll() {
    std::vector<LoggedEvent> events;
    const absl::Status read = ReadLog(Platform::Get().kafka_admin, topic_, ReplayStart{},
                                      [&](const LoggedEvent& e) {
                                        events.push_back(e);
                                        return true;
                                      });
    EXPECT_TRUE(read.ok()) << read;
    return events;
  }

  std::string topic_;
  std::string writer_id_;
  std::ostringstream log_;
  logging::Logger logger_{"test", log_};
};

TEST_F(EventStoreTest, AppendsAndLoadsAnAggregatesEventsInOrder) {
  auto store = OpenOwner();
  auto first = store->Append(MakeRequest("case-1", "cmd-1", 2, ExpectedVersion::NoStream()));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->first_version, 1);
  EXPECT_EQ(first->last_version, 2);
  EXPECT_FALSE(first->duplicate);
  EXPECT_EQ(first->position.topic(), topic_);
  EXPECT_EQ(first->position.partition(), store->PartitionOf("case-1"));

  auto second = store->Append(MakeRequest("case-1", "cmd-2", 1, ExpectedVersion::Exactly(2)));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->last_version, 3);
  EXPECT_GT(second->position.offset(), first->position.offset());

  auto events = store->Load("case-1");
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const auto& envelope = (*events)[i].envelope;
    EXPECT_EQ(envelope.aggregate_version(), i + 1);
    EXPECT_EQ(envelope.aggregate_type(), "case");
    EXPECT_EQ(envelope.aggregate_id(), "case-1");
    EXPECT_EQ(envelope.event_id().size(), 36u);
    EXPECT_TRUE(envelope.has_recorded_at());
  }
  EXPECT_EQ(PayloadText((*events)[2].envelope), "cmd-2#0");
  EXPECT_EQ(events->back().offset, second->position.offset());

  auto tail = store->Load("case-1", 3);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 1u);
  EXPECT_EQ((*tail)[0].envelope.command_id(), "cmd-2");
  EXPECT_EQ(*store->CurrentVersion("case-1"), 3);
  EXPECT_EQ(*store->CurrentVersion("case-unknown"), 0);
}

TEST_F(EventStoreTest, VersionConflictIsAbortedAndWritesNothing) {
  auto store = OpenOwner();
  ASSERT_TRUE(store->Append(MakeRequest("case-1", "cmd-1", 1)).ok());
  auto conflict = store->Append(MakeRequest("case-1", "cmd-2", 1, ExpectedVersion::Exactly(0)));
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(conflict.status().message(), HasSubstr("at version 1"));
  auto invalid = store->Append(MakeRequest("case-1", "", 1));
  EXPECT_EQ(invalid.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadAll().size(), 1u);
}

TEST_F(EventStoreTest, RetriedCommandIdReturnsTheFirstResultAndWritesNothing) {
  auto store = OpenOwner();
  auto first = store->Append(MakeRequest("case-1", "cmd-1", 2, ExpectedVersion::NoStream()));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(store->Append(MakeRequest("case-1", "cmd-2", 1)).ok());
  // The retry carries the stale expected version of the first attempt.
  auto retry = store->Append(MakeRequest("case-1", "cmd-1", 2, ExpectedVersion::NoStream()));
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->first_version, first->first_version);
  EXPECT_EQ(retry->last_version, first->last_version);
  EXPECT_EQ(retry->position.offset(), first->position.offset());
  EXPECT_EQ(ReadAll().size(), 3u);
}

TEST_F(EventStoreTest, RacingWritersOnOneAggregateLeaveGaplessUniqueVersions) {
  auto store = OpenOwner();
  constexpr int kWriters = 8, kAppendsEach = 20;
  std::atomic<int> conflicts{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kAppendsEach;) {
        const int64_t seen = *store->CurrentVersion("case-hot");
        auto result = store->Append(MakeRequest("case-hot", absl::StrCat("w", w, "-", i), 1,
                                                ExpectedVersion::Exactly(seen)));
        if (result.ok()) {
          ++i;
        } else {
          ASSERT_EQ(result.status().code(), absl::StatusCode::kAborted) << result.status();
          ++conflicts;
        }
      }
    });
  }
  for (auto& t : writers) t.join();

  std::vector<int64_t> versions;
  std::set<std::string> commands;
  for (const LoggedEvent& e : ReadAll()) {
    versions.push_back(e.envelope.aggregate_version());
    commands.insert(e.envelope.command_id());
  }
  ASSERT_EQ(versions.size(), static_cast<size_t>(kWriters * kAppendsEach));
  for (size_t i = 0; i < versions.size(); ++i) EXPECT_EQ(versions[i], static_cast<int64_t>(i + 1));
  EXPECT_EQ(commands.size(), versions.size()) << "a command was written twice";
  RecordProperty("conflicts", conflicts.load());
}

TEST_F(EventStoreTest, ConcurrentAppendsShareTransactions) {
  auto store = OpenOwner();
  constexpr int kClients = 32, kAppendsEach = 10;
  std::vector<std::thread> clients;
  std::atomic<int> ready{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      ++ready;
      while (ready < kClients) std::this_thread::yield();  // start together
      for (int i = 0; i < kAppendsEach; ++i) {
        // All clients write aggregates of one partition, so they share one writer.
        std::string aggregate;
        for (int k = 0;; ++k) {
          aggregate = absl::StrCat("case-", c, "-", k);
          if (store->PartitionOf(aggregate) == 0) break;
        }
        ASSERT_TRUE(store->Append(MakeRequest(aggregate, absl::StrCat("c", c, "-", i), 1)).ok());
      }
    });
  }
  for (auto& t : clients) t.join();
  const StoreStats stats = store->Stats();
  EXPECT_EQ(stats.appends_committed, kClients * kAppendsEach);
  EXPECT_LT(stats.transactions_committed, stats.appends_committed / 2)
      << "concurrent appends should share transactions (group commit)";
}

TEST_F(EventStoreTest, AppendOutsideOwnedPartitionsIsFailedPrecondition) {
  auto store = OpenStore();
  ASSERT_TRUE(store->Acquire({0}).ok());
  std::string elsewhere;
  for (int k = 0; store->PartitionOf(elsewhere = absl::StrCat("case-", k)) == 0; ++k) {
  }
  auto result = store->Append(MakeRequest(elsewhere, "cmd-1", 1));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store->OwnedPartitions(), std::vector<int32_t>{0});
}

TEST_F(EventStoreTest, ZombieOwnerIsFencedAndNothingOfItAppearsAfterTheNewOwner) {
  auto zombie = OpenOwner();
  ASSERT_TRUE(zombie->Append(MakeRequest("case-1", "a-1", 1)).ok());

  // A new owner with the same writer id takes every partition while the zombie is idle.
  auto owner = OpenOwner();
  EXPECT_EQ(*owner->CurrentVersion("case-1"), 1) << "the new owner must rebuild from the log";
  auto owners_append = owner->Append(MakeRequest("case-1", "b-1", 1, ExpectedVersion::Exactly(1)));
  ASSERT_TRUE(owners_append.ok()) << owners_append.status();

  auto zombies_append = zombie->Append(MakeRequest("case-1", "a-2", 1));
  EXPECT_EQ(zombies_append.status().code(), absl::StatusCode::kFailedPrecondition)
      << zombies_append.status();
  EXPECT_EQ(zombie->Append(MakeRequest("case-2", "a-3", 1)).status().code(),
            absl::StatusCode::kFailedPrecondition);

  std::vector<std::string> commands;
  for (const LoggedEvent& e : ReadAll()) {
    if (e.envelope.aggregate_id() == "case-1") commands.push_back(e.envelope.command_id());
  }
  EXPECT_EQ(commands, (std::vector<std::string>{"a-1", "b-1"}));
  auto after = owner->Append(MakeRequest("case-1", "b-2", 1, ExpectedVersion::Exactly(2)));
  EXPECT_TRUE(after.ok()) << after.status();
}

TEST_F(EventStoreTest, NewOwnerKnowsVersionsAndCommandsOfThePrevious) {
  AppendResult original;
  {
    auto first_owner = OpenOwner();
    auto result = first_owner->Append(MakeRequest("case-1", "cmd-1", 3, ExpectedVersion::NoStream()));
    ASSERT_TRUE(result.ok());
    original = *result;
  }  // released
  auto owner = OpenOwner();
  EXPECT_EQ(*owner->CurrentVersion("case-1"), 3);
  EXPECT_EQ(owner->Append(MakeRequest("case-1", "cmd-2", 1, ExpectedVersion::NoStream())).status().code(),
            absl::StatusCode::kAborted);
  auto retry = owner->Append(MakeRequest("case-1", "cmd-1", 3, ExpectedVersion::NoStream()));
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->position.offset(), original.position.offset());
}

TEST_F(EventStoreTest, ReadLogReplaysFromOffsetsOrFromATime) {
  auto store = OpenOwner();
  ASSERT_TRUE(store->Append(MakeRequest("case-1", "early", 1)).ok());
  ASSERT_EQ(ReadAll().size(), 1u);
  const absl::Time between = absl::Now();
  // The broker's record timestamps are the writer's clock in milliseconds; step past the
  // current millisecond so "between" separates the two appends.
  while (absl::ToUnixMillis(absl::Now()) <= absl::ToUnixMillis(between)) std::this_thread::yield();
  auto late = store->Append(MakeRequest("case-1", "late", 2));
  ASSERT_TRUE(late.ok());

  std::vector<std::string> from_time;
  ReplayStart start;
  start.from_time = between + absl::Milliseconds(1);
  ASSERT_TRUE(ReadLog(Platform::Get().kafka_admin, topic_, start, [&](const LoggedEvent& e) {
                from_time.push_back(e.envelope.command_id());
                return true;
              }).ok());
  EXPECT_EQ(from_time, (std::vector<std::string>{"late", "late"}));

  std::vector<int64_t> from_offset;
  ReplayStart at_offset;
  at_offset.from_offsets[late->position.partition()] = late->position.offset();
  ASSERT_TRUE(ReadLog(Platform::Get().kafka_admin, topic_, at_offset, [&](const LoggedEvent& e) {
                if (e.partition == late->position.partition()) from_offset.push_back(e.offset);
                return true;
              }).ok());
  EXPECT_EQ(from_offset, std::vector<int64_t>{late->position.offset()});
}

TEST_F(EventStoreTest, NewOwnerRebuildsFromTheLatestCheckpointAndReadsOnlyTheTail) {
  constexpr int kAggregates = 10, kRounds = 7;  // 70 events, a checkpoint every 20
  std::map<std::string, AppendResult> first_results;
  {
    auto first_owner = OpenOwner(/*checkpoint_every=*/20);
    for (int round = 0; round < kRounds; ++round) {
      for (int a = 0; a < kAggregates; ++a) {
        const std::string aggregate = absl::StrCat("case-", a);
        auto result = first_owner->Append(MakeRequest(aggregate, absl::StrCat("r", round), 1,
                                                      ExpectedVersion::Exactly(round)));
        ASSERT_TRUE(result.ok()) << result.status();
        if (round == kRounds - 1) first_results[aggregate] = *result;
      }
    }
    EXPECT_GE(first_owner->Stats().checkpoints_written, 2);
  }
  auto owner = OpenOwner(20);
  const StoreStats stats = owner->Stats();
  EXPECT_LT(stats.events_replayed_on_acquire, kAggregates * kRounds)
      << "the new owner should start from a checkpoint, not offset 0";
  for (int a = 0; a < kAggregates; ++a) {
    const std::string aggregate = absl::StrCat("case-", a);
    EXPECT_EQ(*owner->CurrentVersion(aggregate), kRounds);
    // A retry of the last command is still recognised after the hand-over.
    auto retry = owner->Append(MakeRequest(aggregate, absl::StrCat("r", kRounds - 1), 1));
    ASSERT_TRUE(retry.ok());
    EXPECT_TRUE(retry->duplicate);
    EXPECT_EQ(retry->position.offset(), first_results[aggregate].position.offset());
  }
  // Events from before the checkpoint are still loaded, in order.
  auto events = owner->Load("case-4");
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), static_cast<size_t>(kRounds));
  for (int v = 0; v < kRounds; ++v) EXPECT_EQ((*events)[v].envelope.aggregate_version(), v + 1);
  auto next = owner->Append(MakeRequest("case-4", "after", 1, ExpectedVersion::Exactly(kRounds)));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->last_version, kRounds + 1);
}

TEST_F(EventStoreTest, LatestSnapshotIsLoadedWithTheEventsAfterIt) {
  google::protobuf::Any state;
  google::protobuf::StringValue text;
  text.set_value("state as of version 3");
  state.PackFrom(text);
  {
    auto store = OpenOwner();
    ASSERT_TRUE(store->Append(MakeRequest("case-1", "c1", 3)).ok());
    ASSERT_TRUE(store->SaveSnapshot("case-1", 3, state).ok());
    ASSERT_TRUE(store->Append(MakeRequest("case-1", "c2", 2)).ok());
    EXPECT_EQ(store->SaveSnapshot("case-1", 99, state).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store->SaveSnapshot("case-none", 1, state).code(), absl::StatusCode::kInvalidArgument);
    auto loaded = store->LoadLatest("case-1");
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    ASSERT_TRUE(loaded->snapshot.has_value());
    EXPECT_EQ(loaded->snapshot->version(), 3);
    ASSERT_EQ(loaded->events.size(), 2u);
    EXPECT_EQ(loaded->events[0].envelope.aggregate_version(), 4);
    EXPECT_EQ(store->Stats().snapshots_written, 1);
  }
  auto owner = OpenOwner();  // a new owner finds the snapshot through the snapshot topic
  auto loaded = owner->LoadLatest("case-1");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->snapshot.has_value());
  google::protobuf::StringValue restored;
  ASSERT_TRUE(loaded->snapshot->state().UnpackTo(&restored));
  EXPECT_EQ(restored.value(), "state as of version 3");
  ASSERT_EQ(loaded->events.size(), 2u);
  EXPECT_EQ(loaded->events[1].envelope.aggregate_version(), 5);
  auto without = owner->LoadLatest("case-2");
  ASSERT_TRUE(without.ok());
  EXPECT_FALSE(without->snapshot.has_value());
  EXPECT_TRUE(without->events.empty());
}

}  // namespace
}  // namespace clinical::eventstore

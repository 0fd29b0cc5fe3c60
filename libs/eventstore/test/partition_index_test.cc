// The append rules, as pure functions: versions, optimistic concurrency, idempotency and
// validation are decided by PlanBatch from the index, before any I/O.
#include "clinical/eventstore/partition_index.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_events.h"

namespace clinical::eventstore {
namespace {

using ::testing::HasSubstr;
using testing::MakeEvent;
using testing::MakeRequest;
using Outcome = BatchPlan::Outcome;

// Records a committed command into the index, as the store does after a commit.
void Commit(PartitionIndex& index, const AppendRequest& request, int64_t first_offset) {
  int64_t version = index.Version(request.aggregate_id);
  for (size_t i = 0; i < request.events.size(); ++i) {
    common::v1::EventEnvelope event = request.events[i];
    event.set_aggregate_id(request.aggregate_id);
    event.set_aggregate_version(++version);
    event.set_command_id(request.command_id);
    ASSERT_TRUE(index.Record(event, "topic", 0, first_offset + static_cast<int64_t>(i)).ok());
  }
}

BatchPlan Plan(const PartitionIndex& index, const std::vector<AppendRequest>& requests) {
  std::vector<const AppendRequest*> pointers;
  for (const auto& r : requests) pointers.push_back(&r);
  return PlanBatch(index, pointers);
}

TEST(PlanBatchTest, NewAggregateGetsVersionsFromOne) {
  PartitionIndex index;
  auto plan = Plan(index, {MakeRequest("a", "c1", 3, ExpectedVersion::NoStream())});
  ASSERT_EQ(plan.items[0].outcome, Outcome::kWrite);
  EXPECT_EQ(plan.items[0].first_version, 1);
  EXPECT_EQ(plan.items[0].last_version, 3);
}

TEST(PlanBatchTest, CreateOfExistingAggregateIsAbortedWithCurrentVersion) {
  PartitionIndex index;
  Commit(index, MakeRequest("a", "c1", 2), 0);
  auto plan = Plan(index, {MakeRequest("a", "c2", 1, ExpectedVersion::NoStream())});
  ASSERT_EQ(plan.items[0].outcome, Outcome::kRejected);
  EXPECT_EQ(plan.items[0].rejection.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(plan.items[0].rejection.message(), HasSubstr("at version 2, expected 0"));
}

TEST(PlanBatchTest, ExactExpectedVersionMustMatch) {
  PartitionIndex index;
  Commit(index, MakeRequest("a", "c1", 2), 0);
  auto plan = Plan(index, {MakeRequest("a", "c2", 1, ExpectedVersion::Exactly(1)),
                           MakeRequest("a", "c3", 1, ExpectedVersion::Exactly(2))});
  EXPECT_EQ(plan.items[0].rejection.code(), absl::StatusCode::kAborted);
  ASSERT_EQ(plan.items[1].outcome, Outcome::kWrite);
  EXPECT_EQ(plan.items[1].first_version, 3);
}

TEST(PlanBatchTest, AnyAppendsAfterWhateverIsThere) {
  PartitionIndex index;
  Commit(index, MakeRequest("a", "c1", 4), 0);
  auto plan = Plan(index, {MakeRequest("a", "c2", 1, ExpectedVersion::Any())});
  ASSERT_EQ(plan.items[0].outcome, Outcome::kWrite);
  EXPECT_EQ(plan.items[0].first_version, 5);
}

TEST(PlanBatchTest, RetryOfAppliedCommandReturnsOriginalResultEvenWithStaleVersion) {
  PartitionIndex index;
  Commit(index, MakeRequest("a", "c1", 2, ExpectedVersion::NoStream()), 10);
  Commit(index, MakeRequest("a", "c2", 1), 12);
  auto plan = Plan(index, {MakeRequest("a", "c1", 2, ExpectedVersion::NoStream())});
  ASSERT_EQ(plan.items[0].outcome, Outcome::kAlreadyApplied);
  EXPECT_EQ(plan.items[0].result.first_version, 1);
  EXPECT_EQ(plan.items[0].result.last_version, 2);
  EXPECT_EQ(plan.items[0].result.position.offset(), 11);
  EXPECT_TRUE(plan.items[0].result.duplicate);
}

TEST(PlanBatchTest, CommandIdsAreScopedToTheirAggregate) {
  PartitionIndex index;
  Commit(index, MakeRequest("a", "c1", 1), 0);
  auto plan = Plan(index, {MakeRequest("b", "c1", 1)});
  EXPECT_EQ(plan.items[0].outcome, Outcome::kWrite);
}

TEST(PlanBatchTest, RequestsInOneBatchSeeEachOthersVersions) {
  PartitionIndex index;
  auto plan = Plan(index, {MakeRequest("a", "c1", 2, ExpectedVersion::NoStream()),
                           MakeRequest("a", "c2", 1, ExpectedVersion::Exactly(2)),
                           MakeRequest("a", "c3", 1, ExpectedVersion::NoStream())});
  EXPECT_EQ(plan.items[0].outcome, Outcome::kWrite);
  ASSERT_EQ(plan.items[1].outcome, Outcome::kWrite);
  EXPECT_EQ(plan.items[1].first_version, 3);
  EXPECT_EQ(plan.items[2].rejection.code(), absl::StatusCode::kAborted);
}

TEST(PlanBatchTest, SameCommandTwiceInOneBatchIsWrittenOnce) {
  PartitionIndex index;
  auto plan = Plan(index, {MakeRequest("a", "c1", 1), MakeRequest("a", "c1", 1)});
  EXPECT_EQ(plan.items[0].outcome, Outcome::kWrite);
  ASSERT_EQ(plan.items[1].outcome, Outcome::kSameAsEarlierInBatch);
  EXPECT_EQ(plan.items[1].same_as, 0u);
}

TEST(PlanBatchTest, RejectedCommandCanBeRetriedWithTheSameId) {
  PartitionIndex index;
  Commit(index, MakeRequest("a", "c1", 1), 0);
  auto plan = Plan(index, {MakeRequest("a", "c2", 1, ExpectedVersion::Exactly(0)),
                           MakeRequest("a", "c2", 1, ExpectedVersion::Exactly(1))});
  EXPECT_EQ(plan.items[0].outcome, Outcome::kRejected);
  EXPECT_EQ(plan.items[1].outcome, Outcome::kWrite);
}

TEST(ValidateRequestTest, NamesTheMissingField) {
  AppendRequest request = MakeRequest("a", "c1", 1);
  EXPECT_TRUE(ValidateRequest(request).ok());

  AppendRequest no_id = request;
  no_id.aggregate_id.clear();
  EXPECT_THAT(ValidateRequest(no_id).message(), HasSubstr("aggregate_id"));
  AppendRequest no_command = request;
  no_command.command_id.clear();
  EXPECT_THAT(ValidateRequest(no_command).message(), HasSubstr("command_id"));
  AppendRequest no_events = request;
  no_events.events.clear();
  EXPECT_THAT(ValidateRequest(no_events).message(), HasSubstr("events"));
  AppendRequest wrong_type = request;
  wrong_type.events[0].set_event_type("clinical.case.v1.CaseOpened");
  EXPECT_THAT(ValidateRequest(wrong_type).message(), HasSubstr("events[0].payload"));
  AppendRequest no_tenant = request;
  no_tenant.events[0].clear_tenant_id();
  EXPECT_THAT(ValidateRequest(no_tenant).message(), HasSubstr("events[0].tenant_id"));
  EXPECT_EQ(ValidateRequest(no_tenant).code(), absl::StatusCode::kInvalidArgument);
}

TEST(PartitionIndexTest, RefusesAVersionGap) {
  PartitionIndex index;
  common::v1::EventEnvelope event = MakeEvent("x");
  event.set_aggregate_id("a");
  event.set_aggregate_version(2);
  EXPECT_EQ(index.Record(event, "t", 0, 0).code(), absl::StatusCode::kInternal);
}

TEST(PartitionIndexTest, LocatesEventsByExactOffsetsAndSkipsMarkers) {
  PartitionIndex index;
  Commit(index, MakeRequest("a", "c1", 2), 5);
  EXPECT_EQ(index.Locate("a", 1).offsets, (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(index.Locate("a", 2).offsets, (std::vector<int64_t>{6}));
  EXPECT_TRUE(index.Locate("a", 3).offsets.empty());
  EXPECT_EQ(index.next_offset(), 7);
  index.AdvanceTo(9);  // a transaction marker at 7, an aborted record at 8
  EXPECT_EQ(index.next_offset(), 9);
  EXPECT_TRUE(index.Locate("nobody", 1).offsets.empty());
  EXPECT_EQ(index.Locate("nobody", 1).scan_from, -1);
}

TEST(PartitionIndexTest, RemembersOnlyTheMostRecentCommands) {
  PartitionIndex index(/*commands_kept=*/3);
  for (int i = 0; i < 5; ++i) Commit(index, MakeRequest("a", "c" + std::to_string(i), 1), i);
  EXPECT_EQ(index.FindCommand("a", "c0"), nullptr);
  EXPECT_EQ(index.FindCommand("a", "c1"), nullptr);
  ASSERT_NE(index.FindCommand("a", "c4"), nullptr);
  EXPECT_EQ(index.FindCommand("a", "c2")->last_version, 3);
  EXPECT_EQ(index.Version("a"), 5);
}

TEST(PartitionIndexTest, CheckpointRestoresVersionsCommandsAndSnapshots) {
  PartitionIndex index(4);
  for (int a = 0; a < 7; ++a) {
    Commit(index, MakeRequest("agg-" + std::to_string(a), "first", 2), a * 10);
    Commit(index, MakeRequest("agg-" + std::to_string(a), "second", 1), a * 10 + 2);
  }
  index.SetSnapshotOffset("agg-3", 41);
  index.AdvanceTo(100);
  const auto chunks = index.ToChunks(/*partition=*/2, /*sequence=*/9, /*aggregates_per_chunk=*/3);
  ASSERT_EQ(chunks.size(), 3u);  // 3 + 3 + 1 aggregates
  eventstore::v1::IndexCheckpoint manifest;
  manifest.set_partition(2);
  manifest.set_sequence(9);
  manifest.set_next_offset(index.next_offset());
  manifest.set_chunk_count(3);

  PartitionIndex restored(4);
  ASSERT_TRUE(restored.Restore(manifest, chunks, "topic").ok());
  EXPECT_EQ(restored.next_offset(), 100);
  EXPECT_EQ(restored.aggregate_count(), 7u);
  EXPECT_EQ(restored.Version("agg-5"), 3);
  const AppendResult* retry = restored.FindCommand("agg-5", "first");
  ASSERT_NE(retry, nullptr);
  EXPECT_EQ(retry->last_version, 2);
  EXPECT_EQ(retry->position.offset(), 51);
  EXPECT_EQ(retry->position.partition(), 2);
  EXPECT_EQ(restored.SnapshotOffset("agg-3"), 41);
  // Events before the checkpoint are found by scanning from the aggregate's first event;
  // events recorded after it by exact offset.
  EXPECT_TRUE(restored.Locate("agg-5", 1).offsets.empty());
  EXPECT_EQ(restored.Locate("agg-5", 1).scan_from, 50);
  common::v1::EventEnvelope next = MakeEvent("x");
  next.set_aggregate_id("agg-5");
  next.set_aggregate_version(4);
  next.set_command_id("third");
  ASSERT_TRUE(restored.Record(next, "topic", 2, 120).ok());
  EXPECT_EQ(restored.Locate("agg-5", 4).offsets, std::vector<int64_t>{120});
  EXPECT_EQ(restored.Locate("agg-5", 3).scan_from, 50);
}

TEST(PartitionIndexTest, RestoreRefusesAnIncompleteOrMixedCheckpoint) {
  PartitionIndex index;
  Commit(index, MakeRequest("a", "c1", 1), 0);
  Commit(index, MakeRequest("b", "c1", 1), 1);
  auto chunks = index.ToChunks(0, 5, 1);
  eventstore::v1::IndexCheckpoint manifest;
  manifest.set_sequence(5);
  manifest.set_chunk_count(2);
  PartitionIndex restored;
  EXPECT_FALSE(restored.Restore(manifest, {chunks[0]}, "t").ok());
  chunks[1].set_sequence(4);
  EXPECT_FALSE(restored.Restore(manifest, chunks, "t").ok());
}

}  // namespace
}  // namespace clinical::eventstore

// Unit tests of the runtime's pure core: planning a partition's batch and the shape of the
// transaction that applies it.
#include "clinical/projection/batch.h"

#include "counter_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clinical::projection {
namespace {

using ::testing::ElementsAre;

SourceRecord Record(int64_t offset, std::string value) {
  return SourceRecord{"topic-a", 2, offset, "key", std::move(value)};
}

class BatchTest : public ::testing::Test {
 protected:
  testing::CounterModel model_{{"topic-a"}};
  KeySpace keys_ = *KeySpace::Create("counters", "v1");
};

TEST_F(BatchTest, AllRecordsNewGiveAllCommandsAndTheLastOffset) {
  const BatchPlan plan = PlanBatch(
      model_, keys_, {Record(10, testing::MakeEvent("a", 1)), Record(12, testing::MakeEvent("b", 1))},
      -1);
  EXPECT_EQ(plan.commands.size(), 6u);
  EXPECT_THAT(plan.command_offsets, ElementsAre(10, 10, 10, 12, 12, 12));
  EXPECT_EQ(plan.last_offset, 12);
  EXPECT_EQ(plan.events_new, 2);
  EXPECT_EQ(plan.events_skipped, 0);
  EXPECT_TRUE(plan.dead_letters.empty());
}

TEST_F(BatchTest, RecordsAtOrBelowTheStoredOffsetAreSkipped) {
  const BatchPlan plan = PlanBatch(model_, keys_,
                                   {Record(10, testing::MakeEvent("a", 1)),
                                    Record(11, testing::MakeEvent("a", 2)),
                                    Record(12, testing::MakeEvent("a", 3))},
                                   11);
  EXPECT_EQ(plan.events_skipped, 2);
  EXPECT_EQ(plan.events_new, 1);
  EXPECT_THAT(plan.command_offsets, ElementsAre(12, 12, 12));
  EXPECT_EQ(plan.last_offset, 12);
}

TEST_F(BatchTest, FullyAppliedBatchPlansNothingAndKeepsTheStoredOffset) {
  const BatchPlan plan =
      PlanBatch(model_, keys_, {Record(3, testing::MakeEvent("a", 1))}, 5);
  EXPECT_TRUE(plan.commands.empty());
  EXPECT_EQ(plan.last_offset, 5);
  EXPECT_EQ(plan.events_skipped, 1);
}

TEST_F(BatchTest, PoisonRecordsBecomeDeadLettersAndTheRestStillApplies) {
  const BatchPlan plan = PlanBatch(model_, keys_,
                                   {Record(1, "\xff\xff not protobuf"),
                                    Record(2, testing::MakeEvent("a", 1, testing::kPoisonType)),
                                    Record(3, ""),  // decodes as an empty envelope
                                    Record(4, testing::MakeEvent("a", 1))},
                                   0);
  ASSERT_EQ(plan.dead_letters.size(), 3u);
  EXPECT_EQ(plan.dead_letters[0].record.offset, 1);
  EXPECT_EQ(plan.dead_letters[0].reason, "undecodable envelope");
  EXPECT_EQ(plan.dead_letters[1].record.offset, 2);
  EXPECT_THAT(plan.dead_letters[1].reason, ::testing::HasSubstr(testing::kPoisonType));
  EXPECT_THAT(plan.dead_letters[1].reason, ::testing::StartsWith("INVALID_ARGUMENT"));
  EXPECT_EQ(plan.dead_letters[2].reason, "envelope lacks aggregate_id or event_type");
  EXPECT_EQ(plan.dead_letters[0].record.value, "\xff\xff not protobuf");  // original bytes
  EXPECT_THAT(plan.command_offsets, ElementsAre(4, 4, 4));
  EXPECT_EQ(plan.last_offset, 4);
  EXPECT_EQ(plan.events_new, 4);
}

// A model that appends a command and then refuses: the partial output must not leak.
class HalfWayModel : public testing::CounterModel {
 public:
  using CounterModel::CounterModel;
  absl::Status Translate(const common::v1::EventEnvelope&, const KeySpace& keys,
                         std::vector<RedisCommand>& out) const override {
    out.push_back({"SET", keys.Key("half"), "1"});
    return absl::FailedPreconditionError("refused after appending");
  }
};

TEST_F(BatchTest, CommandsOfARefusedEventAreDiscarded) {
  HalfWayModel model({"topic-a"});
  const BatchPlan plan = PlanBatch(model, keys_, {Record(1, testing::MakeEvent("a", 1))}, -1);
  EXPECT_TRUE(plan.commands.empty());
  ASSERT_EQ(plan.dead_letters.size(), 1u);
  EXPECT_EQ(plan.last_offset, 1) << "the offset still passes the poison event";
}

TEST_F(BatchTest, TransactionLoadsScriptsThenAppliesThenStoresTheOffsetLast) {
  const BatchPlan plan = PlanBatch(model_, keys_, {Record(7, testing::MakeEvent("a", 1))}, -1);
  const std::vector<redis::Args> txn =
      TransactionCommands(plan, model_.Scripts(), keys_.OffsetKey("topic-a", 2));
  ASSERT_EQ(txn.size(), 1u + 1u + 3u + 1u + 1u);
  EXPECT_THAT(txn.front(), ElementsAre("MULTI"));
  EXPECT_THAT(txn[1], ElementsAre("SCRIPT", "LOAD", model_.Scripts()[0].source()));
  EXPECT_EQ(txn[2], plan.commands[0]);
  EXPECT_THAT(txn[txn.size() - 2], ElementsAre("SET", "counters:v1:_offset:topic-a:2", "7"));
  EXPECT_THAT(txn.back(), ElementsAre("EXEC"));
}

TEST_F(BatchTest, AllPoisonBatchStillAdvancesTheOffset) {
  const BatchPlan plan = PlanBatch(model_, keys_, {Record(9, "\xff")}, 3);
  const std::vector<redis::Args> txn = TransactionCommands(plan, {}, "k");
  EXPECT_THAT(txn, ElementsAre(ElementsAre("MULTI"), ElementsAre("SET", "k", "9"),
                               ElementsAre("EXEC")));
}

TEST(DeadLetterKeyTest, NamesTheSourceCoordinates) {
  EXPECT_EQ(DeadLetterKey(SourceRecord{"clinical.case.events.v1", 3, 1234, "k", "v"}),
            "clinical.case.events.v1/3/1234");
}

TEST(BackoffTest, DoublesUpToTheCapAndResets) {
  Backoff backoff(absl::Milliseconds(50), absl::Milliseconds(300));
  EXPECT_EQ(backoff.Next(), absl::Milliseconds(50));
  EXPECT_EQ(backoff.Next(), absl::Milliseconds(100));
  EXPECT_EQ(backoff.Next(), absl::Milliseconds(200));
  EXPECT_EQ(backoff.Next(), absl::Milliseconds(300));
  EXPECT_EQ(backoff.Next(), absl::Milliseconds(300));
  backoff.Reset();
  EXPECT_EQ(backoff.Next(), absl::Milliseconds(50));
}

}  // namespace
}  // namespace clinical::projection

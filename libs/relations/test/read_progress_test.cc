// The follower's bookkeeping as pure functions: how far each partition has been read, when a
// catch-up is satisfied, when "caught up" holds, which partitions a catch-up waits for, and
// the retry backoff.
#include "clinical/kafka/partitioner.h"
#include "clinical/relations/read_progress.h"
#include "gtest/gtest.h"

namespace clinical::relations {
namespace {

TEST(ReadProgressTest, RecordsAndEndsMoveThePositionForwardOnly) {
  ReadProgress progress;
  EXPECT_EQ(progress.Partitions("t"), 0) << "not found yet";
  progress.AddTopic("t", 2);
  EXPECT_EQ(progress.Partitions("t"), 2);
  progress.Record("t", 0, 4);
  EXPECT_EQ(progress.Next("t", 0), 5);
  // read_committed skips a transaction's marker: the end reported is past the last record.
  progress.End("t", 0, 6);
  EXPECT_EQ(progress.Next("t", 0), 6);
  // An end reported below what was read (a stale EOF) never moves the position back.
  progress.End("t", 0, 2);
  EXPECT_EQ(progress.Next("t", 0), 6);
  // Unknown topics and partitions are ignored, not created.
  progress.Record("t", 7, 1);
  progress.Record("other", 0, 1);
  EXPECT_EQ(progress.Next("t", 7), 0);
  EXPECT_EQ(progress.Partitions("other"), 0);
}

TEST(ReadProgressTest, PassedHoldsOnlyWhenEveryAskedPartitionIsReadToItsEnd) {
  ReadProgress progress;
  progress.AddTopic("t", 3);
  progress.Record("t", 0, 9);
  progress.Record("t", 2, 0);
  EXPECT_TRUE(progress.Passed("t", {{0, 10}}));
  EXPECT_FALSE(progress.Passed("t", {{0, 11}}));
  EXPECT_TRUE(progress.Passed("t", {{0, 10}, {1, 0}, {2, 1}})) << "an empty partition is passed at 0";
  EXPECT_FALSE(progress.Passed("t", {{0, 10}, {1, 1}, {2, 1}}));
  EXPECT_TRUE(progress.Passed("t", {})) << "nothing to wait for";
}

TEST(ReadProgressTest, CaughtUpNeedsEveryTopicFoundAndEveryPartitionReadToItsEnd) {
  ReadProgress progress;
  const std::vector<std::string> topics = {"cases", "teams"};
  EXPECT_FALSE(progress.CaughtUp(topics));
  progress.AddTopic("cases", 2);
  progress.End("cases", 0, 0);
  progress.End("cases", 1, 3);
  EXPECT_FALSE(progress.CaughtUp(topics)) << "a topic not found yet";
  progress.AddTopic("teams", 1);
  EXPECT_FALSE(progress.CaughtUp(topics)) << "found, not read to its end";
  progress.Record("teams", 0, 0);
  EXPECT_FALSE(progress.CaughtUp(topics));
  progress.End("teams", 0, 1);
  EXPECT_TRUE(progress.CaughtUp(topics));
  EXPECT_TRUE(progress.CaughtUp({"cases"}));
}

TEST(ReadProgressTest, ACatchUpWaitsForTheKeysPartitionOrForAll) {
  EXPECT_EQ(PartitionsFor("", 3), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(PartitionsFor("case-17", 3), std::vector<int32_t>{kafka::Murmur2Partition("case-17", 3)});
  EXPECT_EQ(PartitionsFor("case-17", 1), std::vector<int32_t>{0});
  EXPECT_TRUE(PartitionsFor("case-17", 0).empty()) << "a topic not found has no partitions";
}

TEST(ReadProgressTest, RetriesBackOffExponentiallyUpToFiveSeconds) {
  EXPECT_EQ(RetryBackoff(1), absl::Milliseconds(100));
  EXPECT_EQ(RetryBackoff(2), absl::Milliseconds(200));
  EXPECT_EQ(RetryBackoff(3), absl::Milliseconds(400));
  EXPECT_EQ(RetryBackoff(6), absl::Milliseconds(3200));
  EXPECT_EQ(RetryBackoff(7), absl::Seconds(5));
  EXPECT_EQ(RetryBackoff(1000), absl::Seconds(5));
}

}  // namespace
}  // namespace clinical::relations

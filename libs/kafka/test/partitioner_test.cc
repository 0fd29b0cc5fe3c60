#include "clinical/kafka/partitioner.h"

#include "gtest/gtest.h"

namespace clinical::kafka {
namespace {

// Reference values of the Java client's murmur2 (Apache Kafka's own unit test vectors).
TEST(PartitionerTest, Murmur2MatchesTheJavaClient) {
  EXPECT_EQ(Murmur2("21"), -973932308);
  EXPECT_EQ(Murmur2("foobar"), -790332482);
  EXPECT_EQ(Murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(Murmur2("a-little-bit-longer-string"), -1486304829);
  EXPECT_EQ(Murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
  EXPECT_EQ(Murmur2("abc"), 479470107);
}

TEST(PartitionerTest, PartitionIsNonNegativeAndBelowCount) {
  for (int i = 0; i < 1000; ++i) {
    const int32_t p = Murmur2Partition("aggregate-" + std::to_string(i), 12);
    EXPECT_GE(p, 0);
    EXPECT_LT(p, 12);
  }
}

}  // namespace
}  // namespace clinical::kafka

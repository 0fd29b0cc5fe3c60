// Unit tests of the read-model building blocks: key spaces and versions, Lua script
// handles, and the sample model's pure Translate.
#include "clinical/projection/read_model.h"

#include "counter_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clinical::projection {
namespace {

using ::testing::ElementsAre;

TEST(KeySpaceTest, VersionPrefixSeparatesVersionsOfOneView) {
  auto v1 = KeySpace::Create("views:caseload", "v1");
  auto v2 = KeySpace::Create("views:caseload", "v2");
  ASSERT_TRUE(v1.ok() && v2.ok());
  EXPECT_EQ(v1->prefix(), "views:caseload:v1:");
  EXPECT_EQ(v1->Key("manager:42"), "views:caseload:v1:manager:42");
  EXPECT_NE(v1->Key("x"), v2->Key("x"));
  EXPECT_EQ(v1->OffsetKey("clinical.case.events.v1", 7),
            "views:caseload:v1:_offset:clinical.case.events.v1:7");
  // The active pointer is shared by all versions and outside every version's prefix.
  EXPECT_EQ(v1->ActiveKey(), "views:caseload:active");
  EXPECT_EQ(v1->ActiveKey(), v2->ActiveKey());
  EXPECT_FALSE(v1->ActiveKey().starts_with(v1->prefix()));
}

TEST(KeySpaceTest, RejectsNamesThatWouldBreakPrefixMatching) {
  EXPECT_FALSE(KeySpace::Create("", "v1").ok());
  EXPECT_FALSE(KeySpace::Create("views*", "v1").ok());  // glob in SCAN MATCH
  EXPECT_FALSE(KeySpace::Create("views caseload", "v1").ok());
  EXPECT_FALSE(KeySpace::Create("views", "").ok());
  EXPECT_FALSE(KeySpace::Create("views", "v:1").ok());  // would nest into another prefix
  EXPECT_FALSE(KeySpace::Create("views", "active").ok());
  EXPECT_FALSE(KeySpace::Create("views", "v[1]").ok());
  EXPECT_EQ(KeySpace::Create("views", "v1*").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(KeySpace::Create("views.case-load_2", "2024-06-01.b").ok());
}

TEST(LuaScriptTest, Sha1MatchesWhatRedisComputes) {
  // Value returned by redis-server 7.0's SCRIPT LOAD for this source.
  const LuaScript script("incr", "return redis.call('INCR', KEYS[1])");
  EXPECT_EQ(script.sha1(), "61636018f4e6b5817b89791bbed242f93fa089e3");
  EXPECT_THAT(script.Call({"k1", "k2"}, {"a"}),
              ElementsAre("EVALSHA", script.sha1(), "2", "k1", "k2", "a"));
}

class CounterModelTest : public ::testing::Test {
 protected:
  absl::Status Translate(const std::string& serialized, std::vector<RedisCommand>& out) {
    common::v1::EventEnvelope event;
    EXPECT_TRUE(event.ParseFromString(serialized));
    return model_.Translate(event, keys_, out);
  }
  testing::CounterModel model_{{"topic-a"}};
  KeySpace keys_ = *KeySpace::Create("counters", "v3");
};

TEST_F(CounterModelTest, CountedEventBecomesScriptCallAndCountersUnderTheVersionPrefix) {
  std::vector<RedisCommand> out;
  ASSERT_TRUE(Translate(testing::MakeEvent("case-1", 4), out).ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_THAT(out[0], ElementsAre("EVALSHA", model_.Scripts()[0].sha1(), "1",
                                  "counters:v3:agg:case-1", "4", testing::kCountedType));
  EXPECT_THAT(out[1], ElementsAre("INCR", "counters:v3:total"));
  EXPECT_THAT(out[2], ElementsAre("SADD", "counters:v3:aggregates", "case-1"));
}

TEST_F(CounterModelTest, TranslateIsPureSameEventSameCommands) {
  std::vector<RedisCommand> first, second;
  ASSERT_TRUE(Translate(testing::MakeEvent("case-9", 2), first).ok());
  ASSERT_TRUE(Translate(testing::MakeEvent("case-9", 2), second).ok());
  EXPECT_EQ(first, second);
}

TEST_F(CounterModelTest, IgnoredEventGivesNoCommands) {
  std::vector<RedisCommand> out;
  EXPECT_TRUE(Translate(testing::MakeEvent("case-1", 1, testing::kIgnoredType), out).ok());
  EXPECT_TRUE(out.empty());
}

TEST_F(CounterModelTest, UnhandledEventIsAnErrorThatNamesTheTypeNotTheData) {
  std::vector<RedisCommand> out;
  const absl::Status status = Translate(testing::MakeEvent("case-1", 1, testing::kPoisonType), out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find(testing::kPoisonType), std::string::npos);
  EXPECT_EQ(Translate(testing::MakeEvent("case-1", 0), out).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace clinical::projection

// Proof that the local redis-server gives projections what DESIGN.md needs: a MULTI/EXEC
// block and a Lua script each apply as one step that no other client observes half-done,
// WATCH aborts a conflicting transaction whole, and an offset-guarded apply is idempotent.
#include <hiredis/hiredis.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "clinical/testing/platform.h"
#include "gtest/gtest.h"

namespace clinical {
namespace {

using testing::Platform;

struct ContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using Connection = std::unique_ptr<redisContext, ContextDeleter>;
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// As the platform's admin user: these proofs are about Redis itself, not about the ACLs
// (redis_acl_test.cc).
Connection Connect() {
  const timeval timeout{5, 0};
  const auto& redis = Platform::Get().redis_admin;
  Connection connection(redisConnectWithTimeout(redis.host.c_str(), redis.port, timeout));
  EXPECT_NE(connection, nullptr);
  EXPECT_EQ(connection->err, 0) << connection->errstr;
  Reply auth(static_cast<redisReply*>(
      redisCommand(connection.get(), "AUTH %s %s", redis.username.c_str(), redis.password.c_str())));
  EXPECT_TRUE(auth != nullptr && auth->type == REDIS_REPLY_STATUS) << "AUTH as admin failed";
  return connection;
}

template <typename... Args>
Reply Command(redisContext* c, const char* format, Args... args) {
  return Reply(static_cast<redisReply*>(redisCommand(c, format, args...)));
}

std::string Key(const std::string& name) {
  static const std::string prefix = testing::UniqueName("redis-test");
  return absl::StrCat(prefix, ":", name);
}

TEST(RedisPlatformTest, MultiExecIsNeverObservedHalfApplied) {
  Connection writer = Connect();
  Connection reader = Connect();
  const std::string a = Key("multi:a"), b = Key("multi:b");
  Command(writer.get(), "MSET %s 0 %s 0", a.c_str(), b.c_str());

  std::atomic<bool> done{false};
  std::thread writes([&] {
    Connection c = Connect();
    for (int i = 1; i <= 2000; ++i) {
      Command(c.get(), "MULTI");
      Command(c.get(), "SET %s %d", a.c_str(), i);
      Command(c.get(), "SET %s %d", b.c_str(), i);
      Reply exec = Command(c.get(), "EXEC");
      ASSERT_EQ(exec->type, REDIS_REPLY_ARRAY);
    }
    done = true;
  });
  int observations = 0, torn = 0;
  while (!done) {
    Reply both = Command(reader.get(), "MGET %s %s", a.c_str(), b.c_str());
    ASSERT_EQ(both->type, REDIS_REPLY_ARRAY);
    ++observations;
    if (std::string(both->element[0]->str) != std::string(both->element[1]->str)) ++torn;
  }
  writes.join();
  EXPECT_GT(observations, 0);
  EXPECT_EQ(torn, 0) << "a reader saw one SET of a MULTI/EXEC block without the other";
  Reply final_a = Command(reader.get(), "GET %s", a.c_str());
  EXPECT_STREQ(final_a->str, "2000");
}

TEST(RedisPlatformTest, WatchedKeyChangedByAnotherClientAbortsTheWholeTransaction) {
  Connection mine = Connect();
  Connection other = Connect();
  const std::string offset = Key("watch:offset"), data = Key("watch:data");
  Command(mine.get(), "SET %s 10", offset.c_str());

  Command(mine.get(), "WATCH %s", offset.c_str());
  Command(other.get(), "SET %s 11", offset.c_str());  // a concurrent writer moves first
  Command(mine.get(), "MULTI");
  Command(mine.get(), "SET %s mine", data.c_str());
  Command(mine.get(), "SET %s 12", offset.c_str());
  Reply exec = Command(mine.get(), "EXEC");
  EXPECT_EQ(exec->type, REDIS_REPLY_NIL) << "EXEC must refuse a transaction on a changed key";
  Reply value = Command(mine.get(), "EXISTS %s", data.c_str());
  EXPECT_EQ(value->integer, 0) << "no part of an aborted transaction may be applied";
  Reply current = Command(mine.get(), "GET %s", offset.c_str());
  EXPECT_STREQ(current->str, "11");
}

TEST(RedisPlatformTest, CommandErrorWhileQueueingDiscardsTheWholeTransaction) {
  Connection c = Connect();
  const std::string key = Key("queue-error");
  Command(c.get(), "MULTI");
  Command(c.get(), "SET %s applied", key.c_str());
  Reply bad = Command(c.get(), "SET %s", key.c_str());  // wrong arity: refused at queue time
  EXPECT_EQ(bad->type, REDIS_REPLY_ERROR);
  Reply exec = Command(c.get(), "EXEC");
  ASSERT_EQ(exec->type, REDIS_REPLY_ERROR);
  EXPECT_NE(std::string(exec->str).find("EXECABORT"), std::string::npos);
  Reply exists = Command(c.get(), "EXISTS %s", key.c_str());
  EXPECT_EQ(exists->integer, 0);
}

// The projection pattern: apply an event's effect and advance the stored partition offset
// in one script, and do nothing if the offset was already reached.
constexpr const char* kApplyIfNewer = R"lua(
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
local offset = tonumber(ARGV[1])
if offset <= current then return 0 end
redis.call('HINCRBY', KEYS[2], 'events', 1)
redis.call('HSET', KEYS[2], 'last', ARGV[2])
redis.call('SET', KEYS[1], offset)
return 1
)lua";

TEST(RedisPlatformTest, LuaScriptAppliesAtomicallyAndOffsetGuardMakesItIdempotent) {
  Connection c = Connect();
  const std::string offset = Key("lua:offset"), view = Key("lua:view");
  for (int round = 0; round < 2; ++round) {  // the second round replays the same events
    for (int i = 0; i < 5; ++i) {
      Reply applied = Command(c.get(), "EVAL %s 2 %s %s %d %s", kApplyIfNewer, offset.c_str(),
                              view.c_str(), i, absl::StrCat("event-", i).c_str());
      ASSERT_EQ(applied->type, REDIS_REPLY_INTEGER) << (applied->str ? applied->str : "");
      EXPECT_EQ(applied->integer, round == 0 ? 1 : 0);
    }
  }
  Reply events = Command(c.get(), "HGET %s events", view.c_str());
  EXPECT_STREQ(events->str, "5");
  Reply last = Command(c.get(), "HGET %s last", view.c_str());
  EXPECT_STREQ(last->str, "event-4");
}

TEST(RedisPlatformTest, LuaScriptIsNeverObservedHalfApplied) {
  Connection reader = Connect();
  const std::string offset = Key("lua2:offset"), view = Key("lua2:view");
  std::atomic<bool> done{false};
  std::thread writes([&] {
    Connection c = Connect();
    for (int i = 0; i < 2000; ++i) {
      Reply r = Command(c.get(), "EVAL %s 2 %s %s %d %s", kApplyIfNewer, offset.c_str(),
                        view.c_str(), i, "x");
      ASSERT_EQ(r->type, REDIS_REPLY_INTEGER);
    }
    done = true;
  });
  int torn = 0;
  while (!done) {
    // events counts applied offsets 0..N, so it must always equal offset + 1.
    Command(reader.get(), "MULTI");
    Command(reader.get(), "GET %s", offset.c_str());
    Command(reader.get(), "HGET %s events", view.c_str());
    Reply both = Command(reader.get(), "EXEC");
    ASSERT_EQ(both->type, REDIS_REPLY_ARRAY);
    if (both->element[0]->type == REDIS_REPLY_NIL) continue;
    if (std::stol(both->element[0]->str) + 1 != std::stol(both->element[1]->str)) ++torn;
  }
  writes.join();
  EXPECT_EQ(torn, 0);
}

TEST(RedisPlatformTest, AppendOnlyFileIsEnabled) {
  Connection c = Connect();
  Reply aof = Command(c.get(), "CONFIG GET appendonly");
  ASSERT_EQ(aof->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(aof->elements, 2u);
  EXPECT_STREQ(aof->element[1]->str, "yes");
}

}  // namespace
}  // namespace clinical

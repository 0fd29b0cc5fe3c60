// Who may do what on the platform's redis-server (deploy/local/lib/redis.sh,
// docs/security.md "Kafka and Redis"): a client without credentials is refused, as
// redis-cli sees it too; the views' user works on its own keys and cannot touch the audit
// log's (nor the audit user the views'); neither may run administrative commands.
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clinical/redis/connection.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/subprocess.h"
#include "gtest/gtest.h"

namespace clinical {
namespace {

using redis::Connection;
using testing::Platform;
using testing::UniqueName;

Connection ConnectAs(const std::string& user) {
  auto connection = Connection::Connect(Platform::Get().RedisAs(user), absl::Seconds(5));
  EXPECT_TRUE(connection.ok()) << user << ": " << connection.status();
  return std::move(*connection);
}

TEST(RedisAclTest, RedisCliWithoutCredentialsIsRefused) {
  const redis::Endpoint& redis = Platform::Get().redis_admin;
  auto cli = testing::Subprocess::Start(
      {"/usr/bin/redis-cli", "-h", redis.host, "-p", std::to_string(redis.port), "GET", "views:anything"});
  ASSERT_TRUE(cli.ok()) << cli.status();
  ASSERT_TRUE((*cli)->Wait(absl::Seconds(10)).has_value());
  const auto lines = (*cli)->Lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front().rfind("NOAUTH", 0), 0u) << absl::StrJoin(lines, "\n");
}

TEST(RedisAclTest, AConnectionWithoutCredentialsCanRunNothing) {
  redis::Endpoint anonymous = Platform::Get().redis_admin;
  anonymous.username.clear();
  anonymous.password.clear();
  auto connection = Connection::Connect(anonymous, absl::Seconds(5));
  ASSERT_TRUE(connection.ok()) << connection.status();
  for (const redis::Args& command : {redis::Args{"PING"}, redis::Args{"GET", "views:k"},
                                     redis::Args{"SET", "audit:k", "v"}, redis::Args{"KEYS", "*"}}) {
    auto reply = connection->Command(command);
    EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnauthenticated) << command[0] << ": " << reply.status();
  }
}

TEST(RedisAclTest, TheViewsUseTheirOwnKeysAndCannotTouchTheAuditLog) {
  const std::string unique = UniqueName("acl-test");
  Connection views = ConnectAs("views");
  const std::string own = absl::StrCat("views.", unique, ":v1:total");
  ASSERT_TRUE(views.Command({"SET", own, "1"}).ok());
  EXPECT_EQ(views.Command({"INCR", own})->integer(), 2);
  // Transactions and scripts on its own keys, as the projection runtime uses them.
  auto replies = views.Pipeline({{"MULTI"},
                                 {"EVAL", "return redis.call('INCR', KEYS[1])", "1", own},
                                 {"EXEC"}});
  ASSERT_TRUE(replies.ok()) << replies.status();
  EXPECT_EQ(replies->back(), redis::Reply::Array({redis::Reply::Integer(3)}));

  Connection audit = ConnectAs("audit");
  const std::string audit_key = absl::StrCat("audit.", unique, ":head:chain");
  ASSERT_TRUE(audit.Command({"SET", audit_key, "7"}).ok());
  for (const redis::Args& command : {redis::Args{"GET", audit_key}, redis::Args{"SET", audit_key, "0"},
                                     redis::Args{"DEL", audit_key}}) {
    auto refused = views.Command(command);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied) << command[0] << ": " << refused.status();
    EXPECT_EQ(redis::RedisErrorKind(refused.status()), "NOPERM");
  }
  // Not through a script either: a script sees only what its caller may touch.
  auto scripted = views.Command({"EVAL", "return redis.call('GET', KEYS[1])", "1", audit_key});
  EXPECT_FALSE(scripted.ok()) << "a script read another user's key";
  // And the other way round.
  EXPECT_EQ(audit.Command({"GET", own}).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(*audit.Command({"GET", audit_key}), redis::Reply::String("7")) << "untouched";
}

TEST(RedisAclTest, ServiceUsersRunNoAdministrativeOrDangerousCommand) {
  for (const std::string user : {"views", "audit"}) {
    Connection c = ConnectAs(user);
    for (const redis::Args& command :
         {redis::Args{"FLUSHALL"}, redis::Args{"FLUSHDB"}, redis::Args{"CONFIG", "GET", "requirepass"},
          redis::Args{"CONFIG", "SET", "appendonly", "no"}, redis::Args{"ACL", "LIST"},
          // (DEBUG is @dangerous too, but Redis 7 refuses it to every client before any ACL
          // check: enable-debug-command defaults to no.)
          redis::Args{"SHUTDOWN", "NOSAVE"}, redis::Args{"KEYS", "*"},
          redis::Args{"SCRIPT", "FLUSH"}, redis::Args{"CLIENT", "KILL", "ID", "1"}}) {
      auto refused = c.Command(command);
      EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied)
          << user << " " << command[0] << ": " << refused.status();
    }
  }
  // SCAN would list every key name whatever the key patterns: only the views need it.
  EXPECT_EQ(ConnectAs("audit").Command({"SCAN", "0"}).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(ConnectAs("views").Command({"SCAN", "0", "MATCH", "views.*"}).ok());
  // The server is still there and untouched.
  auto admin = Connection::Connect(Platform::Get().redis_admin, absl::Seconds(5));
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(*admin->Command({"PING"}), redis::Reply::Status("PONG"));
}

}  // namespace
}  // namespace clinical

// Integration tests of the hiredis wrapper against a real redis-server: the platform's
// (Platform::Get(), as its admin user) for commands, and one started here, with an ACL user
// and no default user, for losing the server and authenticating again.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "clinical/redis/connection.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/subprocess.h"
#include "clinical/testing/wait.h"
#include "gtest/gtest.h"

namespace clinical::redis {
namespace {

using testing::Platform;

Connection Connect() {
  auto connection = Connection::Connect(Platform::Get().redis_admin, absl::Seconds(5));
  EXPECT_TRUE(connection.ok()) << connection.status();
  return std::move(*connection);
}

std::string Key(const std::string& name) {
  static const std::string prefix = testing::UniqueName("redis-lib-test");
  return absl::StrCat(prefix, ":", name);
}

TEST(RedisConnectionTest, BinaryValuesRoundTripUnchanged) {
  Connection c = Connect();
  std::string value;
  for (int i = 0; i < 256; ++i) value.push_back(static_cast<char>(i));
  value += " with spaces\r\n$3\r\n";  // would break an inline or format-string command
  ASSERT_TRUE(c.Command({"SET", Key("binary"), value}).ok());
  auto got = c.Command({"GET", Key("binary")});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->type(), Reply::Type::kString);
  EXPECT_EQ(got->str(), value);
}

TEST(RedisConnectionTest, RepliesOfEveryType) {
  Connection c = Connect();
  EXPECT_EQ(*c.Command({"SET", Key("t"), "1"}), Reply::Status("OK"));
  EXPECT_EQ(*c.Command({"INCR", Key("t")}), Reply::Integer(2));
  EXPECT_TRUE(c.Command({"GET", Key("missing")})->is_nil());
  c.Command({"RPUSH", Key("list"), "a", "b"}).IgnoreError();
  EXPECT_EQ(*c.Command({"LRANGE", Key("list"), "0", "-1"}),
            Reply::Array({Reply::String("a"), Reply::String("b")}));
}

TEST(RedisConnectionTest, ErrorReplyIsATypedStatus) {
  Connection c = Connect();
  ASSERT_TRUE(c.Command({"SET", Key("string"), "x"}).ok());
  auto wrong = c.Command({"HGET", Key("string"), "field"});
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(RedisErrorKind(wrong.status()), "WRONGTYPE");
  auto noscript = c.Command({"EVALSHA", std::string(40, 'a'), "0"});
  EXPECT_EQ(noscript.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(RedisErrorKind(noscript.status()), "NOSCRIPT");
  // An error reply does not break the connection.
  EXPECT_FALSE(c.broken());
  EXPECT_TRUE(c.Command({"PING"}).ok());
}

TEST(RedisConnectionTest, PipelineOfManyCommandsKeepsOrderAndErrorsInPlace) {
  Connection c = Connect();
  std::vector<Args> commands;
  for (int i = 0; i < 5000; ++i) commands.push_back({"INCR", Key("pipelined")});
  commands.push_back({"HGET", Key("pipelined"), "f"});  // wrong type: error in place
  commands.push_back({"GET", Key("pipelined")});
  auto replies = c.Pipeline(commands);
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), commands.size());
  for (int i = 0; i < 5000; ++i) ASSERT_EQ((*replies)[i], Reply::Integer(i + 1));
  EXPECT_EQ((*replies)[5000].error_kind(), "WRONGTYPE");
  EXPECT_EQ((*replies)[5001], Reply::String("5000"));
}

TEST(RedisConnectionTest, EmptyCommandIsRejectedBeforeSending) {
  Connection c = Connect();
  EXPECT_EQ(c.Pipeline({{"PING"}, {}}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(c.Command({"PING"}).ok());
}

TEST(RedisConnectionTest, KilledConnectionIsUnavailableThenReconnects) {
  Connection c = Connect();
  Connection admin = Connect();
  auto id = c.Command({"CLIENT", "ID"});
  ASSERT_TRUE(id.ok());
  ASSERT_EQ(*admin.Command({"CLIENT", "KILL", "ID", absl::StrCat(id->integer())}),
            Reply::Integer(1));
  auto lost = c.Command({"PING"});
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_TRUE(c.broken());
  auto again = c.Command({"CLIENT", "ID"});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_NE(again->integer(), id->integer()) << "must be a new connection";
}

TEST(RedisConnectionTest, ReplyThatNeverComesTimesOutAsUnavailable) {
  auto c = Connection::Connect(Platform::Get().redis_admin, absl::Milliseconds(300));
  ASSERT_TRUE(c.ok());
  const absl::Time start = absl::Now();
  auto blocked = c->Command({"BLPOP", Key("never-pushed"), "10"});  // server waits 10 s
  EXPECT_EQ(blocked.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

// A private redis-server whose only user is "tester" (the default user is off), as the
// platform's Redis has no anonymous access either.
const Endpoint kTester = {"127.0.0.1", 0, "tester", "tester-secret"};

Endpoint TesterAt(int port) {
  Endpoint endpoint = kTester;
  endpoint.port = port;
  return endpoint;
}

std::unique_ptr<testing::Subprocess> StartRedis(int port) {
  auto server = testing::Subprocess::Start(
      {"/usr/bin/redis-server", "--port", absl::StrCat(port), "--bind", "127.0.0.1", "--save", "",
       "--appendonly", "no", "--user", "default", "off", "--user", kTester.username, "on",
       ">" + kTester.password, "~*", "+@all"});
  EXPECT_TRUE(server.ok()) << server.status();
  auto ready = (*server)->WaitForLine(
      [](const std::string& line) { return line.find("Ready to accept") != std::string::npos; },
      absl::Seconds(20));
  EXPECT_TRUE(ready.has_value()) << "redis-server did not start";
  return std::move(*server);
}

TEST(RedisConnectionTest, ServerGoneIsUnavailableAndTheConnectionRecoversWhenItReturns) {
  const int port = FreePort();
  auto server = StartRedis(port);
  auto c = Connection::Connect(TesterAt(port), absl::Seconds(2));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->Command({"SET", "k", "v"}).ok());

  server->Signal(SIGKILL);
  ASSERT_TRUE(server->Wait(absl::Seconds(10)).has_value());
  EXPECT_EQ(c->Command({"GET", "k"}).status().code(), absl::StatusCode::kUnavailable);
  // Reconnect attempts fail fast while nothing listens.
  EXPECT_EQ(c->Command({"GET", "k"}).status().code(), absl::StatusCode::kUnavailable);

  server = StartRedis(port);
  // Only an authenticated connection may run GET here: the reconnect sent AUTH again.
  auto after = c->Command({"GET", "k"});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->is_nil()) << "a fresh server without persistence has no data";
}

TEST(RedisConnectionTest, WrongPasswordIsUnauthenticatedAndNotEchoed) {
  Endpoint wrong = Platform::Get().RedisAs("views");
  wrong.password = "not-the-password";
  auto c = Connection::Connect(wrong, absl::Seconds(2));
  ASSERT_EQ(c.status().code(), absl::StatusCode::kUnauthenticated) << c.status();
  EXPECT_EQ(c.status().message().find("not-the-password"), std::string::npos) << c.status();
}

TEST(RedisConnectionTest, WithoutCredentialsEveryCommandIsRefused) {
  Endpoint anonymous = Platform::Get().redis_admin;
  anonymous.username.clear();
  anonymous.password.clear();
  auto c = Connection::Connect(anonymous, absl::Seconds(2));
  ASSERT_TRUE(c.ok()) << "the socket opens; the server refuses what comes next";
  auto refused = c->Command({"GET", Key("anything")});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated) << refused.status();
  EXPECT_EQ(RedisErrorKind(refused.status()), "NOAUTH");
}

// The projection runtime loads its scripts inside each MULTI so that EVALSHA can never
// fail at run time with NOSCRIPT after a SCRIPT FLUSH or restart (Redis does not roll back
// a transaction's earlier commands). This proves the trick works on this redis-server.
TEST(RedisConnectionTest, ScriptLoadInsideMultiMakesEvalshaSafeAfterFlush) {
  // A private server: SCRIPT FLUSH on the shared one could disturb other tests.
  const int port = FreePort();
  auto server = StartRedis(port);
  auto connected = Connection::Connect(TesterAt(port), absl::Seconds(2));
  ASSERT_TRUE(connected.ok()) << connected.status();
  Connection& c = *connected;
  const std::string script = "return redis.call('INCR', KEYS[1])";
  auto sha = c.Command({"SCRIPT", "LOAD", script});
  ASSERT_TRUE(sha.ok());
  ASSERT_TRUE(c.Command({"SCRIPT", "FLUSH"}).ok());
  auto replies = c.Pipeline({{"MULTI"},
                             {"SCRIPT", "LOAD", script},
                             {"EVALSHA", sha->str(), "1", Key("script")},
                             {"EXEC"}});
  ASSERT_TRUE(replies.ok());
  const Reply& exec = replies->back();
  ASSERT_EQ(exec.type(), Reply::Type::kArray);
  ASSERT_EQ(exec.elements().size(), 2u);
  EXPECT_EQ(exec.elements()[1], Reply::Integer(1));
}

}  // namespace
}  // namespace clinical::redis

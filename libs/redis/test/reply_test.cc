// Unit tests of the hiredis wrapper that need no Redis: reply values, the error-reply
// mapping, and the connection's protocol handling against a scripted fake server.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "clinical/redis/connection.h"
#include "clinical/redis/reply.h"
#include "gtest/gtest.h"

namespace clinical::redis {
namespace {

TEST(ReplyTest, ValuesKeepTheirTypeAndBytes) {
  EXPECT_TRUE(Reply().is_nil());
  EXPECT_EQ(Reply::Integer(-7).integer(), -7);
  const std::string binary("a\0b\r\nc", 6);
  EXPECT_EQ(Reply::String(binary).str(), binary);
  EXPECT_EQ(Reply::Status("OK").type(), Reply::Type::kStatus);
  const Reply array = Reply::Array({Reply::Integer(1), Reply::Nil(), Reply::String("x")});
  ASSERT_EQ(array.elements().size(), 3u);
  EXPECT_TRUE(array.elements()[1].is_nil());
  EXPECT_EQ(array, Reply::Array({Reply::Integer(1), Reply::Nil(), Reply::String("x")}));
  EXPECT_NE(Reply::String("1"), Reply::Integer(1));
}

TEST(ReplyTest, ErrorKindIsTheFirstWordOfAnErrorReply) {
  EXPECT_EQ(Reply::Error("WRONGTYPE Operation against a key").error_kind(), "WRONGTYPE");
  EXPECT_EQ(Reply::Error("NOSCRIPT").error_kind(), "NOSCRIPT");
  EXPECT_EQ(Reply::String("WRONGTYPE x").error_kind(), "");
  EXPECT_TRUE(Reply::String("x").ToStatus().ok());
}

TEST(ReplyTest, ErrorRepliesMapToCodesThatSayWhetherToRetry) {
  EXPECT_EQ(ErrorReplyStatus(Reply::Error("LOADING Redis is loading")).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReplyStatus(Reply::Error("BUSY script running")).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReplyStatus(Reply::Error("NOSCRIPT No matching script")).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrorReplyStatus(Reply::Error("WRONGTYPE Operation")).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorReplyStatus(Reply::Error("ERR syntax error")).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ReplyTest, ErrorStatusCarriesTheKindButNotTheServerText) {
  // Redis echoes arguments in some errors; arguments may be patient data.
  const absl::Status status = ErrorReplyStatus(
      Reply::Error("ERR unknown command 'FOO', with args beginning with: 'Jane Doe'"));
  EXPECT_EQ(RedisErrorKind(status), "ERR");
  EXPECT_EQ(status.message().find("Jane"), std::string::npos) << status;
  EXPECT_EQ(RedisErrorKind(absl::UnavailableError("x")), "");
}

// A loopback TCP server that answers each accepted connection with canned bytes once it has
// received `expect_bytes`, then closes it. It records what the client sent.
class FakeServer {
 public:
  explicit FakeServer(std::vector<std::pair<size_t, std::string>> sessions)
      : sessions_(std::move(sessions)) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(listen(listener_, 4), 0);
    socklen_t length = sizeof(address);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeServer() {
    if (thread_.joinable()) thread_.join();
    close(listener_);
  }
  int port() const { return port_; }
  // Bytes received per session; read after the sessions are over (the destructor joins).
  const std::vector<std::string>& received() {
    if (thread_.joinable()) thread_.join();
    return received_;
  }

 private:
  void Serve() {
    for (const auto& [expect_bytes, answer] : sessions_) {
      const int connection = accept(listener_, nullptr, nullptr);
      if (connection < 0) return;
      std::string got;
      char buffer[4096];
      while (got.size() < expect_bytes) {
        const ssize_t n = read(connection, buffer, sizeof(buffer));
        if (n <= 0) break;
        got.append(buffer, static_cast<size_t>(n));
      }
      received_.push_back(got);
      if (!answer.empty()) {
        EXPECT_EQ(write(connection, answer.data(), answer.size()),
                  static_cast<ssize_t>(answer.size()));
      }
      close(connection);
    }
  }

  std::vector<std::pair<size_t, std::string>> sessions_;
  int listener_ = -1;
  int port_ = 0;
  std::vector<std::string> received_;
  std::thread thread_;
};

// The fake servers here ask for no credentials, so none are sent (no AUTH).
Endpoint Unauthenticated(int port) { return Endpoint{"127.0.0.1", port, "", ""}; }

int UnusedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);  // nothing listens there now
  return ntohs(address.sin_port);
}

TEST(ConnectionTest, UnreachableServerIsUnavailable) {
  auto connection = Connection::Connect(Unauthenticated(UnusedPort()), absl::Seconds(1));
  ASSERT_FALSE(connection.ok());
  EXPECT_EQ(connection.status().code(), absl::StatusCode::kUnavailable);
}

TEST(ConnectionTest, ArgumentsAreSentLengthDelimitedSoBinaryDataIsSafe) {
  const std::string value("x y\0\r\nz", 7);
  const std::string expected_wire =
      std::string("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$7\r\n") + value + "\r\n";
  FakeServer server({{expected_wire.size(), "+OK\r\n"}});
  auto connection = Connection::Connect(Unauthenticated(server.port()), absl::Seconds(5));
  ASSERT_TRUE(connection.ok()) << connection.status();
  auto reply = connection->Command({"SET", "k", value});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, Reply::Status("OK"));
  EXPECT_EQ(server.received().at(0), expected_wire);
}

TEST(ConnectionTest, PipelineReturnsRepliesInOrderWithErrorsInPlace) {
  const std::string wire = "*1\r\n$4\r\nPING\r\n";
  FakeServer server({{3 * wire.size(),
                      ":5\r\n-WRONGTYPE Operation\r\n*2\r\n$1\r\na\r\n$-1\r\n"}});
  auto connection = Connection::Connect(Unauthenticated(server.port()), absl::Seconds(5));
  ASSERT_TRUE(connection.ok());
  auto replies = connection->Pipeline({{"PING"}, {"PING"}, {"PING"}});
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 3u);
  EXPECT_EQ((*replies)[0], Reply::Integer(5));
  EXPECT_EQ((*replies)[1].error_kind(), "WRONGTYPE");
  EXPECT_EQ((*replies)[2], Reply::Array({Reply::String("a"), Reply::Nil()}));
}

TEST(ConnectionTest, ConnectionLostMidPipelineIsUnavailableAndTheNextCallReconnects) {
  const std::string ping = "*1\r\n$4\r\nPING\r\n";
  // Session 1 answers one of two commands, then drops the connection; session 2 is the
  // reconnect and answers normally.
  FakeServer server({{2 * ping.size(), "+PONG\r\n"}, {ping.size(), "+PONG\r\n"}});
  auto connection = Connection::Connect(Unauthenticated(server.port()), absl::Seconds(5));
  ASSERT_TRUE(connection.ok());
  auto half = connection->Pipeline({{"PING"}, {"PING"}});
  EXPECT_EQ(half.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(connection->broken());
  auto again = connection->Command({"PING"});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, Reply::Status("PONG"));
  EXPECT_FALSE(connection->broken());
}

TEST(ConnectionTest, EmptyCommandIsInvalidArgument) {
  FakeServer server({{0, ""}});
  auto connection = Connection::Connect(Unauthenticated(server.port()), absl::Seconds(5));
  ASSERT_TRUE(connection.ok());
  EXPECT_EQ(connection->Command({}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace clinical::redis

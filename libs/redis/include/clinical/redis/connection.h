#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/redis/reply.h"

// hiredis's context, declared here only so that the holder below can name it.
struct redisContext;

namespace clinical::redis {

// A command as its arguments, e.g. {"HSET", key, field, value}. Sent with
// redisCommandArgv semantics: every argument is length-delimited, so binary data and
// spaces need no escaping and can never be mistaken for another argument.
using Args = std::vector<std::string>;

// Where a Redis server is and whom to authenticate as. With a username, every connection
// (and every reconnect) starts with AUTH <username> <password> (Redis 6+ ACL users);
// without one, no AUTH is sent. The password is never logged nor put in an error.
// hiredis 0.14 speaks no TLS: see docs/security.md for how this traffic is protected.
struct Endpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string username;
  std::string password;
};

namespace internal {
struct ContextDeleter {
  void operator()(::redisContext* context) const;
};
}  // namespace internal

// One synchronous connection to a Redis server (hiredis underneath; its handles never
// leave src/).
//
// Errors:
//   UNAUTHENTICATED     the server refused the credentials (WRONGPASS, or NOAUTH when none
//                       were given): retrying cannot help; a service stops at start.
//   UNAVAILABLE         Redis cannot be reached, the connection broke, or a reply did not
//                       arrive within the timeout. Whether a command that failed this way
//                       ran on the server is unknown; the caller must make its writes
//                       idempotent or check (the projection runtime re-reads its offset).
//                       The connection is then marked broken and the next call reconnects
//                       first (one attempt), so a caller simply retries with backoff.
//   INVALID_ARGUMENT    an empty command.
//   error replies       see ErrorReplyStatus(): Command() returns them as a status;
//                       Pipeline() returns them as Reply values, in place.
//
// Thread-safety: none; one connection belongs to one thread at a time. Movable.
class Connection {
 public:
  // Connects to the endpoint and authenticates. `timeout` bounds the connect and every
  // later read or write on the socket, so no call blocks longer than that without progress.
  static absl::StatusOr<Connection> Connect(const Endpoint& endpoint, absl::Duration timeout);

  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  ~Connection();

  // Sends one command and returns its reply; an error reply becomes a non-OK status.
  absl::StatusOr<Reply> Command(const Args& args);

  // Sends all commands in one write, then reads one reply per command (pipelining: one
  // round trip instead of commands.size()). Error replies stay in the vector at their
  // position; only transport failures (UNAVAILABLE) fail the call as a whole, and then no
  // reply of the batch is returned.
  absl::StatusOr<std::vector<Reply>> Pipeline(const std::vector<Args>& commands);

  // True after a transport failure, until a reconnect succeeds.
  bool broken() const { return context_ == nullptr; }

  // Drops the current socket (if any), connects again and authenticates. Server-side
  // connection state (WATCH, MULTI, SELECT) is gone afterwards.
  absl::Status Reconnect();

  const std::string& host() const { return endpoint_.host; }
  int port() const { return endpoint_.port; }

 private:
  Connection(Endpoint endpoint, absl::Duration timeout);
  absl::Status EnsureConnected();
  absl::Status Broken(const char* what);
  absl::Status Authenticate(::redisContext* context) const;

  Endpoint endpoint_;
  absl::Duration timeout_;
  std::unique_ptr<::redisContext, internal::ContextDeleter> context_;
};

}  // namespace clinical::redis

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

namespace internal {
struct ContextDeleter {
  void operator()(::redisContext* context) const;
};
}  // namespace internal

// One synchronous connection to a Redis server (hiredis underneath; its handles never
// leave src/).
//
// Errors:
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
  // Connects to host:port. `timeout` bounds the connect and every later read or write on
  // the socket, so no call blocks longer than that without progress.
  static absl::StatusOr<Connection> Connect(const std::string& host, int port,
                                            absl::Duration timeout);

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

  // Drops the current socket (if any) and connects again. Server-side connection state
  // (WATCH, MULTI, SELECT) is gone afterwards.
  absl::Status Reconnect();

  const std::string& host() const { return host_; }
  int port() const { return port_; }

 private:
  Connection(std::string host, int port, absl::Duration timeout);
  absl::Status EnsureConnected();
  absl::Status Broken(const char* what);

  std::string host_;
  int port_ = 0;
  absl::Duration timeout_;
  std::unique_ptr<::redisContext, internal::ContextDeleter> context_;
};

}  // namespace clinical::redis

#include "clinical/redis/connection.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace clinical::redis {
namespace internal {
void ContextDeleter::operator()(::redisContext* context) const { redisFree(context); }
}  // namespace internal

namespace {

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyHolder = std::unique_ptr<redisReply, ReplyDeleter>;

Reply Convert(const redisReply& raw) {
  switch (raw.type) {
    case REDIS_REPLY_INTEGER:
      return Reply::Integer(raw.integer);
    case REDIS_REPLY_STRING:
      return Reply::String(std::string(raw.str, raw.len));
    case REDIS_REPLY_STATUS:
      return Reply::Status(std::string(raw.str, raw.len));
    case REDIS_REPLY_ERROR:
      return Reply::Error(std::string(raw.str, raw.len));
    case REDIS_REPLY_ARRAY: {
      std::vector<Reply> elements;
      elements.reserve(raw.elements);
      for (size_t i = 0; i < raw.elements; ++i) elements.push_back(Convert(*raw.element[i]));
      return Reply::Array(std::move(elements));
    }
    default:
      return Reply::Nil();
  }
}

}  // namespace

Connection::Connection(Endpoint endpoint, absl::Duration timeout)
    : endpoint_(std::move(endpoint)), timeout_(timeout) {}
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;
Connection::~Connection() = default;

absl::StatusOr<Connection> Connection::Connect(const Endpoint& endpoint, absl::Duration timeout) {
  Connection connection(endpoint, timeout);
  absl::Status status = connection.Reconnect();
  if (!status.ok()) return status;
  return connection;
}

absl::Status Connection::Reconnect() {
  context_.reset();
  std::unique_ptr<::redisContext, internal::ContextDeleter> context(redisConnectWithTimeout(
      endpoint_.host.c_str(), endpoint_.port, absl::ToTimeval(timeout_)));
  if (context == nullptr) return absl::UnavailableError("redis: cannot allocate a connection");
  if (context->err != 0) {
    return absl::UnavailableError(absl::StrCat("redis: cannot connect to ", endpoint_.host, ":",
                                               endpoint_.port, ": ", context->errstr));
  }
  // Without a socket timeout a read would wait forever on a server that stopped answering.
  if (redisSetTimeout(context.get(), absl::ToTimeval(timeout_)) != REDIS_OK) {
    return absl::UnavailableError("redis: cannot set the socket timeout");
  }
  redisEnableKeepAlive(context.get());
  if (absl::Status authenticated = Authenticate(context.get()); !authenticated.ok()) {
    return authenticated;
  }
  context_ = std::move(context);
  return absl::OkStatus();
}

absl::Status Connection::Authenticate(::redisContext* context) const {
  if (endpoint_.username.empty()) return absl::OkStatus();
  const char* argv[] = {"AUTH", endpoint_.username.c_str(), endpoint_.password.c_str()};
  const size_t lengths[] = {4, endpoint_.username.size(), endpoint_.password.size()};
  ReplyHolder reply(static_cast<redisReply*>(redisCommandArgv(context, 3, argv, lengths)));
  if (reply == nullptr) {
    return absl::UnavailableError(absl::StrCat("redis ", endpoint_.host, ":", endpoint_.port,
                                               ": AUTH failed: ", context->errstr));
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    // Only the error kind: the server's text is not needed, and the password never is.
    const absl::Status refused = ErrorReplyStatus(Convert(*reply));
    return absl::Status(refused.code(), absl::StrCat("redis: user '", endpoint_.username,
                                                     "' was refused (", RedisErrorKind(refused), ")"));
  }
  return absl::OkStatus();
}

absl::Status Connection::EnsureConnected() {
  if (context_ != nullptr) return absl::OkStatus();
  return Reconnect();
}

absl::Status Connection::Broken(const char* what) {
  // After an I/O error hiredis's context is unusable, and replies of a half-read pipeline
  // would be taken for the answers to the next commands: drop it, reconnect next time.
  std::string detail = context_ != nullptr ? context_->errstr : "";
  context_.reset();
  return absl::UnavailableError(
      absl::StrCat("redis ", endpoint_.host, ":", endpoint_.port, ": ", what, " failed: ", detail));
}

absl::StatusOr<Reply> Connection::Command(const Args& args) {
  absl::StatusOr<std::vector<Reply>> replies = Pipeline({args});
  if (!replies.ok()) return replies.status();
  Reply& reply = replies->front();
  if (reply.is_error()) return ErrorReplyStatus(reply);
  return std::move(reply);
}

absl::StatusOr<std::vector<Reply>> Connection::Pipeline(const std::vector<Args>& commands) {
  for (const Args& args : commands) {
    if (args.empty()) return absl::InvalidArgumentError("redis: empty command");
  }
  if (absl::Status status = EnsureConnected(); !status.ok()) return status;

  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const Args& args : commands) {
    argv.clear();
    lengths.clear();
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    // Appending only buffers the command; the write happens with the first read below.
    if (redisAppendCommandArgv(context_.get(), static_cast<int>(args.size()), argv.data(),
                               lengths.data()) != REDIS_OK) {
      return Broken("append");
    }
  }
  std::vector<Reply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_.get(), &raw) != REDIS_OK || raw == nullptr) {
      ReplyHolder discard(static_cast<redisReply*>(raw));
      return Broken("read");
    }
    ReplyHolder reply(static_cast<redisReply*>(raw));
    replies.push_back(Convert(*reply));
  }
  return replies;
}

}  // namespace clinical::redis

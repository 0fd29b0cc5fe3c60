#include "clinical/redis/reply.h"

#include <array>
#include <string_view>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace clinical::redis {
namespace {

constexpr char kErrorKindPayload[] = "type.clinical.redis/ErrorKind";

// Server states that go away by themselves (a restart loading its AOF, a long script,
// a failover): retrying later can succeed.
constexpr std::array<std::string_view, 8> kTransientKinds = {
    "LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN", "MISCONF", "NOREPLICAS",
    "READONLY"};

}  // namespace

Reply Reply::Integer(int64_t value) {
  Reply reply;
  reply.type_ = Type::kInteger;
  reply.integer_ = value;
  return reply;
}

Reply Reply::String(std::string value) {
  Reply reply;
  reply.type_ = Type::kString;
  reply.str_ = std::move(value);
  return reply;
}

Reply Reply::Status(std::string value) {
  Reply reply;
  reply.type_ = Type::kStatus;
  reply.str_ = std::move(value);
  return reply;
}

Reply Reply::Error(std::string message) {
  Reply reply;
  reply.type_ = Type::kError;
  reply.str_ = std::move(message);
  return reply;
}

Reply Reply::Array(std::vector<Reply> elements) {
  Reply reply;
  reply.type_ = Type::kArray;
  reply.elements_ = std::move(elements);
  return reply;
}

std::string Reply::error_kind() const {
  if (type_ != Type::kError) return "";
  return str_.substr(0, str_.find(' '));
}

absl::Status Reply::ToStatus() const {
  return is_error() ? ErrorReplyStatus(*this) : absl::OkStatus();
}

absl::Status ErrorReplyStatus(const Reply& error_reply) {
  const std::string kind = error_reply.error_kind();
  const std::string message = absl::StrCat("redis replied with error ", kind);
  absl::Status status;
  bool transient = false;
  for (std::string_view t : kTransientKinds) transient = transient || kind == t;
  if (transient) {
    status = absl::UnavailableError(message);
  } else if (kind == "NOSCRIPT") {
    status = absl::NotFoundError(message);
  } else if (kind == "NOAUTH" || kind == "WRONGPASS") {
    status = absl::UnauthenticatedError(message);
  } else if (kind == "NOPERM") {
    status = absl::PermissionDeniedError(message);
  } else {
    status = absl::FailedPreconditionError(message);
  }
  status.SetPayload(kErrorKindPayload, absl::Cord(kind));
  return status;
}

std::string RedisErrorKind(const absl::Status& status) {
  auto payload = status.GetPayload(kErrorKindPayload);
  return payload.has_value() ? std::string(*payload) : std::string();
}

}  // namespace clinical::redis

#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace clinical::redis {

// One Redis reply (RESP2) as a plain value: copyable, owning, no hiredis types. Strings are
// binary-safe (std::string with embedded NULs is fine).
class Reply {
 public:
  enum class Type { kNil, kInteger, kString, kArray, kStatus, kError };

  Reply() = default;  // nil
  static Reply Nil() { return Reply(); }
  static Reply Integer(int64_t value);
  static Reply String(std::string value);
  static Reply Status(std::string value);  // simple string, e.g. "OK", "QUEUED"
  static Reply Error(std::string message);  // e.g. "WRONGTYPE Operation against a key ..."
  static Reply Array(std::vector<Reply> elements);

  Type type() const { return type_; }
  bool is_nil() const { return type_ == Type::kNil; }
  bool is_error() const { return type_ == Type::kError; }

  // Value accessors. Calling one for another type returns the empty value (0, "", {}):
  // callers check type() first; there is no exception path.
  int64_t integer() const { return integer_; }
  // The bytes of a string, status or error reply.
  const std::string& str() const { return str_; }
  const std::vector<Reply>& elements() const { return elements_; }

  // For an error reply, its kind: the first word of the message ("ERR", "WRONGTYPE",
  // "NOSCRIPT", "EXECABORT", "LOADING", ...). Empty for other replies.
  std::string error_kind() const;

  // OK unless this is an error reply; then ErrorReplyStatus(*this).
  absl::Status ToStatus() const;

  friend bool operator==(const Reply&, const Reply&) = default;

 private:
  Type type_ = Type::kNil;
  int64_t integer_ = 0;
  std::string str_;
  std::vector<Reply> elements_;
};

// The status for a Redis error reply. The code tells the caller what to do:
//   UNAVAILABLE         for transient server states worth retrying (LOADING, BUSY,
//                       TRYAGAIN, MASTERDOWN, CLUSTERDOWN, MISCONF, NOREPLICAS, READONLY);
//   NOT_FOUND           for NOSCRIPT (the script cache was flushed, e.g. by a restart);
//   UNAUTHENTICATED     for NOAUTH and WRONGPASS (no or wrong credentials);
//   PERMISSION_DENIED   for NOPERM (the ACL user may not run the command or touch the key);
//   FAILED_PRECONDITION for everything else (wrong type, syntax, EXECABORT, script errors):
//                       retrying the same command cannot succeed.
// The message carries only the error kind, never the server's full text: Redis echoes
// command arguments in some errors (e.g. "unknown command ... with args beginning with"),
// and arguments may be patient data. The kind is also attached as a payload, so callers
// can branch on it with RedisErrorKind().
absl::Status ErrorReplyStatus(const Reply& error_reply);

// The error kind ("WRONGTYPE", ...) if `status` came from a Redis error reply, else "".
std::string RedisErrorKind(const absl::Status& status);

}  // namespace clinical::redis

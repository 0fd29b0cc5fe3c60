#include "clinical/projection/versions.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace clinical::projection {
namespace {

// KEYS[1] = <root>:active. ARGV[1] = "<root>:", ARGV[2] = candidate version,
// ARGV[3..] = offset key suffixes. Keys of the two versions are derived inside the script
// (fine on a single Redis; a cluster would need hash tags on the root).
constexpr char kActivateIfNotBehind[] = R"lua(
local current = redis.call('GET', KEYS[1])
if current == ARGV[2] then return 1 end
if current then
  for i = 3, #ARGV do
    local old = tonumber(redis.call('GET', ARGV[1] .. current .. ':' .. ARGV[i]) or '-1')
    local mine = tonumber(redis.call('GET', ARGV[1] .. ARGV[2] .. ':' .. ARGV[i]) or '-1')
    if mine < old then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
)lua";

}  // namespace

absl::StatusOr<std::optional<std::string>> ActiveVersion(redis::Connection& redis,
                                                         const std::string& root) {
  auto reply = redis.Command({"GET", KeySpace::ActiveKeyFor(root)});
  if (!reply.ok()) return reply.status();
  if (reply->is_nil()) return std::nullopt;
  return reply->str();
}

absl::Status SetActiveVersion(redis::Connection& redis, const std::string& root,
                              const std::string& version) {
  auto keys = KeySpace::Create(root, version);
  if (!keys.ok()) return keys.status();
  return redis.Command({"SET", keys->ActiveKey(), version}).status();
}

absl::StatusOr<bool> ActivateIfNotBehind(redis::Connection& redis, const KeySpace& keys,
                                         const std::vector<std::string>& offset_suffixes) {
  redis::Args command = {"EVAL", kActivateIfNotBehind, "1", keys.ActiveKey(),
                         absl::StrCat(keys.root(), ":"), keys.version()};
  command.insert(command.end(), offset_suffixes.begin(), offset_suffixes.end());
  auto reply = redis.Command(command);
  if (!reply.ok()) return reply.status();
  return reply->type() == redis::Reply::Type::kInteger && reply->integer() == 1;
}

absl::StatusOr<int64_t> DropVersion(redis::Connection& redis, const std::string& root,
                                    const std::string& version) {
  auto keys = KeySpace::Create(root, version);
  if (!keys.ok()) return keys.status();
  auto active = ActiveVersion(redis, root);
  if (!active.ok()) return active.status();
  if (active->has_value() && **active == version) {
    return absl::FailedPreconditionError("cannot drop the active version of a view");
  }
  int64_t dropped = 0;
  std::string cursor = "0";
  do {
    auto scan = redis.Command(
        {"SCAN", cursor, "MATCH", absl::StrCat(keys->prefix(), "*"), "COUNT", "1000"});
    if (!scan.ok()) return scan.status();
    if (scan->elements().size() != 2) return absl::InternalError("unexpected SCAN reply");
    cursor = scan->elements()[0].str();
    redis::Args unlink = {"UNLINK"};
    for (const redis::Reply& key : scan->elements()[1].elements()) unlink.push_back(key.str());
    if (unlink.size() > 1) {
      auto removed = redis.Command(unlink);
      if (!removed.ok()) return removed.status();
      dropped += removed->integer();
    }
  } while (cursor != "0");
  return dropped;
}

absl::StatusOr<ActiveRead> ReadActive(
    redis::Connection& redis, const std::string& root,
    const std::function<std::vector<redis::Args>(const KeySpace&)>& build, int attempts) {
  const std::string active_key = KeySpace::ActiveKeyFor(root);
  for (int attempt = 0; attempt < attempts; ++attempt) {
    auto version = ActiveVersion(redis, root);
    if (!version.ok()) return version.status();
    if (!version->has_value()) return absl::NotFoundError("no active version of the view");
    auto keys = KeySpace::Create(root, **version);
    if (!keys.ok()) return absl::InternalError("active version has an invalid name");
    std::vector<redis::Args> reads = build(*keys);
    std::vector<redis::Args> commands;
    commands.reserve(reads.size() + 3);
    commands.push_back({"MULTI"});
    commands.insert(commands.end(), reads.begin(), reads.end());
    commands.push_back({"GET", active_key});
    commands.push_back({"EXEC"});
    auto replies = redis.Pipeline(commands);
    if (!replies.ok()) return replies.status();
    const redis::Reply& exec = replies->back();
    if (exec.is_error()) return exec.ToStatus();
    if (exec.type() != redis::Reply::Type::kArray || exec.elements().size() != reads.size() + 1) {
      return absl::InternalError("unexpected EXEC reply");
    }
    const redis::Reply& still_active = exec.elements().back();
    if (still_active.type() != redis::Reply::Type::kString || still_active.str() != **version) {
      continue;  // switched between GET and EXEC: read the new version instead
    }
    ActiveRead result;
    result.version = **version;
    result.replies.assign(exec.elements().begin(), exec.elements().end() - 1);
    return result;
  }
  return absl::AbortedError("active version kept changing during the read");
}

}  // namespace clinical::projection

#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clinical/common/v1/envelope.pb.h"

namespace clinical::projection {

// One Redis command a read model wants run, as its arguments ({"HSET", key, field, value}).
using RedisCommand = std::vector<std::string>;

// Where one version of one view keeps its keys in Redis:
//
//   <root>:active                           name of the version queries read (versions.h)
//   <root>:<version>:<name>                 the view's own keys, via Key(name)
//   <root>:<version>:_offset:<topic>:<p>    last applied Kafka offset of partition p
//
// A rebuild writes a new version next to the serving one, so each version is a separate
// prefix and the switch is one SET of <root>:active. Names starting with "_" are reserved
// for the runtime. A value type; thread-compatible.
class KeySpace {
 public:
  // `root` is 1..200 chars of [A-Za-z0-9._:-] (e.g. "views:caseload"); `version` 1..64
  // chars of [A-Za-z0-9._-] and not "active". The character sets keep every prefix free
  // of glob characters (so SCAN MATCH <prefix>* is exact) and of whitespace.
  // INVALID_ARGUMENT otherwise.
  static absl::StatusOr<KeySpace> Create(const std::string& root, const std::string& version);

  const std::string& root() const { return root_; }
  const std::string& version() const { return version_; }
  // "<root>:<version>:" — every key of this version starts with it.
  const std::string& prefix() const { return prefix_; }

  std::string Key(const std::string& name) const { return prefix_ + name; }
  std::string OffsetKey(const std::string& topic, int32_t partition) const {
    return prefix_ + OffsetSuffix(topic, partition);
  }
  std::string ActiveKey() const { return ActiveKeyFor(root_); }

  static std::string OffsetSuffix(const std::string& topic, int32_t partition);
  static std::string ActiveKeyFor(const std::string& root) { return root + ":active"; }

 private:
  KeySpace(std::string root, std::string version);
  std::string root_;
  std::string version_;
  std::string prefix_;
};

// A named Lua script of a read model. Scripts are how an update that depends on current
// state (move a case from manager A's set to B's) stays one atomic step: Redis runs a
// script without interleaving other clients, and it sees earlier writes of its batch.
//
// Scripts must not fail at run time (no redis.error_reply, no calls that can fail on valid
// input): Redis does not roll back what a transaction already did when a later command of
// it fails, so a failing script would leave a half-applied batch. Validate in Translate.
class LuaScript {
 public:
  LuaScript(std::string name, std::string source);

  const std::string& name() const { return name_; }
  const std::string& source() const { return source_; }
  const std::string& sha1() const { return sha1_; }  // lowercase hex, as SCRIPT LOAD returns

  // The command that runs this script: EVALSHA <sha1> <#keys> keys... args...
  // The runtime loads every script inside each transaction before its commands, so the
  // EVALSHA cannot meet an empty script cache (e.g. after a Redis restart).
  RedisCommand Call(const std::vector<std::string>& keys,
                    const std::vector<std::string>& args) const;

 private:
  std::string name_;
  std::string source_;
  std::string sha1_;
};

// A read model translates events into Redis commands. Implemented by each view.
//
// Translate is PURE: no I/O, no clock, no randomness; the same event and key space always
// give the same commands. That makes models unit-testable without Redis and makes
// replays (restart, rebuild) produce the same bytes. Implementations must be thread-safe
// for concurrent const calls (the usual case for a class without mutable state).
class ReadModel {
 public:
  virtual ~ReadModel() = default;

  // Short stable name of the view, e.g. "caseload"; the default key root.
  virtual std::string Name() const = 0;
  // Kafka topics the view is built from; all partitions of each are consumed.
  virtual std::vector<std::string> Topics() const = 0;
  // Scripts that Translate's commands may call (via LuaScript::Call).
  virtual std::vector<LuaScript> Scripts() const = 0;

  // Appends to `out` the commands that apply `event`, touching only keys under `keys`
  // (keys.Key(...)). OK with no commands for events the view does not care about. A
  // non-OK status marks the event as poison: it is dead-lettered with the status message
  // as reason and whatever was appended to `out` is discarded. The message must not
  // contain patient data (it is logged and written to Kafka headers): name the event type,
  // field and rule, not values.
  virtual absl::Status Translate(const common::v1::EventEnvelope& event, const KeySpace& keys,
                                 std::vector<RedisCommand>& out) const = 0;
};

}  // namespace clinical::projection

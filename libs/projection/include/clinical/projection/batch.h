#pragma once

// The pure core of the runtime: which commands one partition's batch of records becomes.
// No I/O here, so every rule (skip what was applied, dead-letter poison, order of the
// transaction) is unit-tested directly.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "clinical/projection/read_model.h"
#include "clinical/redis/connection.h"

namespace clinical::projection {

// One Kafka record as the runtime received it.
struct SourceRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;  // EventEnvelope, protobuf binary
};

// A record the view cannot apply, and why (no patient data in `reason`).
struct DeadLetter {
  SourceRecord record;
  std::string reason;
};

struct BatchPlan {
  std::vector<RedisCommand> commands;  // of all applicable events, in offset order
  std::vector<int64_t> command_offsets;  // source offset of each command (diagnostics)
  std::vector<DeadLetter> dead_letters;
  // Offset to store with the commands: the highest offset in the batch, or the stored
  // offset when every record was at or below it (then there is nothing to do).
  int64_t last_offset = -1;
  int64_t events_new = 0;      // records above the stored offset (applied, ignored or dead)
  int64_t events_skipped = 0;  // records at or below it: already applied before
};

// Plans one batch of records of ONE partition (ascending offsets) given the offset stored
// with the view (-1 if none). Records at or below `stored_offset` are skipped — this is
// what makes applying an event twice change nothing. A record whose value does not decode
// as an EventEnvelope, lacks aggregate_id or event_type, or that the model refuses, becomes
// a dead letter; the rest of the batch is still planned.
BatchPlan PlanBatch(const ReadModel& model, const KeySpace& keys,
                    const std::vector<SourceRecord>& records, int64_t stored_offset);

// The pipelined transaction that applies a plan (sent after WATCH <offset_key>):
//   MULTI, SCRIPT LOAD <each script>, <plan commands>, SET <offset_key> <last_offset>, EXEC
// The offset is written in the same MULTI as the effects: both happen or neither does.
std::vector<redis::Args> TransactionCommands(const BatchPlan& plan,
                                             const std::vector<LuaScript>& scripts,
                                             const std::string& offset_key);

// Dead-letter record key: "<topic>/<partition>/<offset>" of the source record. Delivery to
// the dead-letter topic is at-least-once (a crash between the producer's ack and the Redis
// commit sends it again on restart); equal keys identify such duplicates.
std::string DeadLetterKey(const SourceRecord& record);

// Exponential backoff for retries: initial, 2x, 4x ... capped at `max`.
class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max) : initial_(initial), max_(max) {}
  absl::Duration Next();
  void Reset() { attempts_ = 0; }
  int attempts() const { return attempts_; }

 private:
  absl::Duration initial_;
  absl::Duration max_;
  int attempts_ = 0;
};

}  // namespace clinical::projection

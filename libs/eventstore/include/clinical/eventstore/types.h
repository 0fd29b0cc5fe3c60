#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "clinical/common/v1/envelope.pb.h"
#include "clinical/common/v1/types.pb.h"

namespace clinical::eventstore {

// What the writer expects the aggregate's current version to be. Versions are 1-based and
// gapless; 0 means "no events yet".
class ExpectedVersion {
 public:
  // No check: append after whatever is there.
  static ExpectedVersion Any() { return ExpectedVersion(kAny); }
  // The aggregate must not exist yet (a create command).
  static ExpectedVersion NoStream() { return ExpectedVersion(0); }
  // The aggregate must be exactly at `version` (optimistic concurrency). Exactly(0) is
  // NoStream.
  static ExpectedVersion Exactly(int64_t version) { return ExpectedVersion(version); }

  bool is_any() const { return value_ == kAny; }
  int64_t version() const { return value_; }
  bool Matches(int64_t current) const { return is_any() || current == value_; }

 private:
  static constexpr int64_t kAny = -1;
  explicit ExpectedVersion(int64_t value) : value_(value) {}
  int64_t value_;
};

// One command's append: events for one aggregate, all or none.
struct AppendRequest {
  std::string aggregate_id;
  ExpectedVersion expected_version = ExpectedVersion::Any();
  // Client-chosen idempotency key, required. A retry with the same key for the same
  // aggregate returns the first result and writes nothing.
  std::string command_id;
  // The events, in order. The caller fills event_type, payload, occurred_at, actor,
  // tenant_id, correlation/causation ids, trace and schema_version. The store sets
  // aggregate_type, aggregate_id, aggregate_version, command_id, recorded_at, and event_id
  // when empty.
  std::vector<common::v1::EventEnvelope> events;
};

struct AppendResult {
  int64_t first_version = 0;  // version of the first event written
  int64_t last_version = 0;   // the aggregate's version after the append
  // Position of the last record written: pass it to a view query to read your writes.
  common::v1::LogPosition position;
  // True when the command id had been applied before: nothing was written now.
  bool duplicate = false;
  // The recorded_at the store stamped on the events written now (unset for a duplicate), so
  // a writer's in-memory state can carry the same time a replay of the log will.
  google::protobuf::Timestamp recorded_at;
};

// A record read back from the log.
struct LoggedEvent {
  common::v1::EventEnvelope envelope;
  int32_t partition = 0;
  int64_t offset = 0;
};

}  // namespace clinical::eventstore

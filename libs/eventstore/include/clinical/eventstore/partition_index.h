#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "clinical/eventstore/types.h"
#include "clinical/eventstore/v1/storage.pb.h"

namespace clinical::eventstore {

// PartitionIndex is what the owner of a partition knows about it: each aggregate's current
// version, where its events are, its latest snapshot, and the results of its most recent
// commands. It is rebuilt when a partition is acquired (from the latest checkpoint plus the
// log after it) and updated after each commit. Pure data, no I/O; not thread-safe (the
// store guards it).
//
// Idempotency window: the last `commands_kept` commands of each aggregate are remembered
// (and survive checkpoints). A retry older than that is treated as a new command; clients
// that send expected_version get ABORTED for it instead of a duplicate write.
class PartitionIndex {
 public:
  static constexpr size_t kDefaultCommandsKept = 64;
  explicit PartitionIndex(size_t commands_kept = kDefaultCommandsKept)
      : commands_kept_(commands_kept) {}

  // 0 when the aggregate has no events.
  int64_t Version(const std::string& aggregate_id) const;
  // The result of an earlier command, or nullptr.
  const AppendResult* FindCommand(const std::string& aggregate_id,
                                  const std::string& command_id) const;

  // Where to find the aggregate's events from `from_version` on: the exact offsets when
  // the index has them (events recorded since the last checkpoint), otherwise the offset
  // of the aggregate's first event, from which a reader scans by key.
  struct EventLocation {
    std::vector<int64_t> offsets;  // exact, in version order; empty if unknown
    int64_t scan_from = -1;        // >= 0 when offsets are not all known
    int64_t last_version = 0;
  };
  EventLocation Locate(const std::string& aggregate_id, int64_t from_version) const;

  // Offset of the aggregate's latest snapshot in the snapshots topic, or -1.
  int64_t SnapshotOffset(const std::string& aggregate_id) const;
  void SetSnapshotOffset(const std::string& aggregate_id, int64_t offset);

  // First offset not yet read into the index.
  int64_t next_offset() const { return next_offset_; }
  size_t aggregate_count() const { return aggregates_.size(); }

  // Adds one committed event found at `offset`. INTERNAL if its version is not the next
  // one for its aggregate (a broken log invariant: the caller logs and stops).
  absl::Status Record(const common::v1::EventEnvelope& event, const std::string& topic,
                      int32_t partition, int64_t offset);
  // Moves past offsets that hold no event (transaction markers, aborted records).
  void AdvanceTo(int64_t next_offset);

  // The index as checkpoint chunks of at most `aggregates_per_chunk` aggregates each.
  std::vector<eventstore::v1::IndexChunk> ToChunks(int32_t partition, int64_t sequence,
                                                   size_t aggregates_per_chunk) const;
  // Replaces the index with a checkpoint's content. INVALID_ARGUMENT if a chunk is missing
  // or belongs to another checkpoint.
  absl::Status Restore(const eventstore::v1::IndexCheckpoint& manifest,
                       const std::vector<eventstore::v1::IndexChunk>& chunks,
                       const std::string& topic);

 private:
  struct Aggregate {
    int64_t version = 0;
    int64_t first_offset = -1;
    int64_t snapshot_offset = -1;
    // Offsets of versions offsets_from_version, offsets_from_version + 1, ...
    int64_t offsets_from_version = 1;
    std::vector<int64_t> offsets;
    std::map<std::string, AppendResult, std::less<>> commands;
    std::deque<std::string> command_order;  // oldest first, at most commands_kept_
  };
  size_t commands_kept_;
  std::unordered_map<std::string, Aggregate> aggregates_;
  int64_t next_offset_ = 0;
};

// The plan for one group-commit batch, computed without I/O from the index and the
// requests in arrival order. Requests for the same aggregate see each other's effect.
struct BatchPlan {
  enum class Outcome {
    kWrite,             // append; versions assigned below
    kAlreadyApplied,    // command id applied before: answer with `result`, write nothing
    kSameAsEarlierInBatch,  // same command id as request `same_as` in this batch
    kRejected,          // answer with `rejection` (INVALID_ARGUMENT or ABORTED)
  };
  struct Item {
    Outcome outcome = Outcome::kRejected;
    absl::Status rejection;
    AppendResult result;      // kAlreadyApplied
    size_t same_as = 0;       // kSameAsEarlierInBatch
    int64_t first_version = 0;  // kWrite
    int64_t last_version = 0;   // kWrite
  };
  std::vector<Item> items;  // one per request, same order
};

BatchPlan PlanBatch(const PartitionIndex& index, const std::vector<const AppendRequest*>& requests);

// Field-level validation of one request. INVALID_ARGUMENT naming the field; no values are
// echoed (they may be patient data).
absl::Status ValidateRequest(const AppendRequest& request);

}  // namespace clinical::eventstore

#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "clinical/eventstore/types.h"

namespace clinical::eventstore {

// PartitionIndex is what the owner of a partition knows about it: each aggregate's current
// version and the offsets of its events, and the result of every command applied. It is
// rebuilt from the log when a partition is acquired and updated after each commit.
// Pure data, no I/O; not thread-safe (the store guards it).
class PartitionIndex {
 public:
  // 0 when the aggregate has no events.
  int64_t Version(const std::string& aggregate_id) const;
  // The result of an earlier command, or nullptr.
  const AppendResult* FindCommand(const std::string& aggregate_id,
                                  const std::string& command_id) const;
  // Offsets of the aggregate's events in version order (empty if none).
  const std::vector<int64_t>& Offsets(const std::string& aggregate_id) const;

  // First offset not yet read into the index.
  int64_t next_offset() const { return next_offset_; }
  size_t aggregate_count() const { return aggregates_.size(); }

  // Adds one committed event found at `offset`. INTERNAL if its version is not the next
  // one for its aggregate (a broken log invariant: the caller logs and stops).
  absl::Status Record(const common::v1::EventEnvelope& event, const std::string& topic,
                      int32_t partition, int64_t offset);
  // Moves past offsets that hold no event (transaction markers, aborted records).
  void AdvanceTo(int64_t next_offset);

 private:
  struct Aggregate {
    int64_t version = 0;
    std::vector<int64_t> offsets;
    std::map<std::string, AppendResult, std::less<>> commands;
  };
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

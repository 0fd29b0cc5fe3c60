#pragma once

// Reads the views' figures from Redis, always from the active version (projection's
// ReadActive: one MULTI that re-reads <root>:active, so a read never mixes versions).
// Returns the same plain values as the brute-force recomputation (figures.h).
//
// Errors: NOT_FOUND when no version is active yet, UNAVAILABLE when Redis is unreachable,
// INTERNAL for replies of an unexpected shape. Not thread-safe (one connection).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clinical/redis/connection.h"
#include "figures.h"

namespace clinical::views {

template <typename T>
struct Versioned {
  std::string version;
  T value;
};

struct CaseloadRead {
  Counters counters;
  std::vector<CaseFacts> cases;  // by case id
};

class ViewReader {
 public:
  ViewReader(redis::Connection& redis, std::string root) : redis_(redis), root_(std::move(root)) {}

  // Group ids of a dimension seen in the tenant, sorted.
  absl::StatusOr<Versioned<std::vector<std::string>>> Groups(const std::string& tenant,
                                                             const std::string& dim);
  // Counters of the given groups, in order (all zero for an unknown group).
  absl::StatusOr<Versioned<std::vector<Counters>>> GroupCounters(
      const std::string& tenant, const std::string& dim, const std::vector<std::string>& ids);
  // A case manager's counters and open cases, with the figures that depend on the clock
  // (next appointment, overdue tasks, goals overdue / due soon) evaluated at `clock`.
  absl::StatusOr<Versioned<CaseloadRead>> Caseload(const std::string& tenant,
                                                   const std::string& case_manager_id,
                                                   const CaseClock& clock);
  struct Position {
    std::string topic;
    int32_t partition = 0;
    int64_t offset = 0;
  };
  // Whether the ACTIVE version has applied every position (false when no version is active
  // yet). Versions only move forward and a new version is activated only when it is not
  // behind the old one, so once true it stays true for every later read.
  absl::StatusOr<bool> ActiveHasReached(const std::vector<Position>& positions);

  // Outcome figures of a group in a period (all zero when nothing happened).
  absl::StatusOr<Versioned<Outcome>> GetOutcome(const std::string& tenant, const std::string& dim,
                                                const std::string& id, const std::string& label);

 private:
  redis::Connection& redis_;
  std::string root_;
};

}  // namespace clinical::views

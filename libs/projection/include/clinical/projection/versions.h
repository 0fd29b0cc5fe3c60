#pragma once

// Versions of a view and the query side's switch between them (rebuild without downtime):
// a new version is built under its own prefix while the active one keeps serving; the
// switch is one SET of <root>:active; the old prefix is dropped afterwards.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clinical/projection/read_model.h"
#include "clinical/redis/connection.h"

namespace clinical::projection {

// The version queries read now; nullopt if none was activated. UNAVAILABLE if Redis is.
absl::StatusOr<std::optional<std::string>> ActiveVersion(redis::Connection& redis,
                                                         const std::string& root);

// Makes `version` the active one unconditionally (an operator's switch or rollback).
absl::Status SetActiveVersion(redis::Connection& redis, const std::string& root,
                              const std::string& version);

// Makes `keys`'s version active only if it is not behind the active version on any of the
// given partitions (its stored offset >= the active version's, missing = -1); checked and
// switched in one Lua script, so no writer can move either offset in between. Returns
// whether the version is active afterwards. The runtime calls this when
// activate_when_caught_up is set.
absl::StatusOr<bool> ActivateIfNotBehind(redis::Connection& redis, const KeySpace& keys,
                                         const std::vector<std::string>& offset_suffixes);

// Deletes every key of `version` (SCAN + UNLINK in batches) and returns how many.
// FAILED_PRECONDITION if it is the active version. Stop the version's runtime first:
// keys it writes during the drop would survive.
absl::StatusOr<int64_t> DropVersion(redis::Connection& redis, const std::string& root,
                                    const std::string& version);

// The result of a read against the active version.
struct ActiveRead {
  std::string version;
  std::vector<redis::Reply> replies;  // one per command built, in order
};

// Runs the read commands that `build` makes for the active version's key space, in one
// MULTI/EXEC that also re-reads <root>:active. If a switch happened between resolving the
// version and the EXEC the read is repeated (up to `attempts` times), so a reader never
// mixes two versions and never reads a version that is being dropped (a version is only
// dropped after it stopped being active). NOT_FOUND if no version is active, ABORTED if
// the version kept changing, UNAVAILABLE if Redis is unreachable.
absl::StatusOr<ActiveRead> ReadActive(
    redis::Connection& redis, const std::string& root,
    const std::function<std::vector<redis::Args>(const KeySpace&)>& build, int attempts = 3);

}  // namespace clinical::projection

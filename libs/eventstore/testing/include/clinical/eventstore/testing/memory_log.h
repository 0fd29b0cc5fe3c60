#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "clinical/eventstore/event_log.h"

namespace clinical::eventstore::testing {

// An in-memory EventLog for the engines' unit tests: versions, idempotent commands and
// expected-version checks as EventStore has them, plus a switch to make the next append
// fail (optionally after committing, as a lost acknowledgement). Thread-safe, except the
// public switches, which a test sets between calls.
class MemoryLog : public EventLog {
 public:
  absl::StatusOr<AppendResult> Append(AppendRequest request) override;
  absl::StatusOr<std::vector<LoggedEvent>> Load(const std::string& aggregate_id, int64_t from_version) const override;

  // How many events an aggregate has.
  int64_t Events(const std::string& aggregate_id) const;
  // Every event appended, in order, and how many.
  std::vector<LoggedEvent> All() const;
  int64_t size() const;

  int appends = 0;                     // Append calls, failed ones included
  bool fail_next = false;              // the next Append answers UNAVAILABLE...
  bool commit_before_failing = false;  // ...after committing its events

 private:
  AppendResult Commit(const AppendRequest& request);

  mutable std::mutex mutex_;
  std::map<std::string, std::vector<LoggedEvent>> log_;
  std::vector<LoggedEvent> all_;
  std::map<std::pair<std::string, std::string>, AppendResult> commands_;
  int64_t next_offset_ = 0;
};

}  // namespace clinical::eventstore::testing

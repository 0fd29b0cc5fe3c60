#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clinical/eventstore/event_store.h"

namespace clinical::eventstore {

// Where a service's engine writes and reads its aggregates' events: the event store in
// production (EventStoreLog), an in-memory log in the engines' unit tests. The same
// contract as EventStore's Append and Load.
class EventLog {
 public:
  virtual ~EventLog() = default;
  virtual absl::StatusOr<AppendResult> Append(AppendRequest request) = 0;
  virtual absl::StatusOr<std::vector<LoggedEvent>> Load(const std::string& aggregate_id,
                                                        int64_t from_version) const = 0;
};

class EventStoreLog : public EventLog {
 public:
  explicit EventStoreLog(EventStore& store) : store_(store) {}
  absl::StatusOr<AppendResult> Append(AppendRequest request) override { return store_.Append(std::move(request)); }
  absl::StatusOr<std::vector<LoggedEvent>> Load(const std::string& aggregate_id,
                                                int64_t from_version) const override {
    return store_.Load(aggregate_id, from_version);
  }

 private:
  EventStore& store_;
};

}  // namespace clinical::eventstore

#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clinical/eventstore/event_store.h"

namespace clinical::case_service {

// Where an engine's events go: the event store in production, an in-memory log in unit
// tests. Same contract as eventstore::EventStore's Append and Load. The case engine and the
// organisation engine each have their own (their own topic).
class EventLog {
 public:
  virtual ~EventLog() = default;
  virtual absl::StatusOr<eventstore::AppendResult> Append(eventstore::AppendRequest request) = 0;
  virtual absl::StatusOr<std::vector<eventstore::LoggedEvent>> Load(const std::string& aggregate_id,
                                                                    int64_t from_version) const = 0;
};

class EventStoreLog : public EventLog {
 public:
  explicit EventStoreLog(eventstore::EventStore& store) : store_(store) {}
  absl::StatusOr<eventstore::AppendResult> Append(eventstore::AppendRequest request) override {
    return store_.Append(std::move(request));
  }
  absl::StatusOr<std::vector<eventstore::LoggedEvent>> Load(const std::string& aggregate_id,
                                                            int64_t from_version) const override {
    return store_.Load(aggregate_id, from_version);
  }

 private:
  eventstore::EventStore& store_;
};

}  // namespace clinical::case_service

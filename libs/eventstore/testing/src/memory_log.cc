#include "clinical/eventstore/testing/memory_log.h"

namespace clinical::eventstore::testing {

absl::StatusOr<AppendResult> MemoryLog::Append(AppendRequest request) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++appends;
  if (fail_next) {
    fail_next = false;
    if (commit_before_failing) Commit(request);
    return absl::UnavailableError("broker did not answer");
  }
  if (auto it = commands_.find({request.aggregate_id, request.command_id}); it != commands_.end()) {
    AppendResult again = it->second;
    again.duplicate = true;
    return again;
  }
  const auto& events = log_[request.aggregate_id];
  if (!request.expected_version.Matches(static_cast<int64_t>(events.size()))) {
    return absl::AbortedError("version conflict");
  }
  return Commit(request);
}

absl::StatusOr<std::vector<LoggedEvent>> MemoryLog::Load(const std::string& aggregate_id,
                                                         int64_t from_version) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<LoggedEvent> out;
  auto it = log_.find(aggregate_id);
  if (it == log_.end()) return out;
  for (const auto& e : it->second) {
    if (e.envelope.aggregate_version() >= from_version) out.push_back(e);
  }
  return out;
}

int64_t MemoryLog::Events(const std::string& aggregate_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = log_.find(aggregate_id);
  return it == log_.end() ? 0 : static_cast<int64_t>(it->second.size());
}

std::vector<LoggedEvent> MemoryLog::All() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return all_;
}

int64_t MemoryLog::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(all_.size());
}

AppendResult MemoryLog::Commit(const AppendRequest& request) {
  auto& events = log_[request.aggregate_id];
  AppendResult result;
  result.first_version = static_cast<int64_t>(events.size()) + 1;
  for (auto envelope : request.events) {
    envelope.set_aggregate_id(request.aggregate_id);
    envelope.set_aggregate_version(static_cast<int64_t>(events.size()) + 1);
    envelope.set_command_id(request.command_id);
    events.push_back({envelope, 0, next_offset_});
    all_.push_back({envelope, 0, next_offset_++});
  }
  result.last_version = static_cast<int64_t>(events.size());
  result.position.set_offset(next_offset_ - 1);
  commands_[{request.aggregate_id, request.command_id}] = result;
  return result;
}

}  // namespace clinical::eventstore::testing

#include "clinical/eventstore/partition_index.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace clinical::eventstore {
namespace {

const std::vector<int64_t> kNoOffsets;

}  // namespace

int64_t PartitionIndex::Version(const std::string& aggregate_id) const {
  auto it = aggregates_.find(aggregate_id);
  return it == aggregates_.end() ? 0 : it->second.version;
}

const AppendResult* PartitionIndex::FindCommand(const std::string& aggregate_id,
                                                const std::string& command_id) const {
  auto it = aggregates_.find(aggregate_id);
  if (it == aggregates_.end()) return nullptr;
  auto command = it->second.commands.find(command_id);
  return command == it->second.commands.end() ? nullptr : &command->second;
}

const std::vector<int64_t>& PartitionIndex::Offsets(const std::string& aggregate_id) const {
  auto it = aggregates_.find(aggregate_id);
  return it == aggregates_.end() ? kNoOffsets : it->second.offsets;
}

absl::Status PartitionIndex::Record(const common::v1::EventEnvelope& event,
                                    const std::string& topic, int32_t partition,
                                    int64_t offset) {
  Aggregate& aggregate = aggregates_[event.aggregate_id()];
  if (event.aggregate_version() != aggregate.version + 1) {
    return absl::InternalError(absl::StrCat("version gap at offset ", offset, ": found ",
                                            event.aggregate_version(), " after ",
                                            aggregate.version));
  }
  aggregate.version = event.aggregate_version();
  aggregate.offsets.push_back(offset);
  // A command's events are consecutive; the entry ends up describing the whole command.
  AppendResult& result = aggregate.commands[event.command_id()];
  if (result.first_version == 0) result.first_version = event.aggregate_version();
  result.last_version = event.aggregate_version();
  result.position.set_topic(topic);
  result.position.set_partition(partition);
  result.position.set_offset(offset);
  result.duplicate = true;  // any later lookup is, by definition, a retry
  next_offset_ = std::max(next_offset_, offset + 1);
  return absl::OkStatus();
}

void PartitionIndex::AdvanceTo(int64_t next_offset) {
  next_offset_ = std::max(next_offset_, next_offset);
}

absl::Status ValidateRequest(const AppendRequest& request) {
  if (request.aggregate_id.empty()) return absl::InvalidArgumentError("aggregate_id is required");
  if (request.command_id.empty()) return absl::InvalidArgumentError("command_id is required");
  if (request.events.empty()) return absl::InvalidArgumentError("events: at least one is required");
  if (!request.expected_version.is_any() && request.expected_version.version() < 0) {
    return absl::InvalidArgumentError("expected_version must be >= 0");
  }
  for (size_t i = 0; i < request.events.size(); ++i) {
    const auto& event = request.events[i];
    if (event.event_type().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("events[", i, "].event_type is required"));
    }
    if (event.payload().type_url() != absl::StrCat("type.googleapis.com/", event.event_type())) {
      return absl::InvalidArgumentError(
          absl::StrCat("events[", i, "].payload does not hold event_type"));
    }
    if (event.tenant_id().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("events[", i, "].tenant_id is required"));
    }
  }
  return absl::OkStatus();
}

BatchPlan PlanBatch(const PartitionIndex& index,
                    const std::vector<const AppendRequest*>& requests) {
  BatchPlan plan;
  plan.items.resize(requests.size());
  // Effects of earlier requests of this batch, not yet in the index.
  std::map<std::string, int64_t> pending_versions;
  std::map<std::pair<std::string, std::string>, size_t> pending_commands;

  for (size_t i = 0; i < requests.size(); ++i) {
    const AppendRequest& request = *requests[i];
    BatchPlan::Item& item = plan.items[i];
    if (absl::Status valid = ValidateRequest(request); !valid.ok()) {
      item.rejection = valid;
      continue;
    }
    // Idempotency comes before the version check: a retry of a command that succeeded
    // must get its original answer even though the version has moved on since.
    if (const AppendResult* done = index.FindCommand(request.aggregate_id, request.command_id)) {
      item.outcome = BatchPlan::Outcome::kAlreadyApplied;
      item.result = *done;
      continue;
    }
    const auto command_key = std::make_pair(request.aggregate_id, request.command_id);
    if (auto earlier = pending_commands.find(command_key); earlier != pending_commands.end()) {
      item.outcome = BatchPlan::Outcome::kSameAsEarlierInBatch;
      item.same_as = earlier->second;
      continue;
    }
    auto pending = pending_versions.find(request.aggregate_id);
    const int64_t current =
        pending != pending_versions.end() ? pending->second : index.Version(request.aggregate_id);
    if (!request.expected_version.Matches(current)) {
      item.rejection = absl::AbortedError(
          absl::StrCat("version conflict: aggregate is at version ", current, ", expected ",
                       request.expected_version.version()));
      continue;
    }
    item.outcome = BatchPlan::Outcome::kWrite;
    item.first_version = current + 1;
    item.last_version = current + static_cast<int64_t>(request.events.size());
    pending_versions[request.aggregate_id] = item.last_version;
    pending_commands[command_key] = i;
  }
  return plan;
}

}  // namespace clinical::eventstore

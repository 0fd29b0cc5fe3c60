#include "clinical/eventstore/partition_index.h"

#include <algorithm>

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace clinical::eventstore {

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

PartitionIndex::EventLocation PartitionIndex::Locate(const std::string& aggregate_id,
                                                     int64_t from_version) const {
  EventLocation location;
  auto it = aggregates_.find(aggregate_id);
  if (it == aggregates_.end()) return location;
  const Aggregate& aggregate = it->second;
  location.last_version = aggregate.version;
  from_version = std::max<int64_t>(from_version, 1);
  if (from_version > aggregate.version) return location;
  if (from_version >= aggregate.offsets_from_version) {
    for (int64_t v = from_version; v <= aggregate.version; ++v) {
      location.offsets.push_back(
          aggregate.offsets[static_cast<size_t>(v - aggregate.offsets_from_version)]);
    }
  } else {
    location.scan_from = aggregate.first_offset;
  }
  return location;
}

int64_t PartitionIndex::SnapshotOffset(const std::string& aggregate_id) const {
  auto it = aggregates_.find(aggregate_id);
  return it == aggregates_.end() ? -1 : it->second.snapshot_offset;
}

void PartitionIndex::SetSnapshotOffset(const std::string& aggregate_id, int64_t offset) {
  auto it = aggregates_.find(aggregate_id);
  if (it != aggregates_.end()) it->second.snapshot_offset = std::max(it->second.snapshot_offset, offset);
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
  if (aggregate.version == 1) aggregate.first_offset = offset;
  aggregate.offsets.push_back(offset);
  // A command's events are consecutive; the entry ends up describing the whole command.
  auto [entry, inserted] = aggregate.commands.try_emplace(event.command_id());
  AppendResult& result = entry->second;
  if (inserted) {
    result.first_version = event.aggregate_version();
    aggregate.command_order.push_back(event.command_id());
    if (aggregate.command_order.size() > commands_kept_) {
      aggregate.commands.erase(aggregate.command_order.front());
      aggregate.command_order.pop_front();
    }
  }
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

std::vector<eventstore::v1::IndexChunk> PartitionIndex::ToChunks(
    int32_t partition, int64_t sequence, size_t aggregates_per_chunk) const {
  std::vector<eventstore::v1::IndexChunk> chunks;
  for (const auto& [id, aggregate] : aggregates_) {
    if (chunks.empty() ||
        static_cast<size_t>(chunks.back().aggregates_size()) >= aggregates_per_chunk) {
      chunks.emplace_back();
      chunks.back().set_partition(partition);
      chunks.back().set_sequence(sequence);
      chunks.back().set_index(static_cast<int32_t>(chunks.size() - 1));
    }
    eventstore::v1::AggregateEntry* entry = chunks.back().add_aggregates();
    entry->set_aggregate_id(id);
    entry->set_version(aggregate.version);
    entry->set_first_offset(aggregate.first_offset);
    entry->set_snapshot_offset(aggregate.snapshot_offset);
    for (const std::string& command_id : aggregate.command_order) {
      const AppendResult& result = aggregate.commands.at(command_id);
      eventstore::v1::CommandEntry* command = entry->add_recent_commands();
      command->set_command_id(command_id);
      command->set_first_version(result.first_version);
      command->set_last_version(result.last_version);
      command->set_offset(result.position.offset());
    }
  }
  return chunks;
}

absl::Status PartitionIndex::Restore(const eventstore::v1::IndexCheckpoint& manifest,
                                     const std::vector<eventstore::v1::IndexChunk>& chunks,
                                     const std::string& topic) {
  if (static_cast<int32_t>(chunks.size()) != manifest.chunk_count()) {
    return absl::InvalidArgumentError("checkpoint is missing chunks");
  }
  std::unordered_map<std::string, Aggregate> restored;
  for (int32_t i = 0; i < manifest.chunk_count(); ++i) {
    const eventstore::v1::IndexChunk& chunk = chunks[static_cast<size_t>(i)];
    if (chunk.sequence() != manifest.sequence() || chunk.index() != i) {
      return absl::InvalidArgumentError("checkpoint chunk belongs to another checkpoint");
    }
    for (const eventstore::v1::AggregateEntry& entry : chunk.aggregates()) {
      Aggregate& aggregate = restored[entry.aggregate_id()];
      aggregate.version = entry.version();
      aggregate.first_offset = entry.first_offset();
      aggregate.snapshot_offset = entry.snapshot_offset();
      aggregate.offsets_from_version = entry.version() + 1;  // later events come from the log
      for (const eventstore::v1::CommandEntry& command : entry.recent_commands()) {
        AppendResult& result = aggregate.commands[command.command_id()];
        result.first_version = command.first_version();
        result.last_version = command.last_version();
        result.position.set_topic(topic);
        result.position.set_partition(manifest.partition());
        result.position.set_offset(command.offset());
        result.duplicate = true;
        aggregate.command_order.push_back(command.command_id());
      }
    }
  }
  aggregates_ = std::move(restored);
  next_offset_ = manifest.next_offset();
  return absl::OkStatus();
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

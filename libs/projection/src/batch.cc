#include "clinical/projection/batch.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace clinical::projection {

BatchPlan PlanBatch(const ReadModel& model, const KeySpace& keys,
                    const std::vector<SourceRecord>& records, int64_t stored_offset) {
  BatchPlan plan;
  plan.last_offset = stored_offset;
  std::vector<RedisCommand> event_commands;
  for (const SourceRecord& record : records) {
    if (record.offset <= stored_offset) {
      ++plan.events_skipped;
      continue;
    }
    ++plan.events_new;
    plan.last_offset = std::max(plan.last_offset, record.offset);

    common::v1::EventEnvelope event;
    if (!event.ParseFromString(record.value)) {
      plan.dead_letters.push_back({record, "undecodable envelope"});
      continue;
    }
    // An empty or foreign byte string can parse as a (nearly) empty message; without these
    // two fields no view can place the event.
    if (event.aggregate_id().empty() || event.event_type().empty()) {
      plan.dead_letters.push_back({record, "envelope lacks aggregate_id or event_type"});
      continue;
    }
    event_commands.clear();
    const absl::Status translated = model.Translate(event, keys, event_commands);
    if (!translated.ok()) {
      // Whatever the model appended before failing is dropped: a poison event has no effect.
      plan.dead_letters.push_back(
          {record, absl::StrCat(absl::StatusCodeToString(translated.code()), ": ",
                                std::string(translated.message()))});
      continue;
    }
    for (RedisCommand& command : event_commands) {
      plan.commands.push_back(std::move(command));
      plan.command_offsets.push_back(record.offset);
    }
  }
  return plan;
}

std::vector<redis::Args> TransactionCommands(const BatchPlan& plan,
                                             const std::vector<LuaScript>& scripts,
                                             const std::string& offset_key) {
  std::vector<redis::Args> commands;
  commands.reserve(plan.commands.size() + scripts.size() + 3);
  commands.push_back({"MULTI"});
  for (const LuaScript& script : scripts) commands.push_back({"SCRIPT", "LOAD", script.source()});
  commands.insert(commands.end(), plan.commands.begin(), plan.commands.end());
  commands.push_back({"SET", offset_key, absl::StrCat(plan.last_offset)});
  commands.push_back({"EXEC"});
  return commands;
}

std::string DeadLetterKey(const SourceRecord& record) {
  return absl::StrCat(record.topic, "/", record.partition, "/", record.offset);
}

absl::Duration Backoff::Next() {
  absl::Duration delay = initial_;
  for (int i = 0; i < attempts_ && delay < max_; ++i) delay *= 2;
  ++attempts_;
  return std::min(delay, max_);
}

}  // namespace clinical::projection

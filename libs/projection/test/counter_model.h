#pragma once

// A sample read model for the tests and the crash-test worker: per aggregate, the number
// of events, the highest aggregate version and the last event type (a Lua script, because
// "highest" needs the current value), plus a total counter and the set of aggregates.

#include <string>
#include <vector>

#include "clinical/projection/read_model.h"

namespace clinical::projection::testing {

// Event types with special meaning to the sample model.
inline constexpr char kCountedType[] = "test.v1.Counted";
inline constexpr char kIgnoredType[] = "test.v1.Ignored";    // no commands
inline constexpr char kPoisonType[] = "test.v1.Poison";      // the model refuses it
inline constexpr char kBuggyType[] = "test.v1.Buggy";        // emits a command that fails at run time

class CounterModel : public ReadModel {
 public:
  explicit CounterModel(std::vector<std::string> topics);

  std::string Name() const override { return "counters"; }
  std::vector<std::string> Topics() const override { return topics_; }
  std::vector<LuaScript> Scripts() const override { return {count_}; }
  absl::Status Translate(const common::v1::EventEnvelope& event, const KeySpace& keys,
                         std::vector<RedisCommand>& out) const override;

 private:
  std::vector<std::string> topics_;
  LuaScript count_;
};

// A serialized EventEnvelope for the sample model.
std::string MakeEvent(const std::string& aggregate_id, int64_t version,
                      const std::string& event_type = kCountedType);

}  // namespace clinical::projection::testing

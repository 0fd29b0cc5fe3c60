#include "counter_model.h"

#include "absl/strings/str_cat.h"

namespace clinical::projection::testing {
namespace {

// Free of run-time errors for every input Translate can produce (ARGV[1] is always a
// decimal integer), as the runtime requires of scripts.
constexpr char kCountScript[] = R"lua(
redis.call('HINCRBY', KEYS[1], 'events', 1)
local last = tonumber(redis.call('HGET', KEYS[1], 'last_version') or '0')
if tonumber(ARGV[1]) > last then redis.call('HSET', KEYS[1], 'last_version', ARGV[1]) end
redis.call('HSET', KEYS[1], 'last_type', ARGV[2])
return 1
)lua";

}  // namespace

CounterModel::CounterModel(std::vector<std::string> topics)
    : topics_(std::move(topics)), count_("count", kCountScript) {}

absl::Status CounterModel::Translate(const common::v1::EventEnvelope& event,
                                     const KeySpace& keys, std::vector<RedisCommand>& out) const {
  if (event.event_type() == kIgnoredType) return absl::OkStatus();
  if (event.event_type() == kPoisonType) {
    return absl::InvalidArgumentError(
        absl::StrCat("counters view cannot handle event type ", event.event_type()));
  }
  if (event.aggregate_version() < 1) {
    return absl::InvalidArgumentError("aggregate_version must be >= 1");
  }
  if (event.event_type() == kBuggyType) {
    // A deliberate model bug: HINCRBY on the string key "total" fails with WRONGTYPE when
    // Redis runs it, after the earlier commands of the transaction already ran.
    out.push_back({"HINCRBY", keys.Key("total"), "bug", "1"});
    return absl::OkStatus();
  }
  out.push_back(count_.Call({keys.Key(absl::StrCat("agg:", event.aggregate_id()))},
                            {absl::StrCat(event.aggregate_version()), event.event_type()}));
  out.push_back({"INCR", keys.Key("total")});
  out.push_back({"SADD", keys.Key("aggregates"), event.aggregate_id()});
  return absl::OkStatus();
}

std::string MakeEvent(const std::string& aggregate_id, int64_t version,
                      const std::string& event_type) {
  common::v1::EventEnvelope event;
  event.set_event_id(absl::StrCat(aggregate_id, "-", version));
  event.set_aggregate_type("test");
  event.set_aggregate_id(aggregate_id);
  event.set_aggregate_version(version);
  event.set_event_type(event_type);
  event.set_schema_version(1);
  return event.SerializeAsString();
}

}  // namespace clinical::projection::testing

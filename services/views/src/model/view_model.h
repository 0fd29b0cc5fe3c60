#pragma once

#include <string>
#include <vector>

#include "clinical/projection/read_model.h"

namespace clinical::views {

// The caseload and outcome views as one read model over the case events: a pure translator
// from each event to one call of the "case_event" Lua script, which keeps per-case facts
// and the group counters in step (retract the case's old contribution, apply the event,
// add the new one) in one atomic step. Key layout under the version prefix P, tenant T
// (docs/views-service.md):
//
//   P c:T:<case>               hash: the case's facts (no patient data)
//   P ct:T:<case>              zset: contact notes -> occurred-at (last contact = max)
//   P e:T:<case>               set: open escalation ids
//   P g:T:<dim>:<id>           hash: open-case counters of a group
//   P gc:T:cm:<id>             set: a case manager's open case ids
//   P r:T:<dim>                set: group ids seen
//   P o:T:<dim>:<id>:<period>  hash: outcome counts of a group in a period
//   P od:T:<dim>:<id>:<period> zset: days-to-close samples (seconds), member <case>#<n>
//   P of:T:<dim>:<id>:<period> zset: assignment-to-first-contact samples (seconds)
//
// Ids in keys (tenant, case, program, team, case manager) must match [A-Za-z0-9._@-]{1,128}
// so that no id can forge another key; an event with any other id is dead-lettered.
// Thread-safe (no mutable state).
class CaseViewModel : public projection::ReadModel {
 public:
  explicit CaseViewModel(std::string case_topic);

  std::string Name() const override { return "views"; }
  std::vector<std::string> Topics() const override { return {case_topic_}; }
  std::vector<projection::LuaScript> Scripts() const override { return {script_}; }
  absl::Status Translate(const common::v1::EventEnvelope& event,
                         const projection::KeySpace& keys,
                         std::vector<projection::RedisCommand>& out) const override;

 private:
  std::string case_topic_;
  projection::LuaScript script_;
};

// True for ids allowed in keys (see above).
bool IsKeySafeId(const std::string& id);

}  // namespace clinical::views

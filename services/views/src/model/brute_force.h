#pragma once

// The views recomputed from events alone, by brute force: every case is folded with the case
// service's own Evolve, and every outcome figure is counted straight from the events. Pure
// (no I/O); independent of the Lua scripts, so the property test can compare the two.

#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "clinical/common/v1/envelope.pb.h"
#include "figures.h"

namespace clinical::views {

struct GroupKey {
  std::string tenant;
  std::string dim;  // kDimTenant, kDimProgram, kDimTeam, kDimCaseManager
  std::string id;
  friend auto operator<=>(const GroupKey&, const GroupKey&) = default;
};

struct ViewFigures {
  // Every group ever seen (as the view's registries hold them), with its counters.
  std::map<GroupKey, Counters> counters;
  // Open cases per (tenant, case manager), by case id.
  std::map<std::pair<std::string, std::string>, std::vector<CaseFacts>> caseloads;
  // Outcomes per group and period label (only groups/periods with any event).
  std::map<std::pair<GroupKey, std::string>, Outcome> outcomes;
};

// `events`: case events in log order (each case's events in version order; cases may
// interleave) mixed with scheduling events (each appointment's in order) in any order
// relative to the case events. Other events are ignored. The caseloads' clock-dependent
// facts (next appointment, overdue tasks, goals) are evaluated at `clock`.
ViewFigures BruteForce(const std::vector<common::v1::EventEnvelope>& events, const CaseClock& clock);

}  // namespace clinical::views

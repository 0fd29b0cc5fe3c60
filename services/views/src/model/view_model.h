#pragma once

#include <optional>
#include <string>
#include <vector>

#include "clinical/projection/read_model.h"

namespace clinical::views {

// The caseload and outcome views as one read model over the case events and the scheduling
// events: a pure translator from each event to one call of the "case_event" Lua script
// (case topic), which keeps per-case facts and the group counters in step (retract the
// case's old contribution, apply the event, add the new one) in one atomic step, or of the
// "appointment_event" script (scheduling topic). Key layout under the version prefix P,
// tenant T (docs/views-service.md):
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
//   P gd:T:<case> / td:<case>  hash: goal / task id -> due time (Unix s) of each with one
//   P go:T:<case> / to:<case>  zset: the open goals / tasks with a due time, by due time
//   P a:T:<appointment>        hash: the appointment's case and per occurrence s<i> status,
//                              t<i> start, l<i> period labels of the start
//   P nx:T:<case>              zset: booked occurrences <appointment>#<i> by start time
//   P ca:T:<case>              hash: <period>|k / <period>|n: the case's kept / no-show
//                              appointments (moved between groups with the case)
//
// Ids in keys (tenant, case, program, team, case manager) must match [A-Za-z0-9._@-]{1,128}
// so that no id can forge another key; an event with any other id is dead-lettered.
// Thread-safe (no mutable state).
class CaseViewModel : public projection::ReadModel {
 public:
  CaseViewModel(std::string case_topic, std::string scheduling_topic);

  std::string Name() const override { return "views"; }
  std::vector<std::string> Topics() const override { return {case_topic_, scheduling_topic_}; }
  std::vector<projection::LuaScript> Scripts() const override {
    return {script_, appointment_script_};
  }
  absl::Status Translate(const common::v1::EventEnvelope& event,
                         const projection::KeySpace& keys,
                         std::vector<projection::RedisCommand>& out) const override;

 private:
  absl::Status TranslateScheduling(const common::v1::EventEnvelope& event,
                                   const projection::KeySpace& keys,
                                   std::vector<projection::RedisCommand>& out) const;

  std::string case_topic_;
  std::string scheduling_topic_;
  projection::LuaScript script_;
  projection::LuaScript appointment_script_;
};

// True for ids allowed in keys (see above).
bool IsKeySafeId(const std::string& id);

// The instant a goal's target date ("YYYY-MM-DD") falls due: the end of that day, UTC.
// Nullopt when the text is not such a date.
std::optional<int64_t> GoalDueAt(const std::string& target_date);

// Open goals (not completed, cancelled, rejected or entered in error) and open tasks (not
// completed, cancelled, failed, rejected or entered in error) count as due / overdue.
bool IsOpenGoal(int lifecycle_status);
bool IsOpenTask(int task_status);

// Scheduling statuses the outcome view counts: kept = arrived, checked in or fulfilled.
bool IsKeptAppointment(int appointment_status);
bool IsNoShow(int appointment_status);
bool IsBookedAppointment(int appointment_status);

}  // namespace clinical::views

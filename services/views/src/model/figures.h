#pragma once

// The figures of the caseload and outcome views as plain values, and the pure rules that
// turn them into answers (periods, order statistics, worklist order, balancing). Shared by
// the Redis reader (what the view holds) and the brute-force recomputation (what the events
// say), so the property test compares like with like. No I/O, no clock: `now` is passed in.

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace clinical::views {

// Group dimensions, as they appear in keys.
inline constexpr char kDimTenant[] = "tenant";
inline constexpr char kDimProgram[] = "program";
inline constexpr char kDimTeam[] = "team";
inline constexpr char kDimCaseManager[] = "cm";
// Not stored: a supervisor's figures are summed from their teams' at query time.
inline constexpr char kDimSupervisor[] = "supervisor";
// The id of the one tenant-wide group.
inline constexpr char kTenantGroup[] = "_";

// Open-case counters of one group (see CaseloadCounters in views_service.proto).
struct Counters {
  int64_t open = 0;
  int64_t load = 0;
  int64_t high_risk = 0;
  int64_t unaccepted = 0;
  int64_t unassigned = 0;
  int64_t escalations = 0;
  std::map<int, int64_t> by_status;  // CaseStatus number -> open cases (zeros omitted)
  std::map<int, int64_t> by_stage;
  friend bool operator==(const Counters&, const Counters&) = default;
  // Sum of groups without common cases (a supervisor's teams).
  Counters& operator+=(const Counters& other);
};

// What the caseload view keeps of one open case. Times are Unix seconds, 0 = none.
struct CaseFacts {
  std::string case_id;
  std::string program;
  std::string team_id;
  std::string case_manager_id;
  int status = 0;
  int stage = 0;
  int priority = 0;
  int acuity = 0;
  int escalations = 0;
  bool accepted = false;
  int64_t assigned_at = 0;
  int64_t opened_at = 0;
  int64_t last_contact_at = 0;
  // Evaluated against the query's clock (`now`, see CaseClock):
  int64_t next_appointment_at = 0;  // earliest booked occurrence starting after now, 0 none
  int overdue_tasks = 0;            // open tasks due before now
  int goals_overdue = 0;            // open goals whose target day has ended by now
  int goals_due_soon = 0;           // open goals whose target day ends within the horizon
  friend bool operator==(const CaseFacts&, const CaseFacts&) = default;
};

// For test failure messages.
std::string Describe(const CaseFacts& c);
inline void PrintTo(const CaseFacts& c, std::ostream* os) { *os << Describe(c); }

// The clock a caseload is evaluated at: `now` and how far ahead "due soon" looks.
struct CaseClock {
  int64_t now = 0;                  // Unix seconds
  int64_t due_soon_seconds = 14 * 86400;
};

bool IsHighRisk(const CaseFacts& c);

// Outcome figures of one group and period, as stored: counts plus exact order statistics
// (nearest rank) of durations in seconds.
struct Outcome {
  int64_t opened = 0;
  int64_t assigned = 0;
  int64_t closed = 0;
  int64_t cancelled = 0;
  int64_t entered_in_error = 0;
  int64_t goals_met = 0;
  int64_t satisfaction_sum = 0;
  int64_t satisfaction_count = 0;
  int64_t reopened_30 = 0;
  int64_t reopened_90 = 0;
  int64_t contact_minutes = 0;
  int64_t appointments_kept = 0;    // occurrences starting in the period: arrived/checked in/fulfilled
  int64_t appointments_no_show = 0;
  int64_t goals_total = 0;          // goals of the closures (CaseClosed.goals_total)
  int64_t goals_achieved = 0;
  std::map<std::string, int64_t> delivered_cost;  // currency -> minor units, of the closures
  std::map<int, int64_t> reasons;  // ClosureReason number -> closures
  int64_t close_count = 0;         // durations recorded (== closed)
  int64_t close_p50 = 0;           // seconds from opening to closure
  int64_t close_p90 = 0;
  int64_t first_contact_count = 0;
  int64_t first_contact_p50 = 0;   // seconds from assignment to first contact
  friend bool operator==(const Outcome&, const Outcome&) = default;
};

// Nearest-rank percentile of sorted values: the value at rank ceil(p/100 * n) (1-based).
// `sorted` must be non-empty.
int64_t NearestRank(const std::vector<int64_t>& sorted, int percent);
// The 0-based rank NearestRank picks.
int64_t NearestRankIndex(int64_t n, int percent);

enum class Period { kWeek, kMonth, kQuarter };
// Label of the period containing `t` (UTC): "2026-W48" (ISO week), "2026-11", "2026-Q4".
std::string PeriodLabel(Period period, absl::Time t);

// ---- Worklist: who needs attention today ----
//
// Score (higher first), summed:
//   unaccepted assignment            1000
//   each open escalation              400
//   acuity >= 4                       300
//   contact overdue                   200 + 10 per day past the threshold (capped at 300)
//   never contacted since assignment  150
//   priority                          20 x priority (1..5)
//   days since contact                1 per day (capped at 60)
//   overdue tasks                     100 each (capped at 300)
//   overdue goals                     50 each (capped at 150)
//   goals due soon                    20 each (capped at 60)
//   appointment within 24 hours       80 (prepare for it)
// Ties: earlier assignment first, then case id. Reasons list the terms that applied.
struct WorklistEntry {
  CaseFacts facts;
  int64_t score = 0;
  int days_since_contact = 0;
  bool contact_overdue = false;
  std::vector<std::string> reasons;
};
// Whole days since last contact (or since assignment, or opening, when none).
int DaysSinceContact(const CaseFacts& c, absl::Time now);
std::vector<WorklistEntry> RankWorklist(const std::vector<CaseFacts>& cases, absl::Time now,
                                        const std::map<std::string, int>& threshold_days,
                                        int default_threshold_days);

// ---- Balancing ----
struct ManagerLoad {
  std::string case_manager_id;
  Counters counters;
};
struct Suggestion {
  std::string case_manager_id;
  int64_t load = 0;
  int64_t limit = 0;
  int load_after_percent = 0;
  int64_t high_risk = 0;
  int64_t unaccepted = 0;
  std::string reason;
};
// The managers with room for a case of weight `acuity` under `limit` (load + acuity <=
// limit), best first: lowest load after the case as a share of the limit, then fewer
// high-risk cases, then fewer unaccepted assignments, then id. `without_room` counts the rest.
std::vector<Suggestion> SuggestManagers(const std::vector<ManagerLoad>& managers, int acuity,
                                        int64_t limit, int* without_room);

}  // namespace clinical::views

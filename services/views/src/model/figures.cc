#include "figures.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"

namespace clinical::views {

Counters& Counters::operator+=(const Counters& o) {
  open += o.open;
  load += o.load;
  high_risk += o.high_risk;
  unaccepted += o.unaccepted;
  unassigned += o.unassigned;
  escalations += o.escalations;
  for (auto [k, v] : o.by_status) by_status[k] += v;
  for (auto [k, v] : o.by_stage) by_stage[k] += v;
  return *this;
}

std::string Describe(const CaseFacts& c) {
  return absl::StrCat(c.case_id, " program=", c.program, " team=", c.team_id, " cm=",
                      c.case_manager_id, " status=", c.status, " stage=", c.stage,
                      " priority=", c.priority, " acuity=", c.acuity, " esc=", c.escalations,
                      " accepted=", c.accepted, " assigned_at=", c.assigned_at, " opened_at=",
                      c.opened_at, " last_contact=", c.last_contact_at, " next_appt=",
                      c.next_appointment_at, " overdue_tasks=", c.overdue_tasks,
                      " goals_overdue=", c.goals_overdue, " goals_due_soon=", c.goals_due_soon);
}

bool IsHighRisk(const CaseFacts& c) { return c.acuity >= 4 || c.escalations > 0; }

int64_t NearestRankIndex(int64_t n, int percent) {
  // ceil(percent * n / 100) - 1, in integers.
  const int64_t rank = (percent * n + 99) / 100;
  return std::max<int64_t>(0, rank - 1);
}

int64_t NearestRank(const std::vector<int64_t>& sorted, int percent) {
  return sorted[static_cast<size_t>(NearestRankIndex(static_cast<int64_t>(sorted.size()), percent))];
}

std::string PeriodLabel(Period period, absl::Time t) {
  const absl::CivilDay day = absl::ToCivilDay(t, absl::UTCTimeZone());
  switch (period) {
    case Period::kWeek: {
      // ISO 8601: the week belongs to the year of its Thursday.
      const int from_monday = (static_cast<int>(absl::GetWeekday(day)) + 7 -
                               static_cast<int>(absl::Weekday::monday)) % 7;
      const absl::CivilDay thursday = day - from_monday + 3;
      const int week = (absl::GetYearDay(thursday) - 1) / 7 + 1;
      return absl::StrFormat("%04d-W%02d", thursday.year(), week);
    }
    case Period::kMonth:
      return absl::StrFormat("%04d-%02d", day.year(), day.month());
    case Period::kQuarter:
      return absl::StrFormat("%04d-Q%d", day.year(), (day.month() - 1) / 3 + 1);
  }
  return "";
}

int DaysSinceContact(const CaseFacts& c, absl::Time now) {
  int64_t since = c.last_contact_at;
  if (since == 0) since = c.assigned_at;
  if (since == 0) since = c.opened_at;
  const int64_t seconds = absl::ToUnixSeconds(now) - since;
  return seconds <= 0 ? 0 : static_cast<int>(seconds / 86400);
}

std::vector<WorklistEntry> RankWorklist(const std::vector<CaseFacts>& cases, absl::Time now,
                                        const std::map<std::string, int>& threshold_days,
                                        int default_threshold_days) {
  std::vector<WorklistEntry> entries;
  entries.reserve(cases.size());
  for (const CaseFacts& c : cases) {
    WorklistEntry e;
    e.facts = c;
    e.days_since_contact = DaysSinceContact(c, now);
    auto threshold = threshold_days.find(c.program);
    const int limit = threshold == threshold_days.end() ? default_threshold_days : threshold->second;
    e.contact_overdue = e.days_since_contact > limit;
    if (!c.case_manager_id.empty() && !c.accepted) {
      e.score += 1000;
      e.reasons.push_back("unaccepted assignment");
    }
    if (c.escalations > 0) {
      e.score += 400 * c.escalations;
      e.reasons.push_back(absl::StrCat(c.escalations, " open escalation(s)"));
    }
    if (c.acuity >= 4) {
      e.score += 300;
      e.reasons.push_back(absl::StrCat("acuity ", c.acuity));
    }
    if (e.contact_overdue) {
      e.score += 200 + std::min(300, 10 * (e.days_since_contact - limit));
      e.reasons.push_back(absl::StrCat("no contact for ", e.days_since_contact,
                                       " days (threshold ", limit, ")"));
    }
    if (c.last_contact_at == 0 && c.assigned_at != 0) {
      e.score += 150;
      e.reasons.push_back("no contact since assignment");
    }
    if (c.overdue_tasks > 0) {
      e.score += std::min(300, 100 * c.overdue_tasks);
      e.reasons.push_back(absl::StrCat(c.overdue_tasks, " overdue task(s)"));
    }
    if (c.goals_overdue > 0) {
      e.score += std::min(150, 50 * c.goals_overdue);
      e.reasons.push_back(absl::StrCat(c.goals_overdue, " goal(s) past their target date"));
    }
    if (c.goals_due_soon > 0) {
      e.score += std::min(60, 20 * c.goals_due_soon);
      e.reasons.push_back(absl::StrCat(c.goals_due_soon, " goal(s) due soon"));
    }
    const int64_t now_s = absl::ToUnixSeconds(now);
    if (c.next_appointment_at > now_s && c.next_appointment_at - now_s <= 86400) {
      e.score += 80;
      e.reasons.push_back(absl::StrCat("appointment in ", (c.next_appointment_at - now_s + 3599) / 3600,
                                       " hour(s)"));
    }
    e.score += 20 * c.priority + std::min(60, e.days_since_contact);
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(), [](const WorklistEntry& a, const WorklistEntry& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.facts.assigned_at != b.facts.assigned_at) return a.facts.assigned_at < b.facts.assigned_at;
    return a.facts.case_id < b.facts.case_id;
  });
  return entries;
}

std::vector<Suggestion> SuggestManagers(const std::vector<ManagerLoad>& managers, int acuity,
                                        int64_t limit, int* without_room) {
  std::vector<Suggestion> out;
  int rest = 0;
  for (const ManagerLoad& m : managers) {
    const int64_t after = m.counters.load + acuity;
    if (limit <= 0 || after > limit) {
      ++rest;
      continue;
    }
    Suggestion s;
    s.case_manager_id = m.case_manager_id;
    s.load = m.counters.load;
    s.limit = limit;
    s.load_after_percent = static_cast<int>(after * 100 / limit);
    s.high_risk = m.counters.high_risk;
    s.unaccepted = m.counters.unaccepted;
    s.reason = absl::StrCat("load ", s.load, " + ", acuity, " = ", after, " of ", limit, " (",
                            s.load_after_percent, "%), ", s.high_risk, " high-risk, ",
                            s.unaccepted, " unaccepted");
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(), [](const Suggestion& a, const Suggestion& b) {
    // Compare (load+acuity)/limit exactly: limits are equal here, so compare loads.
    if (a.load != b.load) return a.load < b.load;
    if (a.high_risk != b.high_risk) return a.high_risk < b.high_risk;
    if (a.unaccepted != b.unaccepted) return a.unaccepted < b.unaccepted;
    return a.case_manager_id < b.case_manager_id;
  });
  if (without_room != nullptr) *without_room = rest;
  return out;
}

}  // namespace clinical::views

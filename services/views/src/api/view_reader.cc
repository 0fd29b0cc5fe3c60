#include "view_reader.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "clinical/projection/versions.h"

namespace clinical::views {
namespace {

using projection::KeySpace;

// Read-only scripts, run with EVAL inside ReadActive's MULTI (so on the same version).
// A case manager's open cases: for each member of the set, its id, flat hash and the
// clock-dependent figures {next appointment start or '', overdue tasks, overdue goals, goals
// due soon}. ARGV: 1 the manager's case set, 2 the prefix of the per-case keys ("P "),
// 3 the tenant, 4 now, 5 now + due-soon horizon.
constexpr char kCaseloadScript[] = R"lua(
local ids = redis.call('SMEMBERS', ARGV[1])
local P, T, now, soon = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', P .. 'c:' .. T .. ':' .. id)
  local next = redis.call('ZRANGEBYSCORE', P .. 'nx:' .. T .. ':' .. id, '(' .. now, '+inf',
                          'WITHSCORES', 'LIMIT', 0, 1)
  local go = P .. 'go:' .. T .. ':' .. id
  out[#out + 1] = {next[2] or '',
                   redis.call('ZCOUNT', P .. 'to:' .. T .. ':' .. id, '-inf', '(' .. now),
                   redis.call('ZCOUNT', go, '-inf', now),
                   redis.call('ZCOUNT', go, '(' .. now, soon)}
end
return out
)lua";

// Count and nearest-rank order statistics of a zset of durations: {n, p50, p90}.
constexpr char kRankScript[] = R"lua(
local n = redis.call('ZCARD', ARGV[1])
if n == 0 then return {0, '0', '0'} end
local function at(p)
  local r = math.ceil(p * n / 100) - 1
  if r < 0 then r = 0 end
  return redis.call('ZRANGE', ARGV[1], r, r, 'WITHSCORES')[2]
end
return {n, at(50), at(90)}
)lua";

int64_t ToInt(const std::string& s) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(s, &v)) {
    double d = 0;
    if (absl::SimpleAtod(s, &d)) v = static_cast<int64_t>(d);
  }
  return v;
}

int64_t ReplyInt(const redis::Reply& r) {
  return r.type() == redis::Reply::Type::kInteger ? r.integer() : ToInt(r.str());
}

absl::Status Shape(const redis::Reply& r, redis::Reply::Type type) {
  if (r.is_error()) return r.ToStatus();
  if (r.type() != type) return absl::InternalError("unexpected reply shape from the view");
  return absl::OkStatus();
}

Counters ParseCounters(const redis::Reply& hash) {
  Counters c;
  const auto& e = hash.elements();
  for (size_t i = 0; i + 1 < e.size(); i += 2) {
    const std::string& f = e[i].str();
    const int64_t v = ToInt(e[i + 1].str());
    if (f == "open") c.open = v;
    else if (f == "load") c.load = v;
    else if (f == "high_risk") c.high_risk = v;
    else if (f == "unaccepted") c.unaccepted = v;
    else if (f == "unassigned") c.unassigned = v;
    else if (f == "esc") c.escalations = v;
    else if (v != 0 && f.rfind("st:", 0) == 0) c.by_status[static_cast<int>(ToInt(f.substr(3)))] = v;
    else if (v != 0 && f.rfind("sg:", 0) == 0) c.by_stage[static_cast<int>(ToInt(f.substr(3)))] = v;
  }
  return c;
}

CaseFacts ParseCase(const std::string& id, const redis::Reply& hash) {
  CaseFacts c;
  c.case_id = id;
  const auto& e = hash.elements();
  for (size_t i = 0; i + 1 < e.size(); i += 2) {
    const std::string& f = e[i].str();
    const std::string& v = e[i + 1].str();
    if (f == "program") c.program = v;
    else if (f == "team") c.team_id = v;
    else if (f == "cm") c.case_manager_id = v;
    else if (f == "status") c.status = static_cast<int>(ToInt(v));
    else if (f == "stage") c.stage = static_cast<int>(ToInt(v));
    else if (f == "priority") c.priority = static_cast<int>(ToInt(v));
    else if (f == "acuity") c.acuity = static_cast<int>(ToInt(v));
    else if (f == "esc") c.escalations = static_cast<int>(ToInt(v));
    else if (f == "acc") c.accepted = v == "1";
    else if (f == "assigned_at") c.assigned_at = ToInt(v);
    else if (f == "opened_at") c.opened_at = ToInt(v);
    else if (f == "lc") c.last_contact_at = ToInt(v);
  }
  return c;
}

std::string GroupKeyName(const std::string& tenant, const std::string& dim, const std::string& id) {
  return absl::StrCat("g:", tenant, ":", dim, ":", id);
}

}  // namespace

absl::StatusOr<Versioned<std::vector<std::string>>> ViewReader::Groups(const std::string& tenant,
                                                                       const std::string& dim) {
  auto read = projection::ReadActive(redis_, root_, [&](const KeySpace& keys) {
    return std::vector<redis::Args>{{"SMEMBERS", keys.Key(absl::StrCat("r:", tenant, ":", dim))}};
  });
  if (!read.ok()) return read.status();
  if (auto s = Shape(read->replies[0], redis::Reply::Type::kArray); !s.ok()) return s;
  Versioned<std::vector<std::string>> out{read->version, {}};
  for (const auto& r : read->replies[0].elements()) out.value.push_back(r.str());
  std::sort(out.value.begin(), out.value.end());
  return out;
}

absl::StatusOr<Versioned<std::vector<Counters>>> ViewReader::GroupCounters(
    const std::string& tenant, const std::string& dim, const std::vector<std::string>& ids) {
  auto read = projection::ReadActive(redis_, root_, [&](const KeySpace& keys) {
    std::vector<redis::Args> reads;
    for (const std::string& id : ids) {
      reads.push_back({"HGETALL", keys.Key(GroupKeyName(tenant, dim, id))});
    }
    return reads;
  });
  if (!read.ok()) return read.status();
  Versioned<std::vector<Counters>> out{read->version, {}};
  for (const auto& r : read->replies) {
    if (auto s = Shape(r, redis::Reply::Type::kArray); !s.ok()) return s;
    out.value.push_back(ParseCounters(r));
  }
  return out;
}

absl::StatusOr<Versioned<CaseloadRead>> ViewReader::Caseload(const std::string& tenant,
                                                             const std::string& cm,
                                                             const CaseClock& clock) {
  auto read = projection::ReadActive(redis_, root_, [&](const KeySpace& keys) {
    return std::vector<redis::Args>{
        {"HGETALL", keys.Key(GroupKeyName(tenant, kDimCaseManager, cm))},
        {"EVAL", kCaseloadScript, "0", keys.Key(absl::StrCat("gc:", tenant, ":cm:", cm)),
         keys.prefix(), tenant, absl::StrCat(clock.now),
         absl::StrCat(clock.now + clock.due_soon_seconds)}};
  });
  if (!read.ok()) return read.status();
  for (const auto& r : read->replies) {
    if (auto s = Shape(r, redis::Reply::Type::kArray); !s.ok()) return s;
  }
  Versioned<CaseloadRead> out{read->version, {}};
  out.value.counters = ParseCounters(read->replies[0]);
  const auto& flat = read->replies[1].elements();
  for (size_t i = 0; i + 2 < flat.size(); i += 3) {
    CaseFacts c = ParseCase(flat[i].str(), flat[i + 1]);
    const auto& timed = flat[i + 2].elements();
    if (timed.size() != 4) return absl::InternalError("unexpected caseload reply");
    c.next_appointment_at = ToInt(timed[0].str());
    c.overdue_tasks = static_cast<int>(ReplyInt(timed[1]));
    c.goals_overdue = static_cast<int>(ReplyInt(timed[2]));
    c.goals_due_soon = static_cast<int>(ReplyInt(timed[3]));
    out.value.cases.push_back(std::move(c));
  }
  std::sort(out.value.cases.begin(), out.value.cases.end(),
            [](const CaseFacts& a, const CaseFacts& b) { return a.case_id < b.case_id; });
  return out;
}

absl::StatusOr<bool> ViewReader::ActiveHasReached(const std::vector<Position>& positions) {
  auto read = projection::ReadActive(redis_, root_, [&](const KeySpace& keys) {
    std::vector<redis::Args> reads;
    for (const Position& p : positions) reads.push_back({"GET", keys.OffsetKey(p.topic, p.partition)});
    return reads;
  });
  if (read.status().code() == absl::StatusCode::kNotFound) return false;
  if (!read.ok()) return read.status();
  for (size_t i = 0; i < positions.size(); ++i) {
    const redis::Reply& r = read->replies[i];
    if (r.is_error()) return r.ToStatus();
    if (r.is_nil() || ToInt(r.str()) < positions[i].offset) return false;
  }
  return true;
}

absl::StatusOr<Versioned<Outcome>> ViewReader::GetOutcome(const std::string& tenant,
                                                          const std::string& dim,
                                                          const std::string& id,
                                                          const std::string& label) {
  const std::string suffix = absl::StrCat(tenant, ":", dim, ":", id, ":", label);
  auto read = projection::ReadActive(redis_, root_, [&](const KeySpace& keys) {
    return std::vector<redis::Args>{
        {"HGETALL", keys.Key(absl::StrCat("o:", suffix))},
        {"EVAL", kRankScript, "0", keys.Key(absl::StrCat("od:", suffix))},
        {"EVAL", kRankScript, "0", keys.Key(absl::StrCat("of:", suffix))}};
  });
  if (!read.ok()) return read.status();
  for (const auto& r : read->replies) {
    if (auto s = Shape(r, redis::Reply::Type::kArray); !s.ok()) return s;
  }
  Versioned<Outcome> out{read->version, {}};
  Outcome& o = out.value;
  const auto& e = read->replies[0].elements();
  for (size_t i = 0; i + 1 < e.size(); i += 2) {
    const std::string& f = e[i].str();
    const int64_t v = ToInt(e[i + 1].str());
    if (f == "opened") o.opened = v;
    else if (f == "assigned") o.assigned = v;
    else if (f == "closed") o.closed = v;
    else if (f == "cancelled") o.cancelled = v;
    else if (f == "eie") o.entered_in_error = v;
    else if (f == "goals_met") o.goals_met = v;
    else if (f == "sat_sum") o.satisfaction_sum = v;
    else if (f == "sat_n") o.satisfaction_count = v;
    else if (f == "reopen30") o.reopened_30 = v;
    else if (f == "reopen90") o.reopened_90 = v;
    else if (f == "minutes") o.contact_minutes = v;
    else if (f == "appt_kept") o.appointments_kept = v;
    else if (f == "appt_noshow") o.appointments_no_show = v;
    else if (f == "goals_total") o.goals_total = v;
    else if (f == "goals_achieved") o.goals_achieved = v;
    else if (f.rfind("cost:", 0) == 0 && v != 0) o.delivered_cost[f.substr(5)] = v;
    else if (f.rfind("r:", 0) == 0 && v != 0) o.reasons[static_cast<int>(ToInt(f.substr(2)))] = v;
  }
  const auto& close = read->replies[1].elements();
  const auto& first = read->replies[2].elements();
  if (close.size() != 3 || first.size() != 3) return absl::InternalError("unexpected rank reply");
  o.close_count = ReplyInt(close[0]);
  o.close_p50 = ReplyInt(close[1]);
  o.close_p90 = ReplyInt(close[2]);
  o.first_contact_count = ReplyInt(first[0]);
  o.first_contact_p50 = ReplyInt(first[1]);
  return out;
}

}  // namespace clinical::views

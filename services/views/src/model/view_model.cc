#include "view_model.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "case_domain.h"
#include "figures.h"
#include "scheduling_domain.h"

namespace clinical::views {
namespace {

namespace v1 = ::clinical::case_::v1;

// ARGV: 1 prefix, 2 tenant, 3 case id, 4 op, 5 event time (Unix s), 6-8 week/month/quarter
// labels of the event time, 9.. the op's arguments. Every argument is produced by
// Translate (numbers are decimal integers), so nothing here can fail at run time: num()
// reads missing fields as 0, and HINCRBY is never given a zero increment (a Lua -0 would
// reach Redis as "-0", which HINCRBY refuses).
constexpr char kCaseEventScript[] = R"lua(
local P, T, C, op = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local t = tonumber(ARGV[5])
local labels = {ARGV[6], ARGV[7], ARGV[8]}
local ck = P .. 'c:' .. T .. ':' .. C
local function num(v) return tonumber(v or '0') or 0 end
local function str(v) return v or '' end
local function incr(key, field, by)
  if by ~= 0 then redis.call('HINCRBY', key, field, by) end
end
-- For counts that can move between groups: a field back at 0 is removed (and an empty hash
-- with it), so the stored view does not depend on the order the two topics were read in.
local function adjust(key, field, by)
  if by ~= 0 and redis.call('HINCRBY', key, field, by) == 0 then redis.call('HDEL', key, field) end
end
local c = {}
local flat = redis.call('HGETALL', ck)
for i = 1, #flat, 2 do c[flat[i]] = flat[i + 1] end

local function dims(s)
  local d = {{'tenant', '_'}}
  if str(s.program) ~= '' then d[#d + 1] = {'program', s.program} end
  if str(s.team) ~= '' then d[#d + 1] = {'team', s.team} end
  if str(s.cm) ~= '' then d[#d + 1] = {'cm', s.cm} end
  return d
end
-- Counter changes of the case's old and new contribution are summed first, so an event that
-- leaves a group's counters as they were (most notes, accepts within the same groups)
-- writes nothing there: fewer commands to run, to append to the AOF and to replicate.
local delta, touched = {}, {}
local function acc(key, field, by)
  if by == 0 then return end
  local d = delta[key]
  if not d then d = {}; delta[key] = d; touched[#touched + 1] = key end
  d[field] = (d[field] or 0) + by
end
local function contribute(sign)
  local st = num(c.status)
  if st < 1 or st > 4 then return nil end
  local acuity, esc = num(c.acuity), num(c.esc)
  local assigned = str(c.cm) ~= ''
  for _, g in ipairs(dims(c)) do
    local gk = P .. 'g:' .. T .. ':' .. g[1] .. ':' .. g[2]
    acc(gk, 'open', sign)
    if assigned then
      acc(gk, 'load', sign * acuity)
      if c.acc ~= '1' then acc(gk, 'unaccepted', sign) end
    else
      acc(gk, 'unassigned', sign)
    end
    if acuity >= 4 or esc > 0 then acc(gk, 'high_risk', sign) end
    acc(gk, 'esc', sign * esc)
    acc(gk, 'st:' .. st, sign)
    acc(gk, 'sg:' .. num(c.stage), sign)
    if sign > 0 then redis.call('SADD', P .. 'r:' .. T .. ':' .. g[1], g[2]) end
  end
  if assigned then return c.cm end
  return nil
end
local function outcome(ds, lbls, field, by)
  for _, g in ipairs(ds) do
    redis.call('SADD', P .. 'r:' .. T .. ':' .. g[1], g[2])
    for _, l in ipairs(lbls) do
      incr(P .. 'o:' .. T .. ':' .. g[1] .. ':' .. g[2] .. ':' .. l, field, by)
    end
  end
end
local function sample(ds, kind, member, score)
  for _, g in ipairs(ds) do
    for _, l in ipairs(labels) do
      redis.call('ZADD', P .. kind .. ':' .. T .. ':' .. g[1] .. ':' .. g[2] .. ':' .. l, score, member)
    end
  end
end

local old_cm = contribute(-1)
local before = {program = str(c.program), team = str(c.team), cm = str(c.cm)}
local set = {}
local function put(k, v)
  v = tostring(v)
  c[k] = v
  set[#set + 1] = k
  set[#set + 1] = v
end
local function setstage(s)
  if str(c.stage) ~= s then
    if s == '6' then put('prestage', num(c.stage)) end
    put('stage', s)
  end
end
local function last_contact()
  local top = redis.call('ZREVRANGE', P .. 'ct:' .. T .. ':' .. C, 0, 0, 'WITHSCORES')
  if #top == 0 then put('lc', 0) else put('lc', top[2]) end
end

if op == 'open' then
  put('program', ARGV[9]); put('team', ARGV[10]); put('status', ARGV[11])
  put('stage', ARGV[12]); put('acuity', ARGV[13]); put('priority', ARGV[14])
  put('opened_at', t)
  outcome(dims(c), labels, 'opened', 1)
elseif op == 'status' or op == 'hold' then
  put('status', ARGV[9])
elseif op == 'stage' then
  setstage(ARGV[9])
elseif op == 'reprio' then
  put('priority', ARGV[9]); put('acuity', ARGV[10])
elseif op == 'assign' then
  put('cm', ARGV[9])
  if ARGV[10] ~= '' then put('team', ARGV[10]) end
  put('acc', 0); put('assigned_at', t); put('fc', 0); put('na', num(c.na) + 1)
  outcome(dims(c), labels, 'assigned', 1)
elseif op == 'accept' then
  put('acc', 1)
elseif op == 'decline' then
  put('cm', ''); put('acc', 0); put('assigned_at', 0); put('fc', 0)
elseif op == 'transfer' then
  put('program', ARGV[9]); put('team', ARGV[10])
  put('cm', ''); put('acc', 0); put('assigned_at', 0); put('fc', 0)
elseif op == 'note' then
  if ARGV[9] == '1' then
    local occurred = tonumber(ARGV[11])
    redis.call('ZADD', P .. 'ct:' .. T .. ':' .. C, occurred, ARGV[10])
    last_contact()
    outcome(dims(c), labels, 'minutes', tonumber(ARGV[12]))
    if str(c.cm) ~= '' and c.fc ~= '1' and occurred >= num(c.assigned_at) then
      put('fc', 1)
      sample(dims(c), 'of', C .. '#' .. num(c.na), occurred - num(c.assigned_at))
    end
  end
elseif op == 'note_eie' then
  redis.call('ZREM', P .. 'ct:' .. T .. ':' .. C, ARGV[9])
  last_contact()
elseif op == 'closereq' then
  put('sat', ARGV[9])
  setstage('6')
elseif op == 'closerej' then
  if c.prestage then setstage(c.prestage) else setstage('5') end
elseif op == 'closed' then
  put('status', 5)
  local ds = dims(c)
  outcome(ds, labels, 'closed', 1)
  outcome(ds, labels, 'goals_total', tonumber(ARGV[12]))
  outcome(ds, labels, 'goals_achieved', tonumber(ARGV[13]))
  if ARGV[11] ~= '' then outcome(ds, labels, 'cost:' .. ARGV[11], tonumber(ARGV[10])) end
  outcome(ds, labels, 'r:' .. ARGV[9], 1)
  if ARGV[9] == '1' then outcome(ds, labels, 'goals_met', 1) end
  local sat = num(c.sat)
  if sat >= 1 and sat <= 5 then
    outcome(ds, labels, 'sat_sum', sat)
    outcome(ds, labels, 'sat_n', 1)
  end
  local n = num(c.nc) + 1
  local took = t - num(c.opened_at)
  if took < 0 then took = 0 end
  sample(ds, 'od', C .. '#' .. n, took)
  put('nc', n); put('closed_at', t)
  put('cw', labels[1]); put('cmo', labels[2]); put('cq', labels[3])
  put('ccm', str(c.cm)); put('cteam', str(c.team)); put('cprog', str(c.program))
elseif op == 'reopen' then
  put('status', ARGV[9])
  setstage(ARGV[10])
  local closed_at = num(c.closed_at)
  if closed_at > 0 then
    local ds = dims({program = c.cprog, team = c.cteam, cm = c.ccm})
    local lbls = {c.cw, c.cmo, c.cq}
    if t - closed_at <= 30 * 86400 then outcome(ds, lbls, 'reopen30', 1) end
    if t - closed_at <= 90 * 86400 then outcome(ds, lbls, 'reopen90', 1) end
    put('closed_at', 0)
  end
elseif op == 'cancel' then
  put('status', 6)
  outcome(dims(c), labels, 'cancelled', 1)
elseif op == 'eie' then
  put('status', 7)
  outcome(dims(c), labels, 'eie', 1)
elseif op == 'due_add' or op == 'due_st' then
  -- Goals (kind g) and tasks (kind t) with a due time: hash id -> due time of every one,
  -- zset of the open ones (overdue / due soon are counted against the query's clock).
  local dk = P .. ARGV[9] .. 'd:' .. T .. ':' .. C
  local ok = P .. ARGV[9] .. 'o:' .. T .. ':' .. C
  local due
  if op == 'due_add' then
    due = tonumber(ARGV[12])
    if due > 0 then redis.call('HSET', dk, ARGV[10], due) end
  else
    due = tonumber(redis.call('HGET', dk, ARGV[10]) or '0')
  end
  if ARGV[11] == '1' and due > 0 then
    redis.call('ZADD', ok, due, ARGV[10])
  else
    redis.call('ZREM', ok, ARGV[10])
  end
elseif op == 'esc' or op == 'escres' then
  local ek = P .. 'e:' .. T .. ':' .. C
  if op == 'esc' then redis.call('SADD', ek, ARGV[9]) else redis.call('SREM', ek, ARGV[9]) end
  put('esc', redis.call('SCARD', ek))
end
if #set > 0 then redis.call('HSET', ck, unpack(set)) end
local new_cm = contribute(1)
for _, key in ipairs(touched) do
  for field, by in pairs(delta[key]) do
    if by ~= 0 then redis.call('HINCRBY', key, field, by) end
  end
end
if old_cm ~= new_cm then
  if old_cm then redis.call('SREM', P .. 'gc:' .. T .. ':cm:' .. old_cm, C) end
  if new_cm then redis.call('SADD', P .. 'gc:' .. T .. ':cm:' .. new_cm, C) end
end
-- Appointments kept / no-show count to the case's CURRENT program, team and case manager
-- (the scheduling topic is read independently of the case topic, so only the final state
-- of both is order-free): when one of them changes, the case's tallies move with it.
local moved = false
for _, dim in ipairs({'program', 'team', 'cm'}) do
  if before[dim] ~= str(c[dim]) then moved = true end
end
if moved then
  local tallies = redis.call('HGETALL', P .. 'ca:' .. T .. ':' .. C)
  for _, dim in ipairs({'program', 'team', 'cm'}) do
    local old, new = before[dim], str(c[dim])
    if old ~= new then
      for i = 1, #tallies, 2 do
        local label, kind = string.match(tallies[i], '^(.*)|(.)$')
        local field = kind == 'k' and 'appt_kept' or 'appt_noshow'
        local by = tonumber(tallies[i + 1])
        if old ~= '' then adjust(P .. 'o:' .. T .. ':' .. dim .. ':' .. old .. ':' .. label, field, -by) end
        if new ~= '' then adjust(P .. 'o:' .. T .. ':' .. dim .. ':' .. new .. ':' .. label, field, by) end
      end
    end
  end
end
return 1
)lua";

// The scheduling events of one appointment (a series). ARGV: 1 prefix, 2 tenant,
// 3 appointment id, 4 op, then:
//   book     5 case id, 6 status, 7.. per occurrence: index, start (Unix s), week, month,
//            quarter label of the start
//   resched  5.. per change: index, start, week, month, quarter
//   status   5.. per occurrence: index, new status
// Per occurrence the appointment hash keeps its status (s<i>), start (t<i>) and period
// labels (l<i>). An occurrence counts as kept (arrived, checked in, fulfilled) or no-show
// in the periods of its start, to the case's tallies (ca:, per label) and to the outcome
// hashes of the tenant and the case's current program, team and case manager; a booked one
// is in the case's next-appointment zset (nx:, member <appointment>#<index>, score start).
// Each change retracts the occurrence's old contribution and adds the new one.
constexpr char kAppointmentScript[] = R"lua(
local P, T, A, op = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ak = P .. 'a:' .. T .. ':' .. A
local a = {}
local flat = redis.call('HGETALL', ak)
for i = 1, #flat, 2 do a[flat[i]] = flat[i + 1] end
local C = a.case
if op == 'book' then
  C = ARGV[5]
elseif not C then
  return 0  -- a change to an appointment this view never saw booked: nothing to count
end
local f = redis.call('HMGET', P .. 'c:' .. T .. ':' .. C, 'program', 'team', 'cm')
local ds = {{'tenant', '_'}}
if f[1] and f[1] ~= '' then ds[#ds + 1] = {'program', f[1]} end
if f[2] and f[2] ~= '' then ds[#ds + 1] = {'team', f[2]} end
if f[3] and f[3] ~= '' then ds[#ds + 1] = {'cm', f[3]} end
local tk = P .. 'ca:' .. T .. ':' .. C
local nk = P .. 'nx:' .. T .. ':' .. C
local function adjust(key, field, by)
  if redis.call('HINCRBY', key, field, by) == 0 then redis.call('HDEL', key, field) end
end
local function contribute(i, sign)
  local st = tonumber(a['s' .. i] or '0')
  if st == 3 then
    if sign > 0 then redis.call('ZADD', nk, tonumber(a['t' .. i]), A .. '#' .. i)
    else redis.call('ZREM', nk, A .. '#' .. i) end
  end
  local field, kind
  if st == 4 or st == 5 or st == 6 then field, kind = 'appt_kept', 'k'
  elseif st == 8 then field, kind = 'appt_noshow', 'n' end
  if not field then return end
  for label in string.gmatch(a['l' .. i] or '', '[^|]+') do
    adjust(tk, label .. '|' .. kind, sign)
    for _, g in ipairs(ds) do
      adjust(P .. 'o:' .. T .. ':' .. g[1] .. ':' .. g[2] .. ':' .. label, field, sign)
    end
  end
end
local set = {}
local function put(k, v)
  a[k] = v
  set[#set + 1] = k
  set[#set + 1] = v
end
if op == 'book' then
  -- Booked once per aggregate; a second booking replaces every occurrence.
  for k, _ in pairs(a) do
    local i = string.match(k, '^s(%d+)$')
    if i then contribute(i, -1); redis.call('HDEL', ak, 's' .. i, 't' .. i, 'l' .. i); a['s' .. i] = nil end
  end
  put('case', C)
  for j = 7, #ARGV, 5 do
    local i = ARGV[j]
    put('s' .. i, ARGV[6]); put('t' .. i, ARGV[j + 1])
    put('l' .. i, ARGV[j + 2] .. '|' .. ARGV[j + 3] .. '|' .. ARGV[j + 4])
    contribute(i, 1)
  end
elseif op == 'resched' then
  for j = 5, #ARGV, 5 do
    local i = ARGV[j]
    if a['s' .. i] then
      contribute(i, -1)
      put('t' .. i, ARGV[j + 1])
      put('l' .. i, ARGV[j + 2] .. '|' .. ARGV[j + 3] .. '|' .. ARGV[j + 4])
      contribute(i, 1)
    end
  end
elseif op == 'status' then
  for j = 5, #ARGV, 2 do
    local i = ARGV[j]
    if a['s' .. i] then
      contribute(i, -1)
      put('s' .. i, ARGV[j + 1])
      contribute(i, 1)
    end
  end
end
if #set > 0 then redis.call('HSET', ak, unpack(set)) end
return 1
)lua";

int64_t Seconds(const google::protobuf::Timestamp& t) { return t.seconds(); }

// Tenant and aggregate ids become parts of keys (see IsKeySafeId).
absl::Status CheckEnvelopeIds(const common::v1::EventEnvelope& envelope) {
  if (!IsKeySafeId(envelope.tenant_id())) {
    return absl::InvalidArgumentError("views: tenant_id is missing or has unsupported characters");
  }
  if (!IsKeySafeId(envelope.aggregate_id())) {
    return absl::InvalidArgumentError("views: aggregate_id is missing or has unsupported characters");
  }
  return absl::OkStatus();
}

}  // namespace

bool IsKeySafeId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char ch : id) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '@' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<int64_t> GoalDueAt(const std::string& target_date) {
  absl::CivilDay day;
  if (target_date.size() != 10 || !absl::ParseCivilTime(target_date, &day)) return std::nullopt;
  return absl::ToUnixSeconds(absl::FromCivil(day + 1, absl::UTCTimeZone()));
}

bool IsOpenGoal(int s) {
  return s == v1::GOAL_LIFECYCLE_STATUS_PROPOSED || s == v1::GOAL_LIFECYCLE_STATUS_PLANNED ||
         s == v1::GOAL_LIFECYCLE_STATUS_ACCEPTED || s == v1::GOAL_LIFECYCLE_STATUS_ACTIVE ||
         s == v1::GOAL_LIFECYCLE_STATUS_ON_HOLD;
}

bool IsOpenTask(int s) {
  return s == v1::TASK_STATUS_DRAFT || s == v1::TASK_STATUS_REQUESTED ||
         s == v1::TASK_STATUS_RECEIVED || s == v1::TASK_STATUS_ACCEPTED ||
         s == v1::TASK_STATUS_READY || s == v1::TASK_STATUS_IN_PROGRESS ||
         s == v1::TASK_STATUS_ON_HOLD;
}

namespace sv1 = ::clinical::scheduling::v1;

bool IsKeptAppointment(int s) {
  return s == sv1::APPOINTMENT_STATUS_ARRIVED || s == sv1::APPOINTMENT_STATUS_CHECKED_IN ||
         s == sv1::APPOINTMENT_STATUS_FULFILLED;
}
bool IsNoShow(int s) { return s == sv1::APPOINTMENT_STATUS_NOSHOW; }
bool IsBookedAppointment(int s) { return s == sv1::APPOINTMENT_STATUS_BOOKED; }

CaseViewModel::CaseViewModel(std::string case_topic, std::string scheduling_topic)
    : case_topic_(std::move(case_topic)),
      scheduling_topic_(std::move(scheduling_topic)),
      script_("case_event", kCaseEventScript),
      appointment_script_("appointment_event", kAppointmentScript) {}

absl::Status CaseViewModel::TranslateScheduling(const common::v1::EventEnvelope& envelope,
                                                const projection::KeySpace& keys,
                                                std::vector<projection::RedisCommand>& out) const {
  auto decoded = scheduling::FromEnvelope(envelope);
  if (!decoded.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("views: not a known scheduling event (type ", envelope.event_type(), ")"));
  }
  if (auto ids = CheckEnvelopeIds(envelope); !ids.ok()) return ids;
  std::vector<std::string> args = {keys.prefix(), envelope.tenant_id(), envelope.aggregate_id(), ""};
  auto occurrence = [&](int32_t index, const google::protobuf::Timestamp& start) {
    const absl::Time at = absl::FromUnixSeconds(start.seconds());
    args.push_back(absl::StrCat(index));
    args.push_back(absl::StrCat(start.seconds()));
    args.push_back(PeriodLabel(Period::kWeek, at));
    args.push_back(PeriodLabel(Period::kMonth, at));
    args.push_back(PeriodLabel(Period::kQuarter, at));
  };
  const sv1::SchedulingEvent& e = *decoded;
  switch (e.event_case()) {
    case sv1::SchedulingEvent::kAppointmentBooked: {
      const auto& b = e.appointment_booked();
      if (!IsKeySafeId(b.case_id())) {
        return absl::InvalidArgumentError("views: AppointmentBooked.case_id has unsupported characters");
      }
      args[3] = "book";
      args.push_back(b.case_id());
      args.push_back(absl::StrCat(static_cast<int>(b.status())));
      for (const auto& o : b.occurrences()) occurrence(o.index(), o.start_time());
      break;
    }
    case sv1::SchedulingEvent::kAppointmentRescheduled:
      args[3] = "resched";
      for (const auto& c : e.appointment_rescheduled().changes()) occurrence(c.index(), c.start_time());
      break;
    case sv1::SchedulingEvent::kAppointmentCancelled:
      args[3] = "status";
      for (int32_t index : e.appointment_cancelled().indexes()) {
        args.push_back(absl::StrCat(index));
        args.push_back(absl::StrCat(static_cast<int>(sv1::APPOINTMENT_STATUS_CANCELLED)));
      }
      break;
    case sv1::SchedulingEvent::kAppointmentStatusChanged:
      args[3] = "status";
      args.push_back(absl::StrCat(e.appointment_status_changed().index()));
      args.push_back(absl::StrCat(static_cast<int>(e.appointment_status_changed().to())));
      break;
    default:
      // Calendars and reminders change no figure of the views.
      return absl::OkStatus();
  }
  out.push_back(appointment_script_.Call({}, args));
  return absl::OkStatus();
}

absl::Status CaseViewModel::Translate(const common::v1::EventEnvelope& envelope,
                                      const projection::KeySpace& keys,
                                      std::vector<projection::RedisCommand>& out) const {
  if (absl::StartsWith(envelope.event_type(), "clinical.scheduling.")) {
    return TranslateScheduling(envelope, keys, out);
  }
  auto decoded = case_service::FromEnvelope(envelope);
  if (!decoded.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("views: not a known case event (type ", envelope.event_type(), ")"));
  }
  if (auto ids = CheckEnvelopeIds(envelope); !ids.ok()) return ids;
  const v1::CaseEvent& e = decoded->body;
  const absl::Time at = decoded->occurred_at;
  std::vector<std::string> args = {keys.prefix(),
                                   envelope.tenant_id(),
                                   envelope.aggregate_id(),
                                   "",
                                   absl::StrCat(absl::ToUnixSeconds(at)),
                                   PeriodLabel(Period::kWeek, at),
                                   PeriodLabel(Period::kMonth, at),
                                   PeriodLabel(Period::kQuarter, at)};
  auto id_arg = [&](const std::string& id, bool optional, const char* field) -> absl::Status {
    if ((optional && id.empty()) || IsKeySafeId(id)) {
      args.push_back(id);
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(
        absl::StrCat("views: ", envelope.event_type(), ".", field, " has unsupported characters"));
  };
  auto op = [&](const char* name) { args[3] = name; };
  auto n = [&](int64_t value) { args.push_back(absl::StrCat(value)); };
  // Goals (kind g) and tasks (kind t): the id is a hash field / set member, not part of a key.
  auto due = [&](const char* name, const char* kind, const std::string& id, bool open) {
    op(name);
    args.push_back(kind);
    args.push_back(id);
    n(open ? 1 : 0);
  };
  switch (e.event_case()) {
    case v1::CaseEvent::kCaseOpened: {
      const auto& o = e.case_opened();
      op("open");
      if (auto s = id_arg(o.program(), false, "program"); !s.ok()) return s;
      if (auto s = id_arg(o.team_id(), true, "team_id"); !s.ok()) return s;
      n(o.status());
      n(o.stage());
      n(o.acuity());
      n(o.priority());
      break;
    }
    case v1::CaseEvent::kCaseStatusChanged:
      op("status");
      n(e.case_status_changed().to());
      break;
    case v1::CaseEvent::kCasePutOnHold:
      op("hold");
      n(v1::CASE_STATUS_ONHOLD);
      break;
    case v1::CaseEvent::kCaseStageChanged:
      op("stage");
      n(e.case_stage_changed().to());
      break;
    case v1::CaseEvent::kCaseReprioritized:
      op("reprio");
      n(e.case_reprioritized().priority());
      n(e.case_reprioritized().acuity());
      break;
    case v1::CaseEvent::kCaseAssigned:
      op("assign");
      if (auto s = id_arg(e.case_assigned().case_manager_id(), false, "case_manager_id"); !s.ok())
        return s;
      if (auto s = id_arg(e.case_assigned().team_id(), true, "team_id"); !s.ok()) return s;
      break;
    case v1::CaseEvent::kAssignmentAccepted:
      op("accept");
      break;
    case v1::CaseEvent::kAssignmentDeclined:
      op("decline");
      break;
    case v1::CaseEvent::kCaseTransferred:
      op("transfer");
      if (auto s = id_arg(e.case_transferred().to_program(), false, "to_program"); !s.ok())
        return s;
      if (auto s = id_arg(e.case_transferred().to_team_id(), true, "to_team_id"); !s.ok())
        return s;
      break;
    case v1::CaseEvent::kNoteAdded: {
      const auto& note = e.note_added();
      op("note");
      n(note.kind());
      args.push_back(note.note_id());  // a set member, not part of a key
      n(Seconds(note.occurred_at()));
      n(std::max(0, note.duration_minutes()));
      break;
    }
    case v1::CaseEvent::kNoteEnteredInError:
      op("note_eie");
      args.push_back(e.note_entered_in_error().note_id());
      break;
    case v1::CaseEvent::kClosureRequested:
      op("closereq");
      n(e.closure_requested().satisfaction());
      break;
    case v1::CaseEvent::kClosureRejected:
      op("closerej");
      break;
    case v1::CaseEvent::kCaseClosed: {
      const auto& closed = e.case_closed();
      op("closed");
      n(closed.reason());
      n(closed.delivered_cost().minor_units());
      // A hash field name, not a key; an odd code still must not reach a field name.
      const std::string& currency = closed.delivered_cost().currency_code();
      args.push_back(currency.empty() || IsKeySafeId(currency) ? currency : "invalid");
      n(std::max(0, closed.goals_total()));
      n(std::max(0, closed.goals_achieved()));
      break;
    }
    case v1::CaseEvent::kGoalAdded:
      due("due_add", "g", e.goal_added().goal_id(), IsOpenGoal(e.goal_added().lifecycle_status()));
      n(GoalDueAt(e.goal_added().target_date()).value_or(0));
      break;
    case v1::CaseEvent::kGoalStatusChanged:
      due("due_st", "g", e.goal_status_changed().goal_id(), IsOpenGoal(e.goal_status_changed().to()));
      break;
    case v1::CaseEvent::kCareTaskAdded: {
      const auto& t = e.care_task_added();
      due("due_add", "t", t.task_id(), IsOpenTask(t.status()));
      n(t.has_due_at() ? std::max<int64_t>(0, t.due_at().seconds()) : 0);
      break;
    }
    case v1::CaseEvent::kCareTaskStatusChanged:
      due("due_st", "t", e.care_task_status_changed().task_id(),
          IsOpenTask(e.care_task_status_changed().to()));
      break;
    case v1::CaseEvent::kCaseReopened:
      op("reopen");
      n(e.case_reopened().to());
      n(e.case_reopened().stage());
      break;
    case v1::CaseEvent::kCaseCancelled:
      op("cancel");
      break;
    case v1::CaseEvent::kCaseEnteredInError:
      op("eie");
      break;
    case v1::CaseEvent::kCaseEscalated:
      op("esc");
      args.push_back(e.case_escalated().escalation_id());
      break;
    case v1::CaseEvent::kEscalationResolved:
      op("escres");
      args.push_back(e.escalation_resolved().escalation_id());
      break;
    default:
      // Approvals (CaseClosed follows), delegations, amendments and event types this
      // version of the views does not show yet change none of its figures.
      return absl::OkStatus();
  }
  out.push_back(script_.Call({}, args));
  return absl::OkStatus();
}

}  // namespace clinical::views

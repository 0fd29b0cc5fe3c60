#include "view_model.h"

#include "absl/strings/str_cat.h"
#include "case_domain.h"
#include "figures.h"

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
return 1
)lua";

int64_t Seconds(const google::protobuf::Timestamp& t) { return t.seconds(); }

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

CaseViewModel::CaseViewModel(std::string case_topic)
    : case_topic_(std::move(case_topic)), script_("case_event", kCaseEventScript) {}

absl::Status CaseViewModel::Translate(const common::v1::EventEnvelope& envelope,
                                      const projection::KeySpace& keys,
                                      std::vector<projection::RedisCommand>& out) const {
  auto decoded = case_service::FromEnvelope(envelope);
  if (!decoded.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("views: not a known case event (type ", envelope.event_type(), ")"));
  }
  if (!IsKeySafeId(envelope.tenant_id())) {
    return absl::InvalidArgumentError("views: tenant_id is missing or has unsupported characters");
  }
  if (!IsKeySafeId(envelope.aggregate_id())) {
    return absl::InvalidArgumentError("views: aggregate_id is missing or has unsupported characters");
  }
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
    case v1::CaseEvent::kCaseClosed:
      op("closed");
      n(e.case_closed().reason());
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

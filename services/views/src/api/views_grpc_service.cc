#include "views_grpc_service.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "clinical/case/v1/case.pb.h"
#include "clinical/grpcx/status.h"
#include "figures.h"
#include "nlohmann/json.hpp"
#include "view_model.h"
#include "view_reader.h"

namespace clinical::views {
namespace {

namespace cv1 = ::clinical::case_::v1;

// Money per currency over a divisor, rounded half away from zero (nothing when it is 0).
void Divide(const std::map<std::string, int64_t>& sums, int64_t divisor,
            google::protobuf::RepeatedPtrField<common::v1::Money>* out) {
  if (divisor <= 0) return;
  for (const auto& [currency, minor] : sums) {
    common::v1::Money* m = out->Add();
    m->set_currency_code(currency);
    const int64_t half = divisor / 2;
    m->set_minor_units(minor >= 0 ? (minor + half) / divisor : -((-minor + half) / divisor));
  }
}

google::protobuf::Timestamp Ts(int64_t seconds) {
  google::protobuf::Timestamp t;
  t.set_seconds(seconds);
  return t;
}

std::string StatusName(int s) {
  return cv1::CaseStatus_IsValid(s) ? cv1::CaseStatus_Name(static_cast<cv1::CaseStatus>(s))
                                    : absl::StrCat(s);
}
std::string StageName(int s) {
  return cv1::CaseStage_IsValid(s) ? cv1::CaseStage_Name(static_cast<cv1::CaseStage>(s))
                                   : absl::StrCat(s);
}

void ToProto(const Counters& c, vv1::CaseloadCounters* out) {
  out->set_open_cases(c.open);
  out->set_acuity_load(c.load);
  out->set_high_risk_cases(c.high_risk);
  out->set_unaccepted_assignments(c.unaccepted);
  out->set_unassigned_cases(c.unassigned);
  out->set_open_escalations(c.escalations);
  for (auto [k, v] : c.by_status) (*out->mutable_by_status())[StatusName(k)] = v;
  for (auto [k, v] : c.by_stage) (*out->mutable_by_stage())[StageName(k)] = v;
}

void ToProto(const WorklistEntry& e, vv1::CaseSummary* out) {
  const CaseFacts& c = e.facts;
  out->set_case_id(c.case_id);
  out->set_program(c.program);
  out->set_team_id(c.team_id);
  out->set_status(StatusName(c.status));
  out->set_stage(StageName(c.stage));
  out->set_priority(c.priority);
  out->set_acuity(c.acuity);
  out->set_high_risk(IsHighRisk(c));
  out->set_open_escalations(c.escalations);
  out->set_assignment_accepted(c.accepted);
  if (c.assigned_at != 0) *out->mutable_assigned_at() = Ts(c.assigned_at);
  if (c.opened_at != 0) *out->mutable_opened_at() = Ts(c.opened_at);
  if (c.last_contact_at != 0) *out->mutable_last_contact_at() = Ts(c.last_contact_at);
  out->set_days_since_contact(e.days_since_contact);
  out->set_contact_overdue(e.contact_overdue);
  if (c.next_appointment_at != 0) *out->mutable_next_appointment_at() = Ts(c.next_appointment_at);
  out->set_overdue_tasks(c.overdue_tasks);
  out->set_goals_overdue(c.goals_overdue);
  out->set_goals_due_soon(c.goals_due_soon);
}

const char* DimName(vv1::Dimension d) {
  switch (d) {
    case vv1::DIMENSION_TENANT: return kDimTenant;
    case vv1::DIMENSION_PROGRAM: return kDimProgram;
    case vv1::DIMENSION_TEAM: return kDimTeam;
    case vv1::DIMENSION_CASE_MANAGER: return kDimCaseManager;
    case vv1::DIMENSION_SUPERVISOR: return kDimSupervisor;
    default: return nullptr;
  }
}

int PageSize(int requested, int fallback) { return requested == 0 ? fallback : requested; }

void CheckPageSize(int value, int max, const char* field, grpcx::Violations& v) {
  if (value < 0 || value > max) v.Add(field, absl::StrCat("must be between 1 and ", max));
}

void CheckId(const std::string& id, const char* field, bool required, grpcx::Violations& v) {
  if (id.empty()) {
    if (required) v.Add(field, "is required");
    return;
  }
  if (!IsKeySafeId(id)) v.Add(field, "must be 1..128 characters of [A-Za-z0-9._@-]");
}

absl::StatusOr<int> OffsetToken(const std::string& token) {
  if (token.empty()) return 0;
  int offset = 0;
  if (!absl::SimpleAtoi(token, &offset) || offset < 0) {
    return grpcx::InvalidArgument("invalid request", {{"page_token", "is not a token this service issued"}});
  }
  return offset;
}

absl::Status Unavailable(const absl::Status& status) {
  // No version built yet reads as "try again later", like a Redis outage.
  if (status.code() == absl::StatusCode::kNotFound) {
    return absl::UnavailableError("the view has not been built yet");
  }
  return status;
}

}  // namespace

absl::StatusOr<std::map<std::string, int>> ParseThresholds(const std::string& text) {
  std::map<std::string, int> out;
  if (text.empty()) return out;
  for (absl::string_view entry : absl::StrSplit(text, ',')) {
    std::vector<std::string> kv = absl::StrSplit(entry, '=');
    int days = 0;
    if (kv.size() != 2 || kv[0].empty() || !absl::SimpleAtoi(kv[1], &days) || days < 0) {
      return absl::InvalidArgumentError(
          "contact thresholds must look like 'program=days,program=days'");
    }
    out[kv[0]] = days;
  }
  return out;
}

namespace {

// The JSON document of a file; INVALID_ARGUMENT naming `what` when unreadable or not JSON.
absl::StatusOr<nlohmann::json> ReadJson(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(what, " cannot be read"));
  std::stringstream text;
  text << in.rdbuf();
  auto json = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(what, " is not JSON"));
  return json;
}

}  // namespace

absl::StatusOr<std::map<std::pair<std::string, std::string>, int>> LoadCaseloadLimits(
    const std::string& path) {
  auto document = ReadJson(path, "programs file");
  if (!document.ok()) return document.status();
  nlohmann::json& json = *document;
  if (!json.is_object()) return absl::InvalidArgumentError("programs file is not a JSON object");
  std::map<std::pair<std::string, std::string>, int> out;
  auto read = [&](const std::string& tenant, const nlohmann::json& entry) -> absl::Status {
    if (!entry.is_object() || !entry.contains("programs") || !entry["programs"].is_object()) {
      return absl::InvalidArgumentError("programs file: an entry has no 'programs' object");
    }
    for (const auto& [code, rules] : entry["programs"].items()) {
      if (!rules.is_object() || !rules.contains("caseload_limit") ||
          !rules["caseload_limit"].is_number_integer()) {
        return absl::InvalidArgumentError(
            absl::StrCat("programs file: ", code, " has no integer caseload_limit"));
      }
      out[{tenant, code}] = rules["caseload_limit"].get<int>();
    }
    return absl::OkStatus();
  };
  if (json.contains("default")) {
    if (auto s = read("", json["default"]); !s.ok()) return s;
  }
  if (json.contains("tenants") && json["tenants"].is_object()) {
    for (const auto& [tenant, entry] : json["tenants"].items()) {
      if (auto s = read(tenant, entry); !s.ok()) return s;
    }
  }
  return out;
}

ViewsGrpcService::ViewsGrpcService(QueryOptions options, const projection::Projection* projection,
                                   const grpcx::CallerSource& callers)
    : options_(std::move(options)), projection_(projection), callers_(callers) {}

absl::StatusOr<std::unique_ptr<redis::Connection>> ViewsGrpcService::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  auto c = redis::Connection::Connect(options_.redis, options_.redis_timeout);
  if (!c.ok()) return c.status();
  return std::make_unique<redis::Connection>(std::move(*c));
}

void ViewsGrpcService::Release(std::unique_ptr<redis::Connection> connection) {
  if (connection->broken()) return;  // reconnect next time
  std::lock_guard<std::mutex> lock(mutex_);
  if (idle_.size() < 32) idle_.push_back(std::move(connection));
}

absl::Status ViewsGrpcService::WaitFor(
    const google::protobuf::RepeatedPtrField<common::v1::LogPosition>& positions,
    const grpc::ServerContext& context, redis::Connection& redis) const {
  grpcx::Violations violations;
  for (int i = 0; i < positions.size(); ++i) {
    const auto& p = positions[i];
    if (p.topic() != options_.case_topic && p.topic() != options_.scheduling_topic) {
      violations.Add(absl::StrCat("min_positions[", i, "].topic"),
                     "is not a topic this view is built from");
    }
    if (p.partition() < 0) {
      violations.Add(absl::StrCat("min_positions[", i, "].partition"), "must be >= 0");
    }
    if (p.offset() < 0) violations.Add(absl::StrCat("min_positions[", i, "].offset"), "must be >= 0");
  }
  if (!violations.empty()) return violations.ToStatus();
  if (positions.empty()) return absl::OkStatus();
  absl::Time deadline = absl::Now() + options_.max_position_wait;
  const absl::Time call_deadline = absl::FromChrono(context.deadline());
  if (call_deadline < deadline) deadline = call_deadline;
  const absl::Status late = absl::DeadlineExceededError(
      "the view has not reached the requested position in time; retry later");
  std::vector<ViewReader::Position> wanted;
  for (const auto& p : positions) {
    wanted.push_back({p.topic(), p.partition(), p.offset()});
    // This process's own runtime wakes us as soon as it applies the position.
    if (projection_ == nullptr) continue;
    absl::Status s = projection_->WaitForPosition(p.topic(), p.partition(), p.offset(), deadline);
    if (s.code() == absl::StatusCode::kDeadlineExceeded) return late;
    if (!s.ok()) return absl::UnavailableError("the view is not being updated");
  }
  // Queries read the ACTIVE version, which may be another process's (during a rebuild) or
  // not switched on yet (first build): check its own offsets, polling within the deadline.
  ViewReader reader(redis, options_.root);
  for (int attempt = 0; attempt < 100000; ++attempt) {
    auto reached = reader.ActiveHasReached(wanted);
    if (!reached.ok()) return reached.status();
    if (*reached) return absl::OkStatus();
    if (absl::Now() >= deadline) return late;
    absl::SleepFor(std::min(absl::Milliseconds(10), deadline - absl::Now()));
  }
  return late;
}

template <typename Fn>
grpc::Status ViewsGrpcService::Handle(grpc::ServerContext* context, const google::protobuf::Message& request, Fn fn) {
  absl::Status status;
  // Authorization first (the policies in views_service.proto): a caseload or worklist is
  // the caller's own (SELF) or a supervised case manager's (SUPERVISES, from the
  // organisation topic); rollups, suggestions and outcomes are tenant-wide for the roles
  // named, and refused to the others before any handler runs.
  auto caller = callers_.Authorize(*context, request);
  if (!caller.ok()) {
    status = caller.status();
  } else if (!IsKeySafeId(caller->tenant_id)) {
    // The verifier admits only tenant ids of the platform's charset; kept as a second
    // line because the tenant becomes part of Redis keys here.
    status = absl::UnauthenticatedError("the token's tenant has unsupported characters");
  } else {
    auto redis = Acquire();
    if (!redis.ok()) {
      status = absl::UnavailableError("redis is unreachable");
    } else {
      status = fn(*caller, **redis);
      if (status.code() == absl::StatusCode::kNotFound) status = Unavailable(status);
      Release(std::move(*redis));
    }
  }
  // Counting, timing and logging each RPC is the server's interceptor's job (grpcx).
  return grpcx::ToGrpcStatus(status, *context);
}

grpc::Status ViewsGrpcService::GetCaseload(grpc::ServerContext* context,
                                           const vv1::GetCaseloadRequest* request,
                                           vv1::GetCaseloadResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller, redis::Connection& redis) -> absl::Status {
    grpcx::Violations v;
    CheckId(request->case_manager_id(), "case_manager_id", true, v);
    CheckPageSize(request->page_size(), 500, "page_size", v);
    cv1::CaseStatus status_filter = cv1::CASE_STATUS_UNSPECIFIED;
    cv1::CaseStage stage_filter = cv1::CASE_STAGE_UNSPECIFIED;
    if (!request->status().empty() && !cv1::CaseStatus_Parse(request->status(), &status_filter)) {
      v.Add("status", "is not a CaseStatus name");
    }
    if (!request->stage().empty() && !cv1::CaseStage_Parse(request->stage(), &stage_filter)) {
      v.Add("stage", "is not a CaseStage name");
    }
    auto offset = OffsetToken(request->page_token());
    if (!v.empty()) return v.ToStatus();
    if (!offset.ok()) return offset.status();
    if (auto s = WaitFor(request->min_positions(), *context, redis); !s.ok()) return s;
    ViewReader reader(redis, options_.root);
    const absl::Time now = options_.now();
    auto read = reader.Caseload(caller.tenant_id, request->case_manager_id(), Clock(now));
    if (!read.ok()) return read.status();
    const auto ranked = RankWorklist(read->value.cases, now,
                                     options_.contact_threshold_days,
                                     options_.default_contact_threshold_days);
    std::map<std::string, const WorklistEntry*> by_id;
    int64_t overdue = 0;
    const int64_t week_ahead = absl::ToUnixSeconds(now + absl::Hours(7 * 24));
    for (const auto& e : ranked) {
      by_id[e.facts.case_id] = &e;
      overdue += e.contact_overdue ? 1 : 0;
      response->set_overdue_tasks(response->overdue_tasks() + e.facts.overdue_tasks);
      response->set_goals_overdue(response->goals_overdue() + e.facts.goals_overdue);
      response->set_goals_due_soon(response->goals_due_soon() + e.facts.goals_due_soon);
      if (e.facts.next_appointment_at != 0 && e.facts.next_appointment_at <= week_ahead) {
        response->set_cases_with_appointment_next_7d(response->cases_with_appointment_next_7d() + 1);
      }
    }
    response->set_case_manager_id(request->case_manager_id());
    ToProto(read->value.counters, response->mutable_counters());
    response->set_contact_overdue_cases(overdue);
    response->set_view_version(read->version);
    const int size = PageSize(request->page_size(), 100);
    int index = 0;
    for (const auto& [id, e] : by_id) {
      if (status_filter != cv1::CASE_STATUS_UNSPECIFIED && e->facts.status != status_filter) continue;
      if (stage_filter != cv1::CASE_STAGE_UNSPECIFIED && e->facts.stage != stage_filter) continue;
      if (request->high_risk_only() && !IsHighRisk(e->facts)) continue;
      if (index++ < *offset) continue;
      if (response->cases_size() == size) {
        response->set_next_page_token(absl::StrCat(*offset + size));
        break;
      }
      ToProto(*e, response->add_cases());
    }
    return absl::OkStatus();
  });
}

grpc::Status ViewsGrpcService::GetWorklist(grpc::ServerContext* context,
                                           const vv1::GetWorklistRequest* request,
                                           vv1::GetWorklistResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller, redis::Connection& redis) -> absl::Status {
    grpcx::Violations v;
    CheckId(request->case_manager_id(), "case_manager_id", true, v);
    CheckPageSize(request->page_size(), 500, "page_size", v);
    auto offset = OffsetToken(request->page_token());
    if (!v.empty()) return v.ToStatus();
    if (!offset.ok()) return offset.status();
    if (auto s = WaitFor(request->min_positions(), *context, redis); !s.ok()) return s;
    ViewReader reader(redis, options_.root);
    const absl::Time now = options_.now();
    auto read = reader.Caseload(caller.tenant_id, request->case_manager_id(), Clock(now));
    if (!read.ok()) return read.status();
    const auto ranked = RankWorklist(read->value.cases, now,
                                     options_.contact_threshold_days,
                                     options_.default_contact_threshold_days);
    response->set_view_version(read->version);
    const int size = PageSize(request->page_size(), 50);
    for (size_t i = static_cast<size_t>(*offset); i < ranked.size(); ++i) {
      if (response->items_size() == size) {
        response->set_next_page_token(absl::StrCat(*offset + size));
        break;
      }
      vv1::WorklistItem* item = response->add_items();
      ToProto(ranked[i], item->mutable_summary());
      for (const auto& r : ranked[i].reasons) item->add_reasons(r);
      item->set_score(ranked[i].score);
    }
    return absl::OkStatus();
  });
}

absl::Status ViewsGrpcService::SupervisorRollups(const std::string& tenant,
                                                 const vv1::ListRollupsRequest& request,
                                                 ViewReader& reader,
                                                 vv1::ListRollupsResponse* response) const {
  if (!options_.organisation) {
    return absl::FailedPreconditionError("supervisor rollups need the organisation topic");
  }
  auto organisation = options_.organisation(tenant);
  if (!organisation.ok()) return organisation.status();
  // supervisor -> teams, sorted; a team with several supervisors counts for each. Ids that
  // could not be part of a key are left out (the case service does not write them).
  std::map<std::string, std::vector<std::string>> teams_of;
  for (const auto& [team, facts] : organisation->teams) {
    if (!IsKeySafeId(team)) continue;
    for (const std::string& supervisor : facts.supervisor_ids()) {
      if (IsKeySafeId(supervisor)) teams_of[supervisor].push_back(team);
    }
  }
  std::vector<std::string> ids;
  for (const auto& [supervisor, teams] : teams_of) {
    if (!request.group_id().empty() ? supervisor == request.group_id()
                                    : supervisor > request.page_token()) {
      ids.push_back(supervisor);
    }
  }
  const size_t size = static_cast<size_t>(PageSize(request.page_size(), 100));
  if (request.group_id().empty() && ids.size() > size) {
    ids.resize(size);
    response->set_next_page_token(ids.back());
  }
  std::vector<std::string> teams;
  for (const auto& id : ids) teams.insert(teams.end(), teams_of[id].begin(), teams_of[id].end());
  auto counters = reader.GroupCounters(tenant, kDimTeam, teams);
  if (!counters.ok()) return counters.status();
  response->set_view_version(counters->version);
  size_t next = 0;
  for (const auto& id : ids) {
    vv1::Rollup* r = response->add_rollups();
    r->set_dimension(vv1::DIMENSION_SUPERVISOR);
    r->set_group_id(id);
    Counters sum;
    for (size_t i = 0; i < teams_of[id].size(); ++i) sum += counters->value[next++];
    ToProto(sum, r->mutable_counters());
  }
  return absl::OkStatus();
}

grpc::Status ViewsGrpcService::ListRollups(grpc::ServerContext* context,
                                           const vv1::ListRollupsRequest* request,
                                           vv1::ListRollupsResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller, redis::Connection& redis) -> absl::Status {
    grpcx::Violations v;
    const char* dim = DimName(request->dimension());
    if (dim == nullptr) v.Add("dimension", "is required");
    CheckId(request->group_id(), "group_id", false, v);
    CheckPageSize(request->page_size(), 500, "page_size", v);
    if (!v.empty()) return v.ToStatus();
    if (auto s = WaitFor(request->min_positions(), *context, redis); !s.ok()) return s;
    ViewReader reader(redis, options_.root);
    if (request->dimension() == vv1::DIMENSION_SUPERVISOR) {
      return SupervisorRollups(caller.tenant_id, *request, reader, response);
    }
    std::vector<std::string> ids;
    std::string version;
    if (request->dimension() == vv1::DIMENSION_TENANT) {
      ids = {kTenantGroup};
    } else if (!request->group_id().empty()) {
      ids = {request->group_id()};
    } else {
      auto groups = reader.Groups(caller.tenant_id, dim);
      if (!groups.ok()) return groups.status();
      // page_token: the last group id of the previous page.
      for (const auto& id : groups->value) {
        if (id > request->page_token()) ids.push_back(id);
      }
      const size_t size = static_cast<size_t>(PageSize(request->page_size(), 100));
      if (ids.size() > size) {
        ids.resize(size);
        response->set_next_page_token(ids.back());
      }
    }
    auto counters = reader.GroupCounters(caller.tenant_id, dim, ids);
    if (!counters.ok()) return counters.status();
    response->set_view_version(counters->version);
    for (size_t i = 0; i < ids.size(); ++i) {
      vv1::Rollup* r = response->add_rollups();
      r->set_dimension(request->dimension());
      r->set_group_id(request->dimension() == vv1::DIMENSION_TENANT ? "" : ids[i]);
      ToProto(counters->value[i], r->mutable_counters());
    }
    return absl::OkStatus();
  });
}

grpc::Status ViewsGrpcService::SuggestCaseManagers(grpc::ServerContext* context,
                                                   const vv1::SuggestCaseManagersRequest* request,
                                                   vv1::SuggestCaseManagersResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller, redis::Connection& redis) -> absl::Status {
    grpcx::Violations v;
    CheckId(request->program(), "program", true, v);
    if (request->acuity() < 1 || request->acuity() > 5) v.Add("acuity", "must be between 1 and 5");
    CheckId(request->team_id(), "team_id", false, v);
    if (request->max_results() < 0 || request->max_results() > 100) {
      v.Add("max_results", "must be between 1 and 100");
    }
    int limit = 0;
    if (v.empty()) {
      auto found = options_.caseload_limits.find({caller.tenant_id, request->program()});
      if (found == options_.caseload_limits.end()) {
        found = options_.caseload_limits.find({"", request->program()});
      }
      if (found == options_.caseload_limits.end()) {
        v.Add("program", "is not a program of this tenant");
      } else {
        limit = found->second;
      }
    }
    if (!v.empty()) return v.ToStatus();
    if (auto s = WaitFor(request->min_positions(), *context, redis); !s.ok()) return s;
    ViewReader reader(redis, options_.root);
    auto managers = reader.Groups(caller.tenant_id, kDimCaseManager);
    if (!managers.ok()) return managers.status();
    auto counters = reader.GroupCounters(caller.tenant_id, kDimCaseManager, managers->value);
    if (!counters.ok()) return counters.status();
    std::vector<std::string> team_members;
    if (!request->team_id().empty()) {
      // Case managers currently carrying a case of the team.
      for (size_t i = 0; i < managers->value.size(); ++i) {
        auto caseload = reader.Caseload(caller.tenant_id, managers->value[i], Clock(options_.now()));
        if (!caseload.ok()) return caseload.status();
        for (const auto& c : caseload->value.cases) {
          if (c.team_id == request->team_id()) {
            team_members.push_back(managers->value[i]);
            break;
          }
        }
      }
    }
    std::vector<ManagerLoad> loads;
    for (size_t i = 0; i < managers->value.size(); ++i) {
      if (!request->team_id().empty() &&
          std::find(team_members.begin(), team_members.end(), managers->value[i]) ==
              team_members.end()) {
        continue;
      }
      loads.push_back({managers->value[i], counters->value[i]});
    }
    int without_room = 0;
    const auto suggestions = SuggestManagers(loads, request->acuity(), limit, &without_room);
    const int max = request->max_results() == 0 ? 10 : request->max_results();
    for (const auto& s : suggestions) {
      if (response->candidates_size() == max) break;
      vv1::Candidate* c = response->add_candidates();
      c->set_case_manager_id(s.case_manager_id);
      c->set_acuity_load(static_cast<int32_t>(s.load));
      c->set_caseload_limit(static_cast<int32_t>(s.limit));
      c->set_load_after_percent(s.load_after_percent);
      c->set_high_risk_cases(static_cast<int32_t>(s.high_risk));
      c->set_unaccepted_assignments(static_cast<int32_t>(s.unaccepted));
      c->set_reason(s.reason);
    }
    response->set_without_room(without_room);
    response->set_view_version(counters->version);
    return absl::OkStatus();
  });
}

grpc::Status ViewsGrpcService::GetOutcomes(grpc::ServerContext* context,
                                           const vv1::GetOutcomesRequest* request,
                                           vv1::GetOutcomesResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller, redis::Connection& redis) -> absl::Status {
    grpcx::Violations v;
    const char* dim = DimName(request->dimension());
    if (dim == nullptr) v.Add("dimension", "is required");
    if (request->dimension() == vv1::DIMENSION_SUPERVISOR) {
      v.Add("dimension", "outcomes are per tenant, program, team or case manager");
    }
    if (request->dimension() != vv1::DIMENSION_TENANT) {
      CheckId(request->group_id(), "group_id", true, v);
    }
    Period period = Period::kMonth;
    switch (request->period_kind()) {
      case vv1::PERIOD_KIND_WEEK: period = Period::kWeek; break;
      case vv1::PERIOD_KIND_MONTH: period = Period::kMonth; break;
      case vv1::PERIOD_KIND_QUARTER: period = Period::kQuarter; break;
      default: v.Add("period_kind", "is required");
    }
    if (!request->has_period_at()) v.Add("period_at", "is required");
    if (!v.empty()) return v.ToStatus();
    if (auto s = WaitFor(request->min_positions(), *context, redis); !s.ok()) return s;
    const std::string label = PeriodLabel(period, absl::FromUnixSeconds(request->period_at().seconds()));
    const std::string id = request->dimension() == vv1::DIMENSION_TENANT ? kTenantGroup : request->group_id();
    ViewReader reader(redis, options_.root);
    auto read = reader.GetOutcome(caller.tenant_id, dim, id, label);
    if (!read.ok()) return read.status();
    const Outcome& o = read->value;
    response->set_period(label);
    response->set_cases_opened(o.opened);
    response->set_cases_assigned(o.assigned);
    response->set_cases_closed(o.closed);
    response->set_cases_cancelled(o.cancelled);
    response->set_cases_entered_in_error(o.entered_in_error);
    for (auto [reason, n] : o.reasons) {
      const std::string name = cv1::ClosureReason_IsValid(reason)
                                   ? cv1::ClosureReason_Name(static_cast<cv1::ClosureReason>(reason))
                                   : absl::StrCat(reason);
      (*response->mutable_closure_reasons())[name] = n;
    }
    if (o.closed > 0) {
      response->set_goals_met_closure_rate(static_cast<double>(o.goals_met) / static_cast<double>(o.closed));
      response->set_reopen_rate_30d(static_cast<double>(o.reopened_30) / static_cast<double>(o.closed));
      response->set_reopen_rate_90d(static_cast<double>(o.reopened_90) / static_cast<double>(o.closed));
    }
    if (o.close_count > 0) {
      response->set_median_days_to_close(static_cast<double>(o.close_p50) / 86400.0);
      response->set_p90_days_to_close(static_cast<double>(o.close_p90) / 86400.0);
    }
    response->set_first_contacts(o.first_contact_count);
    if (o.first_contact_count > 0) {
      response->set_median_hours_to_first_contact(static_cast<double>(o.first_contact_p50) / 3600.0);
    }
    response->set_satisfaction_responses(o.satisfaction_count);
    if (o.satisfaction_count > 0) {
      response->set_mean_satisfaction(static_cast<double>(o.satisfaction_sum) /
                                      static_cast<double>(o.satisfaction_count));
    }
    response->set_reopened_within_30d(o.reopened_30);
    response->set_reopened_within_90d(o.reopened_90);
    response->set_contact_minutes(o.contact_minutes);
    response->set_appointments_kept(o.appointments_kept);
    response->set_appointments_no_show(o.appointments_no_show);
    if (o.appointments_kept + o.appointments_no_show > 0) {
      response->set_appointment_kept_rate(static_cast<double>(o.appointments_kept) /
                                          static_cast<double>(o.appointments_kept + o.appointments_no_show));
    }
    response->set_closure_goals(o.goals_total);
    response->set_closure_goals_achieved(o.goals_achieved);
    if (o.goals_total > 0) {
      response->set_goal_achievement_rate(static_cast<double>(o.goals_achieved) /
                                          static_cast<double>(o.goals_total));
    }
    for (const auto& [currency, minor] : o.delivered_cost) {
      common::v1::Money* m = response->add_delivered_cost();
      m->set_currency_code(currency);
      m->set_minor_units(minor);
    }
    Divide(o.delivered_cost, o.closed, response->mutable_cost_per_case());
    Divide(o.delivered_cost, o.goals_achieved, response->mutable_cost_per_achieved_goal());
    response->set_view_version(read->version);
    return absl::OkStatus();
  });
}

}  // namespace clinical::views

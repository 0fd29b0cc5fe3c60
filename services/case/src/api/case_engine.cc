#include "case_engine.h"

#include "clinical/grpcx/status.h"

#include <algorithm>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "access_rules.h"

namespace clinical::case_service {
namespace {

// The case manager a command assigns to, if any.
std::string AssigneeOf(const Command& command) {
  if (const auto* c = std::get_if<v1::AssignCaseRequest>(&command)) return c->case_manager_id();
  if (const auto* c = std::get_if<v1::TransferCaseRequest>(&command)) return c->case_manager_id();
  if (const auto* c = std::get_if<BulkReassignOne>(&command)) return c->case_manager_id;
  return "";
}

std::string DetailOf(const v1::CaseEvent& event) {
  switch (event.event_case()) {
    case v1::CaseEvent::kNoteAdded: return event.note_added().note_id();
    case v1::CaseEvent::kTasksDelegated: return event.tasks_delegated().delegation_id();
    case v1::CaseEvent::kCaseEscalated: return event.case_escalated().escalation_id();
    case v1::CaseEvent::kAssessmentRecorded: return event.assessment_recorded().assessment_id();
    case v1::CaseEvent::kGoalAdded: return event.goal_added().goal_id();
    case v1::CaseEvent::kCareTaskAdded: return event.care_task_added().task_id();
    case v1::CaseEvent::kCareTeamMemberAdded: return event.care_team_member_added().member().member_id();
    case v1::CaseEvent::kConsentRecorded: return event.consent_recorded().consent_id();
    case v1::CaseEvent::kServiceReferred: return event.service_referred().referral_id();
    case v1::CaseEvent::kEmergencyAccessGranted: return event.emergency_access_granted().grant().grant_id();
    // A referral's disclosure is part of the referral: the response names the referral.
    case v1::CaseEvent::kInformationDisclosed:
      return event.information_disclosed().referral_id().empty()
                 ? event.information_disclosed().disclosure_id()
                 : "";
    case v1::CaseEvent::kClosureRequested:
      return event.closure_requested().requires_approval() ? "pending_approval" : "";
    default: return "";
  }
}

}  // namespace

CaseEngine::CaseEngine(EventLog& log, const ProgramCatalog& programs, std::string topic,
                       std::function<absl::Time()> clock,
                       std::function<std::string()> new_case_id, relations::Directory* directory)
    : log_(log),
      programs_(programs),
      topic_(std::move(topic)),
      clock_(std::move(clock)),
      new_case_id_(std::move(new_case_id)),
      directory_(directory) {}

void CaseEngine::Relate(const common::v1::EventEnvelope& envelope) const {
  if (directory_ == nullptr) return;
  common::v1::EventEnvelope related = envelope;
  related.set_aggregate_type("case");  // the engine's copy of an append does not carry it
  // The directory folds each version once (relations::Directory::Apply), so an envelope
  // handed again after a rebuild changes nothing.
  directory_->Apply(related);
}

void CaseEngine::AddRelations(const grpcx::Caller& caller, const std::string& case_id, const Command& command,
                              DecisionContext& context) const {
  context.relationship = caller.relationship;
  if (directory_ == nullptr || !std::holds_alternative<v1::RequestEmergencyAccessRequest>(command)) return;
  // RequestEmergencyAccess's rule is TENANT, so the caller's relationship to the case is
  // looked up here: someone who has one needs no glass broken.
  const access::Principal principal{caller.actor.user_id(), caller.tenant_id, caller.actor.role()};
  if (auto relations = directory_->RelationsTo(principal, case_id); relations.ok()) {
    context.related_to_case = relations->assigned || relations->care_team || relations->team_supervisor;
  }
  context.emergency_access_max_minutes = directory_->Organisation(caller.tenant_id).emergency_access_max_minutes;
}

std::mutex& CaseEngine::StripeOf(const std::string& case_id) {
  return stripes_[std::hash<std::string>()(case_id) % stripes_.size()];
}

void CaseEngine::Install(const std::string& case_id, std::shared_ptr<const CaseState> state) {
  Entry& entry = cases_[case_id];
  if (entry.state) {
    const CaseloadContribution before = ContributionOf(*entry.state);
    if (!before.case_manager_id.empty()) {
      loads_[{entry.state->tenant_id(), before.case_manager_id}] -= before.weight;
    }
  }
  const CaseloadContribution after = ContributionOf(*state);
  if (!after.case_manager_id.empty()) loads_[{state->tenant_id(), after.case_manager_id}] += after.weight;
  entry.state = std::move(state);
}

void CaseEngine::Record(Entry& entry, const common::v1::EventEnvelope& envelope,
                        const Event& event, const common::v1::LogPosition& position) {
  CommandRecord& record = entry.commands[envelope.command_id()];
  record.version = envelope.aggregate_version();
  record.position = position;
  if (std::string detail = DetailOf(event.body); !detail.empty()) record.detail = detail;
}

absl::Status CaseEngine::Replay(const eventstore::LoggedEvent& logged) {
  const common::v1::EventEnvelope& envelope = logged.envelope;
  auto event = FromEnvelope(envelope);
  if (!event.ok()) {
    return absl::DataLossError(absl::StrCat("partition ", logged.partition, " offset ",
                                            logged.offset, ": ", event.status().message()));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  Entry& entry = cases_[envelope.aggregate_id()];
  const CaseState base = entry.state ? *entry.state
                                     : NewCase(envelope.aggregate_id(), envelope.tenant_id());
  if (envelope.aggregate_version() != base.version() + 1) {
    return absl::DataLossError(absl::StrCat("partition ", logged.partition, " offset ",
                                            logged.offset, ": version gap"));
  }
  Install(envelope.aggregate_id(), std::make_shared<const CaseState>(Evolve(base, *event)));
  common::v1::LogPosition position;
  position.set_topic(topic_);
  position.set_partition(logged.partition);
  position.set_offset(logged.offset);
  Record(cases_[envelope.aggregate_id()], envelope, *event, position);
  if (event->body.has_case_opened()) {
    opened_by_command_[{envelope.tenant_id(), envelope.command_id()}] = envelope.aggregate_id();
  }
  Relate(envelope);
  return absl::OkStatus();
}

absl::Status CaseEngine::Reload(const std::string& case_id) {
  auto events = log_.Load(case_id, 1);
  if (!events.ok()) return events.status();
  std::lock_guard<std::mutex> lock(mutex_);
  Entry fresh;
  CaseState state;
  for (const auto& logged : *events) {
    auto event = FromEnvelope(logged.envelope);
    if (!event.ok()) return event.status();
    if (state.version() == 0) state = NewCase(case_id, logged.envelope.tenant_id());
    state = Evolve(std::move(state), *event);
    common::v1::LogPosition position;
    position.set_topic(topic_);
    position.set_partition(logged.partition);
    position.set_offset(logged.offset);
    Record(fresh, logged.envelope, *event, position);
    Relate(logged.envelope);  // only versions an unacknowledged append committed are new to it
    if (event->body.has_case_opened()) {
      opened_by_command_[{logged.envelope.tenant_id(), logged.envelope.command_id()}] = case_id;
    }
  }
  Entry& entry = cases_[case_id];
  entry.commands = std::move(fresh.commands);
  entry.stale = false;
  if (state.version() > 0) {
    Install(case_id, std::make_shared<const CaseState>(std::move(state)));
  } else if (!entry.state) {
    cases_.erase(case_id);
  }
  return absl::OkStatus();
}

absl::StatusOr<ProgramRules> CaseEngine::RulesFor(const CaseState& state, const Command& command,
                                                  const std::string& tenant_id) const {
  std::string program = state.program();
  if (const auto* open = std::get_if<v1::OpenCaseRequest>(&command)) program = open->program();
  if (const auto* transfer = std::get_if<v1::TransferCaseRequest>(&command)) {
    if (!transfer->to_program().empty()) program = transfer->to_program();
  }
  const ProgramRules* rules = programs_.Find(tenant_id, program);
  if (rules == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("program ", program, " is not offered to this tenant"));
  }
  return *rules;
}

absl::StatusOr<CommandOutcome> CaseEngine::Open(const grpcx::Caller& caller,
                                                const v1::OpenCaseRequest& request) {
  std::string case_id = request.case_id();
  if (case_id.empty()) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = opened_by_command_.find({caller.tenant_id, request.command_id()});
    case_id = it != opened_by_command_.end() ? it->second : new_case_id_();
  }
  std::optional<int64_t> expected;
  if (request.has_expected_version()) expected = request.expected_version();
  return Execute(caller, case_id, request.command_id(), expected, request);
}

absl::StatusOr<CommandOutcome> CaseEngine::Execute(const grpcx::Caller& caller,
                                                   const std::string& case_id,
                                                   const std::string& command_id,
                                                   std::optional<int64_t> expected_version,
                                                   const Command& command) {
  std::lock_guard<std::mutex> case_lock(StripeOf(case_id));
  const std::string assignee = AssigneeOf(command);
  std::unique_lock<std::mutex> capacity_lock(capacity_mutex_, std::defer_lock);
  if (!assignee.empty()) capacity_lock.lock();

  bool stale = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cases_.find(case_id);
    stale = it != cases_.end() && it->second.stale;
  }
  if (stale) {
    if (absl::Status reloaded = Reload(case_id); !reloaded.ok()) return reloaded;
  }

  std::shared_ptr<const CaseState> current;
  std::optional<CommandRecord> done;
  int32_t assignee_load = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = cases_.find(case_id); it != cases_.end()) {
      current = it->second.state;
      if (auto c = it->second.commands.find(command_id); c != it->second.commands.end()) {
        done = c->second;
      }
    }
    if (!assignee.empty()) {
      auto load = loads_.find({caller.tenant_id, assignee});
      assignee_load = load == loads_.end() ? 0 : load->second;
      if (current) {
        // The case's own weight is not part of the load it is checked against.
        const CaseloadContribution own = ContributionOf(*current);
        if (own.case_manager_id == assignee) assignee_load -= own.weight;
      }
    }
  }
  const bool is_open = std::holds_alternative<v1::OpenCaseRequest>(command);
  // Another tenant's case: as if it did not exist (even for OpenCase with its id), and a
  // refusal in the access record.
  if (current && current->tenant_id() != caller.tenant_id) return grpcx::NotFoundInTenant("case");
  if (done) {
    return CommandOutcome{case_id, done->version, done->position, true, done->detail};
  }
  const CaseState state = current ? *current : NewCase(case_id, caller.tenant_id);
  if (!is_open && state.version() == 0) return absl::NotFoundError("case not found");
  if (expected_version && *expected_version != state.version()) {
    return absl::AbortedError(absl::StrCat("version conflict: case is at version ",
                                           state.version(), ", expected ", *expected_version));
  }

  DecisionContext context;
  context.now = clock_();
  context.actor = caller.actor;
  context.tenant_id = caller.tenant_id;
  context.case_id = case_id;
  context.assignee_load = assignee_load;
  AddRelations(caller, case_id, command, context);
  auto rules = RulesFor(state, command, caller.tenant_id);
  if (!rules.ok()) return rules.status();
  context.program = *rules;

  auto events = Decide(state, command, context);
  if (!events.ok()) return events.status();

  eventstore::AppendRequest append;
  append.aggregate_id = case_id;
  append.expected_version = eventstore::ExpectedVersion::Exactly(state.version());
  append.command_id = command_id;
  for (const Event& event : *events) {
    common::v1::EventEnvelope& envelope = append.events.emplace_back();
    ToEnvelope(event, &envelope);
    envelope.set_tenant_id(caller.tenant_id);
    *envelope.mutable_trace() = caller.trace;
    envelope.set_correlation_id(command_id);
  }
  auto appended = log_.Append(append);
  if (!appended.ok() || appended->duplicate) {
    // Unknown outcome (or the log knew the command when we did not): rebuild this case
    // from the log before its next command.
    std::lock_guard<std::mutex> lock(mutex_);
    cases_[case_id].stale = true;
    if (!current && !appended.ok()) cases_[case_id].state = nullptr;
  }
  if (!appended.ok()) return appended.status();
  if (appended->duplicate) {
    return CommandOutcome{case_id, appended->last_version, appended->position, true, ""};
  }

  CaseState next = state;
  std::string detail;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Entry& entry = cases_[case_id];
    for (size_t i = 0; i < events->size(); ++i) {
      next = Evolve(std::move(next), (*events)[i]);
      append.events[i].set_aggregate_version(appended->first_version + static_cast<int64_t>(i));
      append.events[i].set_command_id(command_id);
      append.events[i].set_aggregate_id(case_id);
      Record(entry, append.events[i], (*events)[i], appended->position);
      // Before the command returns: the next call's authorization sees this change.
      Relate(append.events[i]);
      if (std::string d = DetailOf((*events)[i].body); !d.empty()) detail = d;
    }
    Install(case_id, std::make_shared<const CaseState>(std::move(next)));
    if (is_open) opened_by_command_[{caller.tenant_id, command_id}] = case_id;
  }
  return CommandOutcome{case_id, appended->last_version, appended->position, false, detail};
}

absl::StatusOr<v1::BulkReassignCasesResponse> CaseEngine::BulkReassign(
    const grpcx::Caller& caller, const v1::BulkReassignCasesRequest& request) {
  std::vector<CaseToPlace> cases;
  std::vector<std::pair<int32_t, std::string>> order;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [id, entry] : cases_) {
      if (!entry.state || entry.state->tenant_id() != caller.tenant_id) continue;
      if (ContributionOf(*entry.state).case_manager_id != request.from_case_manager_id()) continue;
      const ProgramRules* rules = programs_.Find(caller.tenant_id, entry.state->program());
      cases.push_back({id, entry.state->acuity(), rules ? rules->caseload_limit : 0});
    }
  }
  // Heaviest first packs better; ties by id keep the plan deterministic.
  std::sort(cases.begin(), cases.end(), [](const CaseToPlace& a, const CaseToPlace& b) {
    return a.weight != b.weight ? a.weight > b.weight : a.case_id < b.case_id;
  });
  std::vector<CandidateLoad> candidates;
  for (const std::string& manager : request.to_case_manager_ids()) {
    candidates.push_back({manager, LoadOf(caller.tenant_id, manager)});
  }
  v1::BulkReassignCasesResponse response;
  for (const Placement& placement : Distribute(cases, candidates, request.strategy())) {
    if (placement.case_manager_id.empty()) {
      v1::UnplacedCase* unplaced = response.add_unplaced();
      unplaced->set_case_id(placement.case_id);
      unplaced->set_reason("no receiving case manager has capacity for it");
      continue;
    }
    BulkReassignOne one{placement.case_manager_id, request.command_id(), request.reason()};
    auto outcome = Execute(caller, placement.case_id,
                           absl::StrCat(request.command_id(), "/", placement.case_id),
                           std::nullopt, one);
    if (!outcome.ok()) {
      v1::UnplacedCase* unplaced = response.add_unplaced();
      unplaced->set_case_id(placement.case_id);
      unplaced->set_reason(absl::StatusCodeToString(outcome.status().code()));
      continue;
    }
    v1::BulkReassignment* moved = response.add_reassigned();
    moved->set_case_id(placement.case_id);
    moved->set_case_manager_id(placement.case_manager_id);
    moved->set_version(outcome->version);
    *moved->mutable_position() = outcome->position;
  }
  return response;
}

absl::StatusOr<v1::Case> CaseEngine::Get(const std::string& tenant_id,
                                         const std::string& case_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = cases_.find(case_id);
  if (it == cases_.end() || !it->second.state) return absl::NotFoundError("case not found");
  if (it->second.state->tenant_id() != tenant_id) return grpcx::NotFoundInTenant("case");
  return *it->second.state;
}

absl::StatusOr<v1::ListCaseHistoryResponse> CaseEngine::History(
    const std::string& tenant_id, const v1::ListCaseHistoryRequest& request) const {
  if (auto found = Get(tenant_id, request.case_id()); !found.ok()) return found.status();
  int64_t from = 1;
  if (!request.page_token().empty() &&
      (!absl::SimpleAtoi(request.page_token(), &from) || from < 1)) {
    return absl::InvalidArgumentError("page_token is not valid");
  }
  const int32_t page_size = request.page_size() == 0 ? 100 : request.page_size();
  auto events = log_.Load(request.case_id(), from);
  if (!events.ok()) return events.status();
  v1::ListCaseHistoryResponse response;
  for (const auto& logged : *events) {
    if (response.events_size() == page_size) {
      response.set_next_page_token(absl::StrCat(logged.envelope.aggregate_version()));
      break;
    }
    *response.add_events() = logged.envelope;
  }
  return response;
}

std::optional<absl::Time> CaseEngine::LatestEventTimeOf(const std::string& tenant_id,
                                                        const std::string& case_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = cases_.find(case_id);
  if (it == cases_.end() || !it->second.state || it->second.state->tenant_id() != tenant_id) return std::nullopt;
  return LatestEventTime(*it->second.state);
}

std::vector<v1::CaseEmergencyAccess> CaseEngine::EmergencyGrants(const std::string& tenant_id) const {
  std::vector<v1::CaseEmergencyAccess> grants;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [id, entry] : cases_) {
    if (!entry.state || entry.state->tenant_id() != tenant_id) continue;
    for (const v1::EmergencyAccessGrant& grant : entry.state->emergency_access()) {
      v1::CaseEmergencyAccess& out = grants.emplace_back();
      out.set_case_id(id);
      *out.mutable_grant() = grant;
    }
  }
  return grants;
}

int32_t CaseEngine::LoadOf(const std::string& tenant_id, const std::string& case_manager_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = loads_.find({tenant_id, case_manager_id});
  return it == loads_.end() ? 0 : it->second;
}

size_t CaseEngine::case_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cases_.size();
}

}  // namespace clinical::case_service

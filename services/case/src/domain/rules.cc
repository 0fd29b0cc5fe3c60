// Transition tables, the capacity rule, bulk distribution and the envelope codec.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "case_domain.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/time_util.h"

namespace clinical::case_service {
namespace {

using S = v1::CaseStatus;
using G = v1::CaseStage;

const char* ActionName(StatusAction action) {
  switch (action) {
    case StatusAction::kChangeStatus: return "change status";
    case StatusAction::kHold: return "put on hold";
    case StatusAction::kClose: return "close";
    case StatusAction::kCancel: return "cancel";
    case StatusAction::kReopen: return "reopen";
    case StatusAction::kEnteredInError: return "mark entered-in-error";
  }
  return "change";
}

}  // namespace

const std::vector<StatusTransition>& StatusTransitions() {
  using A = StatusAction;
  static const std::vector<StatusTransition> kTable = {
      {S::CASE_STATUS_PLANNED, S::CASE_STATUS_WAITLIST, A::kChangeStatus},
      {S::CASE_STATUS_PLANNED, S::CASE_STATUS_ACTIVE, A::kChangeStatus},
      {S::CASE_STATUS_WAITLIST, S::CASE_STATUS_PLANNED, A::kChangeStatus},
      {S::CASE_STATUS_WAITLIST, S::CASE_STATUS_ACTIVE, A::kChangeStatus},
      {S::CASE_STATUS_ONHOLD, S::CASE_STATUS_ACTIVE, A::kChangeStatus},
      {S::CASE_STATUS_ACTIVE, S::CASE_STATUS_ONHOLD, A::kHold},
      {S::CASE_STATUS_ACTIVE, S::CASE_STATUS_FINISHED, A::kClose},
      {S::CASE_STATUS_ONHOLD, S::CASE_STATUS_FINISHED, A::kClose},
      // FHIR: cancelled = ended before care started.
      {S::CASE_STATUS_PLANNED, S::CASE_STATUS_CANCELLED, A::kCancel},
      {S::CASE_STATUS_WAITLIST, S::CASE_STATUS_CANCELLED, A::kCancel},
      {S::CASE_STATUS_FINISHED, S::CASE_STATUS_ACTIVE, A::kReopen},
      {S::CASE_STATUS_PLANNED, S::CASE_STATUS_ENTERED_IN_ERROR, A::kEnteredInError},
      {S::CASE_STATUS_WAITLIST, S::CASE_STATUS_ENTERED_IN_ERROR, A::kEnteredInError},
      {S::CASE_STATUS_ACTIVE, S::CASE_STATUS_ENTERED_IN_ERROR, A::kEnteredInError},
      {S::CASE_STATUS_ONHOLD, S::CASE_STATUS_ENTERED_IN_ERROR, A::kEnteredInError},
      {S::CASE_STATUS_FINISHED, S::CASE_STATUS_ENTERED_IN_ERROR, A::kEnteredInError},
      {S::CASE_STATUS_CANCELLED, S::CASE_STATUS_ENTERED_IN_ERROR, A::kEnteredInError},
  };
  return kTable;
}

absl::Status CheckStatusTransition(v1::CaseStatus from, v1::CaseStatus to, StatusAction action) {
  std::vector<std::string> allowed_from;
  for (const StatusTransition& t : StatusTransitions()) {
    if (t.action != action || t.to != to) continue;
    if (t.from == from) return absl::OkStatus();
    allowed_from.push_back(v1::CaseStatus_Name(t.from));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "cannot ", ActionName(action), " to ", v1::CaseStatus_Name(to), ": case is ",
      v1::CaseStatus_Name(from), "; allowed from ",
      allowed_from.empty() ? std::string("no status") : absl::StrJoin(allowed_from, ", ")));
}

const std::vector<StageTransition>& StageTransitions() {
  static const std::vector<StageTransition> kTable = [] {
    std::vector<StageTransition> table;
    for (int s = G::CASE_STAGE_INTAKE; s < G::CASE_STAGE_TRANSITION_CLOSURE; ++s) {
      table.push_back({static_cast<G>(s), static_cast<G>(s + 1)});
    }
    // Reassessment and replanning from any later stage.
    for (int s = G::CASE_STAGE_CARE_PLANNING; s <= G::CASE_STAGE_TRANSITION_CLOSURE; ++s) {
      table.push_back({static_cast<G>(s), G::CASE_STAGE_ASSESSMENT});
    }
    for (int s = G::CASE_STAGE_SERVICE_DELIVERY; s <= G::CASE_STAGE_TRANSITION_CLOSURE; ++s) {
      table.push_back({static_cast<G>(s), G::CASE_STAGE_CARE_PLANNING});
    }
    // Back from transition/closure when the closure plan is dropped.
    table.push_back({G::CASE_STAGE_TRANSITION_CLOSURE, G::CASE_STAGE_MONITORING});
    table.push_back({G::CASE_STAGE_TRANSITION_CLOSURE, G::CASE_STAGE_SERVICE_DELIVERY});
    return table;
  }();
  return kTable;
}

absl::Status CheckStageTransition(v1::CaseStage from, v1::CaseStage to) {
  std::vector<std::string> allowed;
  for (const StageTransition& t : StageTransitions()) {
    if (t.from != from) continue;
    if (t.to == to) return absl::OkStatus();
    allowed.push_back(v1::CaseStage_Name(t.to));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("cannot move from stage ", v1::CaseStage_Name(from), " to ",
                   v1::CaseStage_Name(to), "; allowed: ", absl::StrJoin(allowed, ", ")));
}

bool IsOpen(v1::CaseStatus status) {
  return status == S::CASE_STATUS_PLANNED || status == S::CASE_STATUS_WAITLIST ||
         status == S::CASE_STATUS_ACTIVE || status == S::CASE_STATUS_ONHOLD;
}

absl::Status CheckCapacity(int32_t load, int32_t weight, int32_t limit,
                           const v1::CapacityOverride* capacity_override, common::v1::Role role,
                           bool* overridden) {
  *overridden = false;
  if (load + weight <= limit) return absl::OkStatus();
  if (capacity_override == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "caseload limit exceeded: the case manager's acuity-weighted load ", load, " plus ",
        weight, " is over the program limit ", limit,
        "; a supervisor may override with a reason"));
  }
  // A rule about the data, not about who may call: intake coordinators may assign too
  // (AssignCase's policy), but only a supervisor's judgement may exceed a caseload.
  if (role != common::v1::ROLE_SUPERVISOR) {
    return absl::PermissionDeniedError("only a supervisor may override the caseload limit");
  }
  if (capacity_override->reason().empty()) {
    return absl::InvalidArgumentError("capacity_override.reason is required");
  }
  *overridden = true;
  return absl::OkStatus();
}

CaseloadContribution ContributionOf(const CaseState& state) {
  if (!IsOpen(state.status()) || !state.has_assignment() ||
      state.assignment().case_manager_id().empty()) {
    return {};
  }
  return {state.assignment().case_manager_id(), state.acuity()};
}

std::vector<Placement> Distribute(const std::vector<CaseToPlace>& cases,
                                  std::vector<CandidateLoad> candidates,
                                  v1::DistributionStrategy strategy) {
  std::vector<Placement> placements;
  size_t cursor = 0;
  for (const CaseToPlace& c : cases) {
    std::optional<size_t> chosen;
    if (strategy == v1::DISTRIBUTION_STRATEGY_ROUND_ROBIN) {
      for (size_t step = 0; step < candidates.size() && !chosen; ++step) {
        const size_t i = (cursor + step) % candidates.size();
        if (candidates[i].load + c.weight <= c.limit) chosen = i;
      }
      if (chosen) cursor = (*chosen + 1) % candidates.size();
    } else {
      for (size_t i = 0; i < candidates.size(); ++i) {
        if (candidates[i].load + c.weight > c.limit) continue;
        if (!chosen || candidates[i].load < candidates[*chosen].load) chosen = i;
      }
    }
    Placement placement{c.case_id, ""};
    if (chosen) {
      candidates[*chosen].load += c.weight;
      placement.case_manager_id = candidates[*chosen].case_manager_id;
    }
    placements.push_back(std::move(placement));
  }
  return placements;
}

std::string EventTypeOf(const v1::CaseEvent& event) {
  const auto* descriptor = v1::CaseEvent::descriptor();
  const auto* field = descriptor->FindFieldByNumber(static_cast<int>(event.event_case()));
  if (field == nullptr) return "";
  return field->message_type()->full_name();
}

void ToEnvelope(const Event& event, common::v1::EventEnvelope* envelope) {
  const auto* field =
      v1::CaseEvent::descriptor()->FindFieldByNumber(static_cast<int>(event.body.event_case()));
  const auto& payload = event.body.GetReflection()->GetMessage(event.body, field);
  envelope->set_event_type(field->message_type()->full_name());
  envelope->mutable_payload()->PackFrom(payload);
  *envelope->mutable_occurred_at() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(event.occurred_at));
  *envelope->mutable_actor() = event.actor;
  envelope->set_schema_version(1);
}

absl::StatusOr<Event> FromEnvelope(const common::v1::EventEnvelope& envelope) {
  const auto* oneof = v1::CaseEvent::descriptor()->FindOneofByName("event");
  for (int i = 0; i < oneof->field_count(); ++i) {
    const auto* field = oneof->field(i);
    if (field->message_type()->full_name() != envelope.event_type()) continue;
    Event event;
    auto* payload = event.body.GetReflection()->MutableMessage(&event.body, field);
    if (!envelope.payload().UnpackTo(payload)) {
      return absl::DataLossError(
          absl::StrCat("payload of version ", envelope.aggregate_version(), " is not ",
                       envelope.event_type()));
    }
    event.occurred_at = absl::FromUnixNanos(
        google::protobuf::util::TimeUtil::TimestampToNanoseconds(envelope.occurred_at()));
    event.actor = envelope.actor();
    return event;
  }
  return absl::DataLossError(
      absl::StrCat("unknown case event type at version ", envelope.aggregate_version()));
}

}  // namespace clinical::case_service

// Decide: the Case aggregate's command rules.
#include "absl/strings/str_cat.h"
#include "access_rules.h"
#include "care_rules.h"
#include "case_domain.h"
#include "google/protobuf/util/time_util.h"

namespace clinical::case_service {
namespace {

using S = v1::CaseStatus;
using google::protobuf::util::TimeUtil;

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(t));
}

absl::Status Required(const std::string& value, const char* field) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  return absl::OkStatus();
}

template <typename C>
concept CareCommand = requires(const CaseState& s, const C& c, const DecisionContext& x) {
  DecideCare(s, c, x);
};

class Decider {
 public:
  template <CareCommand C>
  absl::StatusOr<std::vector<Event>> operator()(const C& c) {
    if (auto s = OpenCase(); !s.ok()) return s;
    // A command that says when its fact happened (an assessment recorded late) stamps its
    // events with that time: occurred_at earlier than recorded_at.
    absl::Time occurred = context_.now;
    if constexpr (std::is_same_v<C, v1::RemoveCareTeamMemberRequest>) {
      // A relationship change: its own rule for how late it may be entered.
      auto effective = EffectiveTime(c);
      if (!effective.ok()) return effective.status();
      occurred = *effective;
    } else if constexpr (requires { c.has_occurred_at(); }) {
      if (c.has_occurred_at()) occurred = ToTime(c.occurred_at());
      if (occurred > context_.now) {
        return absl::InvalidArgumentError("occurred_at must not be in the future");
      }
    }
    auto bodies = DecideCare(state_, c, context_);
    if (!bodies.ok()) return bodies.status();
    std::vector<Event> events;
    for (auto& body : *bodies) {
      events.push_back(Make([&](v1::CaseEvent& e) { e = std::move(body); }));
      events.back().occurred_at = occurred;
    }
    return events;
  }

  Decider(const CaseState& state, const DecisionContext& context)
      : state_(state), context_(context) {}

  absl::StatusOr<std::vector<Event>> operator()(const v1::OpenCaseRequest& c) {
    if (state_.version() > 0) return absl::AlreadyExistsError("case already exists");
    v1::CaseOpened opened;
    *opened.mutable_patient() = c.patient();
    opened.set_program(context_.program.code);
    opened.set_priority(c.priority());
    opened.set_acuity(c.acuity());
    *opened.mutable_referral() = c.referral();
    const S status =
        c.initial_status() == S::CASE_STATUS_UNSPECIFIED ? S::CASE_STATUS_PLANNED : c.initial_status();
    if (status != S::CASE_STATUS_PLANNED && status != S::CASE_STATUS_WAITLIST &&
        status != S::CASE_STATUS_ACTIVE) {
      return absl::InvalidArgumentError("initial_status must be PLANNED, WAITLIST or ACTIVE");
    }
    opened.set_status(status);
    opened.set_stage(v1::CASE_STAGE_INTAKE);
    opened.set_team_id(c.team_id());
    const absl::Time occurred = c.has_occurred_at() ? ToTime(c.occurred_at()) : context_.now;
    if (occurred > context_.now) {
      return absl::InvalidArgumentError("occurred_at must not be in the future");
    }
    auto events = One([&](v1::CaseEvent& e) { *e.mutable_case_opened() = std::move(opened); });
    events[0].occurred_at = occurred;  // an intake entered late
    return events;
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::ChangeCaseStatusRequest& c) {
    if (auto s = Exists(); !s.ok()) return s;
    if (auto s = NoPendingClosure(); !s.ok()) return s;
    if (c.status() == state_.status()) {
      return absl::FailedPreconditionError(
          absl::StrCat("case is already ", v1::CaseStatus_Name(c.status())));
    }
    if (auto s = CheckStatusTransition(state_.status(), c.status(), StatusAction::kChangeStatus);
        !s.ok()) {
      return s;
    }
    v1::CaseStatusChanged changed;
    changed.set_from(state_.status());
    changed.set_to(c.status());
    changed.set_reason(c.reason());
    return One([&](v1::CaseEvent& e) { *e.mutable_case_status_changed() = std::move(changed); });
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::ChangeCaseStageRequest& c) {
    if (auto s = Exists(); !s.ok()) return s;
    if (auto s = NoPendingClosure(); !s.ok()) return s;
    const bool early = c.stage() == v1::CASE_STAGE_ASSESSMENT &&
                       state_.stage() == v1::CASE_STAGE_INTAKE;
    if (state_.status() != S::CASE_STATUS_ACTIVE &&
        !(early && (state_.status() == S::CASE_STATUS_PLANNED ||
                    state_.status() == S::CASE_STATUS_WAITLIST))) {
      return absl::FailedPreconditionError(absl::StrCat(
          "stage changes need an ACTIVE case (intake to assessment also PLANNED or WAITLIST); "
          "case is ",
          v1::CaseStatus_Name(state_.status())));
    }
    if (auto s = CheckStageTransition(state_.stage(), c.stage()); !s.ok()) return s;
    v1::CaseStageChanged changed;
    changed.set_from(state_.stage());
    changed.set_to(c.stage());
    changed.set_reason(c.reason());
    return One([&](v1::CaseEvent& e) { *e.mutable_case_stage_changed() = std::move(changed); });
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::ReprioritizeCaseRequest& c) {
    if (auto s = OpenCase(); !s.ok()) return s;
    if (c.priority() == state_.priority() && c.acuity() == state_.acuity()) {
      return absl::FailedPreconditionError("priority and acuity are unchanged");
    }
    v1::CaseReprioritized event;
    event.set_previous_priority(state_.priority());
    event.set_priority(c.priority());
    event.set_previous_acuity(state_.acuity());
    event.set_acuity(c.acuity());
    event.set_reason(c.reason());
    return One([&](v1::CaseEvent& e) { *e.mutable_case_reprioritized() = std::move(event); });
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::AssignCaseRequest& c) {
    if (auto s = OpenCase(); !s.ok()) return s;
    auto effective = EffectiveTime(c);
    if (!effective.ok()) return effective.status();
    auto assigned = Assign(c.case_manager_id(), c.team_id().empty() ? state_.team_id() : c.team_id(),
                           c.reason(), c.has_capacity_override() ? &c.capacity_override() : nullptr,
                           "");
    if (!assigned.ok()) return assigned.status();
    auto events = One([&](v1::CaseEvent& e) { *e.mutable_case_assigned() = std::move(*assigned); });
    events[0].occurred_at = *effective;  // a reassignment entered late
    return events;
  }

  absl::StatusOr<std::vector<Event>> operator()(const BulkReassignOne& c) {
    if (auto s = OpenCase(); !s.ok()) return s;
    auto assigned = Assign(c.case_manager_id, state_.team_id(), c.reason, nullptr,
                           c.bulk_reassignment_id);
    if (!assigned.ok()) return assigned.status();
    return One([&](v1::CaseEvent& e) { *e.mutable_case_assigned() = std::move(*assigned); });
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::AcceptAssignmentRequest&) {
    if (auto s = PendingAssignmentOfActor(); !s.ok()) return s;
    v1::AssignmentAccepted event;
    event.set_case_manager_id(context_.actor.user_id());
    return One([&](v1::CaseEvent& e) { *e.mutable_assignment_accepted() = std::move(event); });
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::DeclineAssignmentRequest& c) {
    if (auto s = PendingAssignmentOfActor(); !s.ok()) return s;
    if (auto s = Required(c.reason(), "reason"); !s.ok()) return s;
    v1::AssignmentDeclined event;
    event.set_case_manager_id(context_.actor.user_id());
    event.set_reason(c.reason());
    return One([&](v1::CaseEvent& e) { *e.mutable_assignment_declined() = std::move(event); });
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::TransferCaseRequest& c) {
    if (auto s = Required(c.reason(), "reason"); !s.ok()) return s;
    if (auto s = OpenCase(); !s.ok()) return s;
    if (auto s = NoPendingClosure(); !s.ok()) return s;
    auto effective = EffectiveTime(c);
    if (!effective.ok()) return effective.status();
    const std::string to_program = c.to_program().empty() ? state_.program() : c.to_program();
    const std::string to_team = c.to_team_id().empty() ? state_.team_id() : c.to_team_id();
    if (to_program == state_.program() && to_team == state_.team_id()) {
      return absl::FailedPreconditionError("transfer needs a different program or team");
    }
    v1::CaseTransferred transferred;
    transferred.set_from_program(state_.program());
    transferred.set_to_program(to_program);
    transferred.set_from_team_id(state_.team_id());
    transferred.set_to_team_id(to_team);
    transferred.set_reason(c.reason());
    if (state_.has_assignment()) {
      transferred.set_released_case_manager_id(state_.assignment().case_manager_id());
    }
    std::vector<Event> events;
    events.push_back(Make([&](v1::CaseEvent& e) { *e.mutable_case_transferred() = transferred; }));
    if (!c.case_manager_id().empty()) {
      // Capacity is checked against the receiving program's limit; the released
      // assignment no longer counts.
      auto assigned = Assign(c.case_manager_id(), to_team, c.reason(),
                             c.has_capacity_override() ? &c.capacity_override() : nullptr, "",
                             /*after_release=*/true);
      if (!assigned.ok()) return assigned.status();
      events.push_back(
          Make([&](v1::CaseEvent& e) { *e.mutable_case_assigned() = std::move(*assigned); }));
    }
    for (Event& event : events) event.occurred_at = *effective;  // a transfer entered late
    return events;
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::DelegateTasksRequest& c) {
    if (auto s = OpenCase(); !s.ok()) return s;
    if (c.has_until() && ToTime(c.until()) <= context_.now) {
      return absl::InvalidArgumentError("until must be in the future");
    }
    v1::TasksDelegated event;
    event.set_delegation_id(absl::StrCat("delegation-", state_.delegations_size() + 1));
    event.set_delegate_id(c.delegate_id());
    event.set_scope(c.scope());
    if (c.has_until()) *event.mutable_until() = c.until();
    return One([&](v1::CaseEvent& e) { *e.mutable_tasks_delegated() = std::move(event); });
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::AddNoteRequest& c) {
    if (auto s = Exists(); !s.ok()) return s;
    if (state_.status() == S::CASE_STATUS_ENTERED_IN_ERROR) {
      return absl::FailedPreconditionError("case is ENTERED_IN_ERROR");
    }
    if (c.kind() == v1::NOTE_KIND_CONTACT &&
        (c.channel() == v1::CONTACT_CHANNEL_NONE || c.channel() == v1::CONTACT_CHANNEL_UNSPECIFIED)) {
      return absl::InvalidArgumentError("a contact note needs a contact channel");
    }
    const absl::Time occurred = c.has_occurred_at() ? ToTime(c.occurred_at()) : context_.now;
    if (occurred > context_.now) {
      return absl::InvalidArgumentError("occurred_at must not be in the future");
    }
    v1::NoteAdded event;
    event.set_note_id(absl::StrCat("note-", state_.notes_size() + 1));
    event.set_kind(c.kind());
    event.set_channel(c.channel() == v1::CONTACT_CHANNEL_UNSPECIFIED ? v1::CONTACT_CHANNEL_NONE
                                                                      : c.channel());
    *event.mutable_occurred_at() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(occurred));
    event.set_text(c.text());
    event.set_duration_minutes(c.duration_minutes());
    event.set_category(c.category());
    auto events = One([&](v1::CaseEvent& e) { *e.mutable_note_added() = std::move(event); });
    events[0].occurred_at = occurred;  // a contact documented late
    return events;
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::AmendNoteRequest& c) {
    if (auto s = Required(c.reason(), "reason"); !s.ok()) return s;
    auto note = CorrectableNote(c.note_id());
    if (!note.ok()) return note.status();
    if (auto s = CheckNoteCorrection(**note, context_.actor.user_id(), context_.relationship); !s.ok()) return s;
    if ((*note)->revisions_size() > 0 &&
        (*note)->revisions((*note)->revisions_size() - 1).text() == c.text()) {
      return absl::FailedPreconditionError("amendment does not change the note");
    }
    v1::NoteAmended event;
    event.set_note_id(c.note_id());
    event.set_text(c.text());
    event.set_reason(c.reason());
    return One([&](v1::CaseEvent& e) { *e.mutable_note_amended() = std::move(event); });
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::MarkNoteEnteredInErrorRequest& c) {
    if (auto s = Required(c.reason(), "reason"); !s.ok()) return s;
    auto note = CorrectableNote(c.note_id());
    if (!note.ok()) return note.status();
    if (auto s = CheckNoteCorrection(**note, context_.actor.user_id(), context_.relationship); !s.ok()) return s;
    v1::NoteEnteredInError event;
    event.set_note_id(c.note_id());
    event.set_reason(c.reason());
    return One([&](v1::CaseEvent& e) { *e.mutable_note_entered_in_error() = std::move(event); });
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::PutCaseOnHoldRequest& c) {
    if (auto s = Required(c.reason(), "reason"); !s.ok()) return s;
    if (auto s = Exists(); !s.ok()) return s;
    if (auto s = NoPendingClosure(); !s.ok()) return s;
    if (auto s = CheckStatusTransition(state_.status(), S::CASE_STATUS_ONHOLD, StatusAction::kHold);
        !s.ok()) {
      return s;
    }
    if (ToTime(c.review_at()) <= context_.now) {
      return absl::InvalidArgumentError("review_at must be in the future");
    }
    v1::CasePutOnHold event;
    event.set_reason(c.reason());
    *event.mutable_review_at() = c.review_at();
    event.set_from(state_.status());
    return One([&](v1::CaseEvent& e) { *e.mutable_case_put_on_hold() = std::move(event); });
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::EscalateCaseRequest& c) {
    if (auto s = OpenCase(); !s.ok()) return s;
    v1::CaseEscalated event;
    event.set_escalation_id(absl::StrCat("escalation-", state_.escalations_size() + 1));
    event.set_kind(c.kind());
    event.set_severity(c.severity());
    event.set_description(c.description());
    event.set_program(state_.program());
    event.set_team_id(state_.team_id());
    if (state_.has_assignment()) event.set_case_manager_id(state_.assignment().case_manager_id());
    return One([&](v1::CaseEvent& e) { *e.mutable_case_escalated() = std::move(event); });
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::ResolveEscalationRequest& c) {
    if (auto s = Exists(); !s.ok()) return s;
    const v1::Escalation* found = nullptr;
    for (const auto& escalation : state_.escalations()) {
      if (escalation.escalation_id() == c.escalation_id()) found = &escalation;
    }
    if (found == nullptr) {
      return absl::NotFoundError(absl::StrCat("no escalation ", c.escalation_id(), " on this case"));
    }
    if (found->resolved()) {
      return absl::FailedPreconditionError(
          absl::StrCat("escalation ", c.escalation_id(), " is already resolved"));
    }
    v1::EscalationResolved event;
    event.set_escalation_id(c.escalation_id());
    event.set_resolution(c.resolution());
    return One([&](v1::CaseEvent& e) { *e.mutable_escalation_resolved() = std::move(event); });
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::RequestClosureRequest& c) {
    if (auto s = Exists(); !s.ok()) return s;
    if (auto s = NoPendingClosure(); !s.ok()) return s;
    if (auto s = CheckStatusTransition(state_.status(), S::CASE_STATUS_FINISHED, StatusAction::kClose);
        !s.ok()) {
      return s;
    }
    v1::ClosureRequested requested;
    requested.set_reason(c.reason());
    requested.set_outcome_summary(c.outcome_summary());
    requested.set_satisfaction(c.satisfaction());
    requested.set_requires_approval(context_.program.closure_requires_approval);
    requested.set_previous_stage(state_.stage());
    std::vector<Event> events;
    events.push_back(Make([&](v1::CaseEvent& e) { *e.mutable_closure_requested() = requested; }));
    if (!requested.requires_approval()) events.push_back(Closed(c.reason()));
    return events;
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::ApproveClosureRequest& c) {
    if (auto s = PendingClosureDecision(); !s.ok()) return s;
    // Separation of duties on verified identities: the actor's user id comes from the
    // caller's token, as did the requester's when the request was recorded.
    if (state_.closure().requested_by() == context_.actor.user_id()) {
      return absl::PermissionDeniedError("a closure must be approved by someone other than its requester");
    }
    v1::ClosureApproved approved;
    approved.set_comment(c.comment());
    std::vector<Event> events;
    events.push_back(Make([&](v1::CaseEvent& e) { *e.mutable_closure_approved() = approved; }));
    events.push_back(Closed(state_.closure().reason()));
    return events;
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::RejectClosureRequest& c) {
    if (auto s = PendingClosureDecision(); !s.ok()) return s;
    if (auto s = Required(c.reason(), "reason"); !s.ok()) return s;
    v1::ClosureRejected rejected;
    rejected.set_reason(c.reason());
    return One([&](v1::CaseEvent& e) { *e.mutable_closure_rejected() = std::move(rejected); });
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::ReopenCaseRequest& c) {
    if (auto s = Required(c.reason(), "reason"); !s.ok()) return s;
    if (auto s = Exists(); !s.ok()) return s;
    if (auto s = CheckStatusTransition(state_.status(), S::CASE_STATUS_ACTIVE, StatusAction::kReopen);
        !s.ok()) {
      return s;
    }
    v1::CaseReopened event;
    event.set_reason(c.reason());
    event.set_from(state_.status());
    event.set_to(S::CASE_STATUS_ACTIVE);
    // A reopened case is reassessed before care continues.
    event.set_stage(v1::CASE_STAGE_ASSESSMENT);
    return One([&](v1::CaseEvent& e) { *e.mutable_case_reopened() = std::move(event); });
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::CancelCaseRequest& c) {
    if (auto s = Required(c.reason(), "reason"); !s.ok()) return s;
    if (auto s = Exists(); !s.ok()) return s;
    if (auto s = CheckStatusTransition(state_.status(), S::CASE_STATUS_CANCELLED, StatusAction::kCancel);
        !s.ok()) {
      return s;
    }
    v1::CaseCancelled event;
    event.set_reason(c.reason());
    event.set_from(state_.status());
    return One([&](v1::CaseEvent& e) { *e.mutable_case_cancelled() = std::move(event); });
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::MarkCaseEnteredInErrorRequest& c) {
    if (auto s = Required(c.reason(), "reason"); !s.ok()) return s;
    if (auto s = Exists(); !s.ok()) return s;
    if (auto s = CheckStatusTransition(state_.status(), S::CASE_STATUS_ENTERED_IN_ERROR,
                                       StatusAction::kEnteredInError);
        !s.ok()) {
      return s;
    }
    v1::CaseEnteredInError event;
    event.set_reason(c.reason());
    event.set_from(state_.status());
    return One([&](v1::CaseEvent& e) { *e.mutable_case_entered_in_error() = std::move(event); });
  }

  // Break the glass: time-limited access for a caller without a relationship to the case.
  absl::StatusOr<std::vector<Event>> operator()(const v1::RequestEmergencyAccessRequest& c) {
    if (auto s = Exists(); !s.ok()) return s;
    if (context_.related_to_case) {
      return absl::FailedPreconditionError(
          "the caller already has access to this case through a relationship: there is no glass to break");
    }
    if (const v1::EmergencyAccessGrant* grant = ActiveGrantOf(state_, context_.actor.user_id(), context_.now)) {
      return absl::FailedPreconditionError(
          absl::StrCat("the caller already holds an active emergency grant on this case (", grant->grant_id(), ")"));
    }
    if (auto problem = CheckEmergencyDuration(c.duration_minutes(), context_.emergency_access_max_minutes)) {
      return absl::InvalidArgumentError(absl::StrCat("duration_minutes ", *problem));
    }
    v1::EmergencyAccessGranted granted;
    v1::EmergencyAccessGrant* grant = granted.mutable_grant();
    grant->set_grant_id(absl::StrCat("emergency-", state_.emergency_access_size() + 1));
    grant->set_user_id(context_.actor.user_id());
    grant->set_role(context_.actor.role());
    grant->set_reason(c.reason());
    *grant->mutable_granted_at() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(context_.now));
    *grant->mutable_expires_at() =
        TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(context_.now + absl::Minutes(c.duration_minutes())));
    // Whose supervisors are told: the case's team at the time of the grant.
    grant->set_team_id(state_.team_id());
    return One([&](v1::CaseEvent& e) { *e.mutable_emergency_access_granted() = std::move(granted); });
  }

  absl::StatusOr<std::vector<Event>> operator()(const v1::ReviewEmergencyAccessRequest& c) {
    if (auto s = Exists(); !s.ok()) return s;
    const v1::EmergencyAccessGrant* found = nullptr;
    for (const auto& grant : state_.emergency_access()) {
      if (grant.grant_id() == c.grant_id()) found = &grant;
    }
    if (found == nullptr) {
      return absl::NotFoundError(absl::StrCat("no emergency grant ", c.grant_id(), " on this case"));
    }
    if (found->has_review()) {
      return absl::FailedPreconditionError(absl::StrCat("emergency grant ", c.grant_id(), " is already reviewed"));
    }
    v1::EmergencyAccessReviewed reviewed;
    reviewed.set_grant_id(c.grant_id());
    v1::EmergencyAccessReview* review = reviewed.mutable_review();
    review->set_justified(c.justified());
    review->set_note(c.note());
    review->set_reviewed_by(context_.actor.user_id());
    *review->mutable_reviewed_at() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(context_.now));
    return One([&](v1::CaseEvent& e) { *e.mutable_emergency_access_reviewed() = std::move(reviewed); });
  }

 private:
  // When a relationship change took effect: its occurred_at when it was entered late (see
  // CheckEffectiveTime), else now.
  template <typename C>
  absl::StatusOr<absl::Time> EffectiveTime(const C& c) const {
    if (!c.has_occurred_at()) return context_.now;
    const absl::Time occurred = ToTime(c.occurred_at());
    if (auto problem = CheckEffectiveTime(occurred, LatestEventTime(state_), context_.now)) {
      return absl::InvalidArgumentError(absl::StrCat("occurred_at ", *problem));
    }
    return occurred;
  }

  template <typename Fill>
  Event Make(Fill fill) const {
    Event event;
    fill(event.body);
    event.occurred_at = context_.now;
    event.actor = context_.actor;
    return event;
  }
  template <typename Fill>
  std::vector<Event> One(Fill fill) const {
    std::vector<Event> events;
    events.push_back(Make(fill));
    return events;
  }

  Event Closed(v1::ClosureReason reason) const {
    v1::CaseClosed closed;
    closed.set_reason(reason);
    closed.set_from(state_.status());
    // Outcome facts for cost-per-outcome views. The cost was checked when each delivery
    // was recorded, so CostOf cannot fail here; stay total anyway.
    if (auto cost = CostOf(state_); cost.ok()) *closed.mutable_delivered_cost() = cost->delivered;
    const GoalTally goals = TallyGoals(state_);
    closed.set_goals_total(goals.total);
    closed.set_goals_achieved(goals.achieved);
    return Make([&](v1::CaseEvent& e) { *e.mutable_case_closed() = closed; });
  }

  absl::Status Exists() const {
    if (state_.version() == 0 || state_.tenant_id() != context_.tenant_id) {
      return absl::NotFoundError("case not found");
    }
    return absl::OkStatus();
  }

  absl::Status OpenCase() const {
    if (auto s = Exists(); !s.ok()) return s;
    if (!IsOpen(state_.status())) {
      return absl::FailedPreconditionError(
          absl::StrCat("case is ", v1::CaseStatus_Name(state_.status()), " (not open)"));
    }
    return absl::OkStatus();
  }

  absl::Status NoPendingClosure() const {
    if (state_.closure().state() == v1::CLOSURE_STATE_PENDING_APPROVAL) {
      return absl::FailedPreconditionError(
          "a closure request is pending approval; approve or reject it first");
    }
    return absl::OkStatus();
  }

  absl::Status PendingClosureDecision() const {
    if (auto s = Exists(); !s.ok()) return s;
    if (state_.closure().state() != v1::CLOSURE_STATE_PENDING_APPROVAL) {
      return absl::FailedPreconditionError("no closure request is pending approval");
    }
    return absl::OkStatus();
  }

  absl::Status PendingAssignmentOfActor() const {
    if (auto s = OpenCase(); !s.ok()) return s;
    if (!state_.has_assignment() ||
        state_.assignment().state() != v1::ASSIGNMENT_STATE_PENDING) {
      return absl::FailedPreconditionError("no assignment is pending on this case");
    }
    if (state_.assignment().case_manager_id() != context_.actor.user_id()) {
      return absl::PermissionDeniedError("only the assigned case manager may answer the assignment");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<const v1::Note*> CorrectableNote(const std::string& note_id) const {
    if (auto s = Exists(); !s.ok()) return s;
    for (const auto& note : state_.notes()) {
      if (note.note_id() != note_id) continue;
      if (note.entered_in_error()) {
        return absl::FailedPreconditionError(
            absl::StrCat("note ", note_id, " is entered-in-error"));
      }
      return &note;
    }
    return absl::NotFoundError(absl::StrCat("no note ", note_id, " on this case"));
  }

  absl::StatusOr<v1::CaseAssigned> Assign(const std::string& case_manager_id,
                                          const std::string& team_id, const std::string& reason,
                                          const v1::CapacityOverride* capacity_override,
                                          const std::string& bulk_id, bool after_release = false) {
    const bool has_current = state_.has_assignment() && !after_release;
    if (has_current && state_.assignment().case_manager_id() == case_manager_id) {
      return absl::FailedPreconditionError("case is already assigned to this case manager");
    }
    bool overridden = false;
    const int32_t weight = state_.acuity();
    if (auto s = CheckCapacity(context_.assignee_load, weight, context_.program.caseload_limit,
                               capacity_override, context_.actor.role(), &overridden);
        !s.ok()) {
      return s;
    }
    v1::CaseAssigned assigned;
    assigned.set_case_manager_id(case_manager_id);
    assigned.set_team_id(team_id);
    if (has_current) {
      assigned.set_previous_case_manager_id(state_.assignment().case_manager_id());
    }
    assigned.set_load_before(context_.assignee_load);
    assigned.set_weight(weight);
    assigned.set_caseload_limit(context_.program.caseload_limit);
    if (overridden) *assigned.mutable_capacity_override() = *capacity_override;
    assigned.set_reason(reason);
    assigned.set_bulk_reassignment_id(bulk_id);
    return assigned;
  }

  const CaseState& state_;
  const DecisionContext& context_;
};

}  // namespace

absl::StatusOr<std::vector<Event>> Decide(const CaseState& state, const Command& command,
                                          const DecisionContext& context) {
  Decider decider(state, context);
  return std::visit(decider, command);
}

}  // namespace clinical::case_service

// Evolve: how each Case event changes the state. Total and deterministic.
#include "case_domain.h"
#include "google/protobuf/util/time_util.h"

namespace clinical::case_service {
namespace {

using google::protobuf::Timestamp;
using google::protobuf::util::TimeUtil;

Timestamp ToTimestamp(absl::Time t) { return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t)); }

void SetStatus(CaseState& state, v1::CaseStatus to, const std::string& reason,
               const Event& event) {
  v1::StatusChange* change = state.add_status_history();
  change->set_from(state.status());
  change->set_to(to);
  *change->mutable_at() = ToTimestamp(event.occurred_at);
  change->set_by(event.actor.user_id());
  change->set_reason(reason);
  change->set_event_type(EventTypeOf(event.body));
  state.set_status(to);
}

void SetStage(CaseState& state, v1::CaseStage to, const std::string& reason, const Event& event) {
  if (state.stage() == to) return;
  v1::StageChange* change = state.add_stage_history();
  change->set_from(state.stage());
  change->set_to(to);
  *change->mutable_at() = ToTimestamp(event.occurred_at);
  change->set_by(event.actor.user_id());
  change->set_reason(reason);
  state.set_stage(to);
}

v1::Note* FindNote(CaseState& state, const std::string& note_id) {
  for (auto& note : *state.mutable_notes()) {
    if (note.note_id() == note_id) return &note;
  }
  return nullptr;
}

void RecomputeLastContact(CaseState& state) {
  state.clear_last_contact_at();
  for (const auto& note : state.notes()) {
    if (note.kind() != v1::NOTE_KIND_CONTACT || note.entered_in_error()) continue;
    if (!state.has_last_contact_at() || note.occurred_at() > state.last_contact_at()) {
      *state.mutable_last_contact_at() = note.occurred_at();
    }
  }
}

}  // namespace

CaseState NewCase(const std::string& case_id, const std::string& tenant_id) {
  CaseState state;
  state.set_case_id(case_id);
  state.set_tenant_id(tenant_id);
  return state;
}

CaseState Evolve(CaseState state, const Event& event) {
  const v1::CaseEvent& e = event.body;
  const Timestamp at = ToTimestamp(event.occurred_at);
  const std::string& by = event.actor.user_id();
  switch (e.event_case()) {
    case v1::CaseEvent::kCaseOpened: {
      const auto& o = e.case_opened();
      *state.mutable_patient() = o.patient();
      state.set_program(o.program());
      state.set_priority(o.priority());
      state.set_acuity(o.acuity());
      *state.mutable_referral() = o.referral();
      state.set_team_id(o.team_id());
      state.set_stage(o.stage());
      SetStatus(state, o.status(), "opened", event);
      *state.mutable_opened_at() = at;
      state.set_opened_by(by);
      break;
    }
    case v1::CaseEvent::kCaseStatusChanged: {
      const auto& c = e.case_status_changed();
      if (state.status() == v1::CASE_STATUS_ONHOLD) state.clear_hold();
      SetStatus(state, c.to(), c.reason(), event);
      break;
    }
    case v1::CaseEvent::kCaseStageChanged:
      SetStage(state, e.case_stage_changed().to(), e.case_stage_changed().reason(), event);
      break;
    case v1::CaseEvent::kCaseReprioritized:
      state.set_priority(e.case_reprioritized().priority());
      state.set_acuity(e.case_reprioritized().acuity());
      if (state.has_assignment()) state.mutable_assignment()->set_weight(state.acuity());
      break;
    case v1::CaseEvent::kCaseAssigned: {
      const auto& a = e.case_assigned();
      v1::Assignment* assignment = state.mutable_assignment();
      assignment->Clear();
      assignment->set_case_manager_id(a.case_manager_id());
      assignment->set_team_id(a.team_id());
      assignment->set_state(v1::ASSIGNMENT_STATE_PENDING);
      assignment->set_weight(a.weight());
      *assignment->mutable_assigned_at() = at;
      assignment->set_assigned_by(by);
      if (a.has_capacity_override()) {
        *assignment->mutable_capacity_override() = a.capacity_override();
      }
      if (!a.team_id().empty()) state.set_team_id(a.team_id());
      break;
    }
    case v1::CaseEvent::kAssignmentAccepted:
      state.mutable_assignment()->set_state(v1::ASSIGNMENT_STATE_ACCEPTED);
      break;
    case v1::CaseEvent::kAssignmentDeclined:
      state.clear_assignment();
      break;
    case v1::CaseEvent::kCaseTransferred:
      state.set_program(e.case_transferred().to_program());
      state.set_team_id(e.case_transferred().to_team_id());
      state.clear_assignment();
      break;
    case v1::CaseEvent::kTasksDelegated: {
      const auto& d = e.tasks_delegated();
      v1::Delegation* delegation = state.add_delegations();
      delegation->set_delegation_id(d.delegation_id());
      delegation->set_delegate_id(d.delegate_id());
      delegation->set_scope(d.scope());
      *delegation->mutable_delegated_at() = at;
      delegation->set_delegated_by(by);
      if (d.has_until()) *delegation->mutable_until() = d.until();
      break;
    }
    case v1::CaseEvent::kNoteAdded: {
      const auto& n = e.note_added();
      v1::Note* note = state.add_notes();
      note->set_note_id(n.note_id());
      note->set_kind(n.kind());
      note->set_channel(n.channel());
      *note->mutable_occurred_at() = n.occurred_at();
      note->set_author_id(by);
      note->set_duration_minutes(n.duration_minutes());
      note->set_category(n.category());
      v1::NoteRevision* revision = note->add_revisions();
      revision->set_text(n.text());
      *revision->mutable_at() = at;
      revision->set_by(by);
      RecomputeLastContact(state);
      break;
    }
    case v1::CaseEvent::kNoteAmended:
      if (v1::Note* note = FindNote(state, e.note_amended().note_id())) {
        v1::NoteRevision* revision = note->add_revisions();
        revision->set_text(e.note_amended().text());
        *revision->mutable_at() = at;
        revision->set_by(by);
        revision->set_reason(e.note_amended().reason());
      }
      break;
    case v1::CaseEvent::kNoteEnteredInError:
      if (v1::Note* note = FindNote(state, e.note_entered_in_error().note_id())) {
        note->set_entered_in_error(true);
        note->set_entered_in_error_reason(e.note_entered_in_error().reason());
      }
      RecomputeLastContact(state);
      break;
    case v1::CaseEvent::kClosureRequested: {
      const auto& r = e.closure_requested();
      v1::Closure* closure = state.mutable_closure();
      closure->Clear();
      closure->set_state(r.requires_approval() ? v1::CLOSURE_STATE_PENDING_APPROVAL
                                               : v1::CLOSURE_STATE_CLOSED);
      closure->set_reason(r.reason());
      closure->set_outcome_summary(r.outcome_summary());
      closure->set_satisfaction(r.satisfaction());
      *closure->mutable_requested_at() = at;
      closure->set_requested_by(by);
      SetStage(state, v1::CASE_STAGE_TRANSITION_CLOSURE, "closure requested", event);
      break;
    }
    case v1::CaseEvent::kClosureApproved: {
      v1::Closure* closure = state.mutable_closure();
      closure->set_decided_by(by);
      *closure->mutable_decided_at() = at;
      closure->set_decision_comment(e.closure_approved().comment());
      break;
    }
    case v1::CaseEvent::kClosureRejected: {
      v1::Closure* closure = state.mutable_closure();
      closure->set_state(v1::CLOSURE_STATE_REJECTED);
      closure->set_decided_by(by);
      *closure->mutable_decided_at() = at;
      closure->set_decision_comment(e.closure_rejected().reason());
      // Back to where the case was before the request.
      v1::CaseStage previous = v1::CASE_STAGE_MONITORING;
      for (int i = state.stage_history_size() - 1; i >= 0; --i) {
        if (state.stage_history(i).to() == v1::CASE_STAGE_TRANSITION_CLOSURE) {
          previous = state.stage_history(i).from();
          break;
        }
      }
      SetStage(state, previous, "closure rejected", event);
      break;
    }
    case v1::CaseEvent::kCaseClosed:
      state.mutable_closure()->set_state(v1::CLOSURE_STATE_CLOSED);
      *state.mutable_closure()->mutable_closed_at() = at;
      state.clear_hold();
      SetStatus(state, v1::CASE_STATUS_FINISHED, v1::ClosureReason_Name(e.case_closed().reason()),
                event);
      break;
    case v1::CaseEvent::kCaseReopened:
      state.mutable_closure()->set_state(v1::CLOSURE_STATE_REOPENED);
      SetStatus(state, e.case_reopened().to(), e.case_reopened().reason(), event);
      SetStage(state, e.case_reopened().stage(), e.case_reopened().reason(), event);
      break;
    case v1::CaseEvent::kCaseCancelled:
      SetStatus(state, v1::CASE_STATUS_CANCELLED, e.case_cancelled().reason(), event);
      break;
    case v1::CaseEvent::kCaseEnteredInError:
      SetStatus(state, v1::CASE_STATUS_ENTERED_IN_ERROR, e.case_entered_in_error().reason(), event);
      break;
    case v1::CaseEvent::kCasePutOnHold: {
      const auto& h = e.case_put_on_hold();
      v1::Hold* hold = state.mutable_hold();
      hold->set_reason(h.reason());
      *hold->mutable_review_at() = h.review_at();
      *hold->mutable_since() = at;
      hold->set_by(by);
      state.set_status_before_hold(h.from());
      SetStatus(state, v1::CASE_STATUS_ONHOLD, h.reason(), event);
      break;
    }
    case v1::CaseEvent::kCaseEscalated: {
      const auto& x = e.case_escalated();
      v1::Escalation* escalation = state.add_escalations();
      escalation->set_escalation_id(x.escalation_id());
      escalation->set_kind(x.kind());
      escalation->set_severity(x.severity());
      escalation->set_description(x.description());
      *escalation->mutable_raised_at() = at;
      escalation->set_raised_by(by);
      break;
    }
    case v1::CaseEvent::kEscalationResolved:
      for (auto& escalation : *state.mutable_escalations()) {
        if (escalation.escalation_id() != e.escalation_resolved().escalation_id()) continue;
        escalation.set_resolved(true);
        escalation.set_resolution(e.escalation_resolved().resolution());
        *escalation.mutable_resolved_at() = at;
        escalation.set_resolved_by(by);
      }
      break;
    case v1::CaseEvent::kAssessmentRecorded:
    case v1::CaseEvent::kHighRiskIdentified:
    case v1::CaseEvent::kRiskLevelReviewed:
    case v1::CaseEvent::kCarePlanCreated:
    case v1::CaseEvent::kCarePlanStatusChanged:
    case v1::CaseEvent::kGoalAdded:
    case v1::CaseEvent::kGoalStatusChanged:
    case v1::CaseEvent::kGoalProgressRecorded:
    case v1::CaseEvent::kCareTaskAdded:
    case v1::CaseEvent::kCareTaskStatusChanged:
    case v1::CaseEvent::kCareTeamMemberAdded:
    case v1::CaseEvent::kCareTeamMemberRemoved:
    case v1::CaseEvent::kConsentRecorded:
    case v1::CaseEvent::kConsentRevoked:
    case v1::CaseEvent::kInformationDisclosed:
    case v1::CaseEvent::kServiceReferred:
    case v1::CaseEvent::kServiceReferralAuthorized:
    case v1::CaseEvent::kServiceDelivered:
    case v1::CaseEvent::kServiceReferralStatusChanged:
      EvolveCare(state, event);
      break;
    case v1::CaseEvent::kEmergencyAccessGranted:
      *state.add_emergency_access() = e.emergency_access_granted().grant();
      break;
    case v1::CaseEvent::kEmergencyAccessReviewed:
      for (auto& grant : *state.mutable_emergency_access()) {
        if (grant.grant_id() == e.emergency_access_reviewed().grant_id()) {
          *grant.mutable_review() = e.emergency_access_reviewed().review();
        }
      }
      break;
    case v1::CaseEvent::EVENT_NOT_SET:
      break;
  }
  state.set_version(state.version() + 1);
  // Monotonic: a fact recorded late (occurred_at in the past) does not move it back.
  if (!state.has_updated_at() || at > state.updated_at()) *state.mutable_updated_at() = at;
  return state;
}

}  // namespace clinical::case_service

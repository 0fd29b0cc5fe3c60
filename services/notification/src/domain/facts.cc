// From case and scheduling events to facts, routing and timers.
#include "absl/strings/str_cat.h"
#include "clinical/case/v1/events.pb.h"
#include "clinical/scheduling/v1/events.pb.h"
#include "notification_domain.h"

namespace clinical::notification {
namespace {

namespace cv1 = clinical::case_::v1;
namespace sv1 = clinical::scheduling::v1;

absl::Time ToTime(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

Fact Base(const common::v1::EventEnvelope& envelope, Trigger trigger) {
  Fact fact;
  fact.trigger = trigger;
  fact.source_id = envelope.event_id();
  fact.tenant_id = envelope.tenant_id();
  fact.occurred_at = ToTime(envelope.occurred_at());
  return fact;
}

template <typename T>
bool Unpack(const common::v1::EventEnvelope& envelope, T& message) {
  return envelope.payload().Is<T>() && envelope.payload().UnpackTo(&message);
}

std::vector<std::string> UserParticipants(const sv1::AppointmentBooked& booked) {
  std::vector<std::string> ids;
  for (const auto& p : booked.participants()) {
    if (p.participant_id().empty()) continue;
    if (p.kind() == sv1::PARTICIPANT_KIND_CASE_MANAGER ||
        p.kind() == sv1::PARTICIPANT_KIND_PROVIDER) {
      ids.push_back(p.participant_id());
    }
  }
  return ids;
}

bool TaskFinished(cv1::TaskStatus status) {
  switch (status) {
    case cv1::TASK_STATUS_COMPLETED:
    case cv1::TASK_STATUS_CANCELLED:
    case cv1::TASK_STATUS_REJECTED:
    case cv1::TASK_STATUS_FAILED:
    case cv1::TASK_STATUS_ENTERED_IN_ERROR:
      return true;
    default:
      return false;
  }
}

std::string TaskTimerId(const std::string& case_id, const std::string& task_id,
                        Trigger trigger) {
  return DerivedId({"timer", TriggerName(trigger), case_id, task_id});
}

std::string NoContactTimerId(const std::string& case_id) {
  return DerivedId({"timer", TriggerName(Trigger::kNoContact), case_id});
}

}  // namespace

absl::StatusOr<std::vector<Fact>> FactsFromEnvelope(const common::v1::EventEnvelope& envelope) {
  std::vector<Fact> facts;
  const auto& any = envelope.payload();
  auto bad = [] { return absl::InvalidArgumentError("payload does not decode"); };
  if (any.Is<cv1::CaseAssigned>()) {
    cv1::CaseAssigned e;
    if (!Unpack(envelope, e)) return bad();
    Fact f = Base(envelope, Trigger::kCaseAssigned);
    f.case_id = envelope.aggregate_id();
    f.case_manager_id = e.case_manager_id();
    f.previous_case_manager_id = e.previous_case_manager_id();
    f.team_id = e.team_id();
    facts.push_back(std::move(f));
  } else if (any.Is<cv1::AssignmentDeclined>()) {
    cv1::AssignmentDeclined e;
    if (!Unpack(envelope, e)) return bad();
    Fact f = Base(envelope, Trigger::kAssignmentDeclined);
    f.case_id = envelope.aggregate_id();
    f.declining_manager_id = e.case_manager_id();
    facts.push_back(std::move(f));
  } else if (any.Is<cv1::HighRiskIdentified>()) {
    cv1::HighRiskIdentified e;
    if (!Unpack(envelope, e)) return bad();
    Fact f = Base(envelope, Trigger::kHighRisk);
    f.case_id = envelope.aggregate_id();
    f.subject_id = e.assessment_id();
    f.program = e.program();
    f.team_id = e.team_id();
    f.case_manager_id = e.case_manager_id();
    f.urgent = true;
    facts.push_back(std::move(f));
  } else if (any.Is<cv1::EmergencyAccessGranted>()) {
    cv1::EmergencyAccessGranted e;
    if (!Unpack(envelope, e)) return bad();
    const cv1::EmergencyAccessGrant& grant = e.grant();
    Fact f = Base(envelope, Trigger::kEmergencyAccessGranted);
    f.case_id = envelope.aggregate_id();
    f.subject_id = grant.grant_id();
    f.team_id = grant.team_id();
    f.urgent = true;
    // Who and until when, by id and time: never the reason (free text).
    f.detail = absl::StrCat(
        "grant ", grant.grant_id(), " to ", grant.user_id(), " (", common::v1::Role_Name(grant.role()),
        ") until ",
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(grant.expires_at().seconds()),
                         absl::UTCTimeZone()));
    facts.push_back(std::move(f));
  } else if (any.Is<cv1::CaseEscalated>()) {
    cv1::CaseEscalated e;
    if (!Unpack(envelope, e)) return bad();
    Fact f = Base(envelope, Trigger::kEscalation);
    f.case_id = envelope.aggregate_id();
    f.subject_id = e.escalation_id();
    f.program = e.program();
    f.team_id = e.team_id();
    f.case_manager_id = e.case_manager_id();
    f.urgent = e.severity() == cv1::ESCALATION_SEVERITY_URGENT;
    facts.push_back(std::move(f));
  } else if (any.Is<cv1::ClosureRequested>()) {
    cv1::ClosureRequested e;
    if (!Unpack(envelope, e)) return bad();
    if (e.requires_approval()) {
      Fact f = Base(envelope, Trigger::kClosureAwaitingApproval);
      f.case_id = envelope.aggregate_id();
      facts.push_back(std::move(f));
    }
  } else if (any.Is<sv1::AppointmentBooked>()) {
    sv1::AppointmentBooked e;
    if (!Unpack(envelope, e)) return bad();
    Fact f = Base(envelope, Trigger::kAppointmentBooked);
    f.case_id = e.case_id();
    f.subject_id = envelope.aggregate_id();
    f.participant_ids = UserParticipants(e);
    facts.push_back(std::move(f));
  } else if (any.Is<sv1::AppointmentRescheduled>()) {
    sv1::AppointmentRescheduled e;
    if (!Unpack(envelope, e)) return bad();
    Fact f = Base(envelope, Trigger::kAppointmentRescheduled);
    f.subject_id = envelope.aggregate_id();
    facts.push_back(std::move(f));
  } else if (any.Is<sv1::AppointmentCancelled>()) {
    sv1::AppointmentCancelled e;
    if (!Unpack(envelope, e)) return bad();
    Fact f = Base(envelope, Trigger::kAppointmentCancelled);
    f.subject_id = envelope.aggregate_id();
    facts.push_back(std::move(f));
  } else if (any.Is<sv1::ReminderDue>()) {
    sv1::ReminderDue e;
    if (!Unpack(envelope, e)) return bad();
    Fact f = Base(envelope, Trigger::kReminderDue);
    f.subject_id = envelope.aggregate_id();
    facts.push_back(std::move(f));
  } else if (any.Is<sv1::AppointmentStatusChanged>()) {
    sv1::AppointmentStatusChanged e;
    if (!Unpack(envelope, e)) return bad();
    if (e.to() == sv1::APPOINTMENT_STATUS_NOSHOW) {
      Fact f = Base(envelope, Trigger::kNoShow);
      f.subject_id = envelope.aggregate_id();
      facts.push_back(std::move(f));
    }
  }
  return facts;
}

void FoldRouting(const common::v1::EventEnvelope& envelope, CaseRouting& routing) {
  const auto& any = envelope.payload();
  if (any.Is<cv1::CaseOpened>()) {
    cv1::CaseOpened e;
    if (!Unpack(envelope, e)) return;
    routing.program = e.program();
    routing.team_id = e.team_id();
    routing.open = true;
  } else if (any.Is<cv1::CaseAssigned>()) {
    cv1::CaseAssigned e;
    if (!Unpack(envelope, e)) return;
    routing.case_manager_id = e.case_manager_id();
    if (!e.team_id().empty()) routing.team_id = e.team_id();
  } else if (any.Is<cv1::AssignmentDeclined>()) {
    routing.case_manager_id.clear();
  } else if (any.Is<cv1::CaseTransferred>()) {
    cv1::CaseTransferred e;
    if (!Unpack(envelope, e)) return;
    routing.program = e.to_program();
    routing.team_id = e.to_team_id();
    if (!e.released_case_manager_id().empty()) routing.case_manager_id.clear();
  } else if (any.Is<cv1::CaseClosed>() || any.Is<cv1::CaseCancelled>() ||
             any.Is<cv1::CaseEnteredInError>()) {
    routing.open = false;
  } else if (any.Is<cv1::CaseReopened>()) {
    routing.open = true;
  } else if (any.Is<cv1::CareTaskAdded>()) {
    cv1::CareTaskAdded e;
    if (Unpack(envelope, e) && !e.owner_id().empty())
      routing.task_owner_by_task[e.task_id()] = e.owner_id();
  } else if (any.Is<cv1::CareTaskStatusChanged>()) {
    cv1::CareTaskStatusChanged e;
    if (Unpack(envelope, e) && !e.owner_id().empty())
      routing.task_owner_by_task[e.task_id()] = e.owner_id();
  }
}

void Enrich(Fact& fact, const CaseRouting& routing) {
  if (fact.program.empty()) fact.program = routing.program;
  if (fact.team_id.empty()) fact.team_id = routing.team_id;
  if (fact.case_manager_id.empty()) fact.case_manager_id = routing.case_manager_id;
  if (fact.trigger == Trigger::kTaskOverdue || fact.trigger == Trigger::kTaskOverdueEscalation) {
    auto owner = routing.task_owner_by_task.find(fact.subject_id);
    if (owner != routing.task_owner_by_task.end()) fact.task_owner_id = owner->second;
  }
}

void FoldAppointment(const common::v1::EventEnvelope& envelope, AppointmentRouting& routing) {
  sv1::AppointmentBooked e;
  if (Unpack(envelope, e)) {
    routing.case_id = e.case_id();
    routing.participant_ids = UserParticipants(e);
  }
}

void Enrich(Fact& fact, const AppointmentRouting& routing) {
  if (fact.case_id.empty()) fact.case_id = routing.case_id;
  if (fact.participant_ids.empty()) fact.participant_ids = routing.participant_ids;
}

TimerPlan PlanTimers(const common::v1::EventEnvelope& envelope, const RuleBook& book) {
  TimerPlan plan;
  const auto& any = envelope.payload();
  const std::string& case_id = envelope.aggregate_id();
  const TenantRules& tenant = book.For(envelope.tenant_id());
  auto no_contact_from = [&](absl::Time from) {
    Timer timer;
    timer.timer_id = NoContactTimerId(case_id);
    timer.trigger = Trigger::kNoContact;
    timer.fire_at = from + tenant.no_contact_after;
    // Each contact starts a new period: its notification identity is the period's.
    timer.fact.trigger = Trigger::kNoContact;
    timer.fact.source_id = DerivedId({timer.timer_id, envelope.event_id()});
    timer.fact.tenant_id = envelope.tenant_id();
    timer.fact.case_id = case_id;
    timer.fact.occurred_at = timer.fire_at;
    plan.set.push_back(std::move(timer));
  };
  if (any.Is<cv1::CareTaskAdded>()) {
    cv1::CareTaskAdded e;
    if (!Unpack(envelope, e) || !e.has_due_at() || e.owner_id().empty()) return plan;
    const absl::Time due = ToTime(e.due_at());
    for (Trigger trigger : {Trigger::kTaskOverdue, Trigger::kTaskOverdueEscalation}) {
      Timer timer;
      timer.timer_id = TaskTimerId(case_id, e.task_id(), trigger);
      timer.trigger = trigger;
      timer.fire_at = trigger == Trigger::kTaskOverdue ? due : due + tenant.task_escalation_after;
      timer.fact.trigger = trigger;
      timer.fact.source_id = timer.timer_id;
      timer.fact.tenant_id = envelope.tenant_id();
      timer.fact.case_id = case_id;
      timer.fact.subject_id = e.task_id();
      timer.fact.task_owner_id = e.owner_id();
      timer.fact.due_at = due;
      timer.fact.occurred_at = timer.fire_at;
      plan.set.push_back(std::move(timer));
    }
  } else if (any.Is<cv1::CareTaskStatusChanged>()) {
    cv1::CareTaskStatusChanged e;
    if (!Unpack(envelope, e) || !TaskFinished(e.to())) return plan;
    plan.cancel.push_back(TaskTimerId(case_id, e.task_id(), Trigger::kTaskOverdue));
    plan.cancel.push_back(TaskTimerId(case_id, e.task_id(), Trigger::kTaskOverdueEscalation));
  } else if (any.Is<cv1::CaseOpened>()) {
    no_contact_from(ToTime(envelope.occurred_at()));
  } else if (any.Is<cv1::NoteAdded>()) {
    cv1::NoteAdded e;
    if (!Unpack(envelope, e) || e.kind() != cv1::NOTE_KIND_CONTACT) return plan;
    no_contact_from(e.has_occurred_at() ? ToTime(e.occurred_at())
                                        : ToTime(envelope.occurred_at()));
  } else if (any.Is<cv1::CaseReopened>()) {
    no_contact_from(ToTime(envelope.occurred_at()));
  } else if (any.Is<cv1::CaseClosed>() || any.Is<cv1::CaseCancelled>() ||
             any.Is<cv1::CaseEnteredInError>()) {
    plan.cancel.push_back(NoContactTimerId(case_id));
  }
  return plan;
}

}  // namespace clinical::notification

#include "brute_force.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "case_domain.h"
#include "scheduling_domain.h"
#include "view_model.h"

namespace clinical::views {
namespace {

namespace v1 = ::clinical::case_::v1;

struct CaseTrack {
  case_service::CaseState state;
  bool first_contact_done = false;
  int assignments = 0;
  int closures = 0;
  // The last closure not yet followed by a reopen: when, and to whom it counted.
  int64_t closed_at = 0;
  std::vector<GroupKey> closed_groups;
  std::vector<std::string> closed_labels;
};

struct Samples {
  std::vector<int64_t> close;
  std::vector<int64_t> first_contact;
};

std::vector<GroupKey> GroupsOf(const std::string& tenant, const std::string& program,
                               const std::string& team, const std::string& cm) {
  std::vector<GroupKey> groups = {{tenant, kDimTenant, kTenantGroup}};
  if (!program.empty()) groups.push_back({tenant, kDimProgram, program});
  if (!team.empty()) groups.push_back({tenant, kDimTeam, team});
  if (!cm.empty()) groups.push_back({tenant, kDimCaseManager, cm});
  return groups;
}

std::string ManagerOf(const case_service::CaseState& s) {
  return s.has_assignment() ? s.assignment().case_manager_id() : "";
}

std::vector<GroupKey> GroupsOf(const case_service::CaseState& s) {
  return GroupsOf(s.tenant_id(), s.program(), s.team_id(), ManagerOf(s));
}

CaseFacts FactsOf(const case_service::CaseState& s, const CaseClock& clock) {
  CaseFacts f;
  f.case_id = s.case_id();
  f.program = s.program();
  f.team_id = s.team_id();
  f.case_manager_id = ManagerOf(s);
  f.status = s.status();
  f.stage = s.stage();
  f.priority = s.priority();
  f.acuity = s.acuity();
  for (const auto& x : s.escalations()) f.escalations += x.resolved() ? 0 : 1;
  f.accepted = s.has_assignment() && s.assignment().state() == v1::ASSIGNMENT_STATE_ACCEPTED;
  f.assigned_at = s.has_assignment() ? s.assignment().assigned_at().seconds() : 0;
  f.opened_at = s.opened_at().seconds();
  f.last_contact_at = s.has_last_contact_at() ? s.last_contact_at().seconds() : 0;
  for (const auto& task : s.tasks()) {
    const int64_t due = task.has_due_at() ? task.due_at().seconds() : 0;
    if (IsOpenTask(task.status()) && due > 0 && due < clock.now) ++f.overdue_tasks;
  }
  for (const auto& goal : s.goals()) {
    const int64_t due = GoalDueAt(goal.target_date()).value_or(0);
    if (!IsOpenGoal(goal.lifecycle_status()) || due <= 0) continue;
    if (due <= clock.now) ++f.goals_overdue;
    else if (due <= clock.now + clock.due_soon_seconds) ++f.goals_due_soon;
  }
  return f;
}

}  // namespace

ViewFigures BruteForce(const std::vector<common::v1::EventEnvelope>& events, const CaseClock& clock) {
  ViewFigures out;
  // Appointments per (tenant, appointment id), folded with the scheduling service's Evolve.
  std::map<std::pair<std::string, std::string>, scheduling::v1::Appointment> appointments;
  std::map<std::pair<std::string, std::string>, CaseTrack> cases;  // (tenant, case id)
  std::map<std::pair<GroupKey, std::string>, Samples> samples;
  auto count = [&](const std::vector<GroupKey>& groups, const std::vector<std::string>& labels,
                   auto member, int64_t by) {
    for (const GroupKey& g : groups) {
      out.counters[g];  // seen
      for (const std::string& l : labels) out.outcomes[{g, l}].*member += by;
    }
  };

  for (const auto& envelope : events) {
    if (absl::StartsWith(envelope.event_type(), "clinical.scheduling.")) {
      auto event = scheduling::FromEnvelope(envelope);
      if (!event.ok() || scheduling::IsCalendarEvent(*event)) continue;
      scheduling::EvolveAppointment(appointments[{envelope.tenant_id(), envelope.aggregate_id()}],
                                    *event, absl::FromUnixSeconds(envelope.occurred_at().seconds()));
      continue;
    }
    auto decoded = case_service::FromEnvelope(envelope);
    if (!decoded.ok()) continue;
    const v1::CaseEvent& e = decoded->body;
    switch (e.event_case()) {
      case v1::CaseEvent::kCaseOpened: case v1::CaseEvent::kCaseStatusChanged:
      case v1::CaseEvent::kCaseStageChanged: case v1::CaseEvent::kCaseReprioritized:
      case v1::CaseEvent::kCaseAssigned: case v1::CaseEvent::kAssignmentAccepted:
      case v1::CaseEvent::kAssignmentDeclined: case v1::CaseEvent::kCaseTransferred:
      case v1::CaseEvent::kNoteAdded: case v1::CaseEvent::kNoteEnteredInError:
      case v1::CaseEvent::kClosureRequested: case v1::CaseEvent::kClosureRejected:
      case v1::CaseEvent::kCaseClosed: case v1::CaseEvent::kCaseReopened:
      case v1::CaseEvent::kCaseCancelled: case v1::CaseEvent::kCaseEnteredInError:
      case v1::CaseEvent::kCasePutOnHold: case v1::CaseEvent::kCaseEscalated:
      case v1::CaseEvent::kEscalationResolved: case v1::CaseEvent::kGoalAdded:
      case v1::CaseEvent::kGoalStatusChanged: case v1::CaseEvent::kCareTaskAdded:
      case v1::CaseEvent::kCareTaskStatusChanged:
        break;
      default:
        continue;  // events the views do not show (see CaseViewModel::Translate)
    }
    const std::string& tenant = envelope.tenant_id();
    auto [it, fresh] = cases.try_emplace({tenant, envelope.aggregate_id()});
    CaseTrack& track = it->second;
    if (fresh) track.state = case_service::NewCase(envelope.aggregate_id(), tenant);
    track.state = case_service::Evolve(track.state, *decoded);
    const case_service::CaseState& s = track.state;
    const int64_t t = absl::ToUnixSeconds(decoded->occurred_at);
    const std::vector<std::string> labels = {PeriodLabel(Period::kWeek, decoded->occurred_at),
                                             PeriodLabel(Period::kMonth, decoded->occurred_at),
                                             PeriodLabel(Period::kQuarter, decoded->occurred_at)};
    switch (e.event_case()) {
      case v1::CaseEvent::kCaseOpened:
        count(GroupsOf(s), labels, &Outcome::opened, 1);
        break;
      case v1::CaseEvent::kCaseAssigned:
        ++track.assignments;
        track.first_contact_done = false;
        count(GroupsOf(s), labels, &Outcome::assigned, 1);
        break;
      case v1::CaseEvent::kAssignmentDeclined:
      case v1::CaseEvent::kCaseTransferred:
        track.first_contact_done = false;
        break;
      case v1::CaseEvent::kNoteAdded: {
        const auto& note = e.note_added();
        if (note.kind() != v1::NOTE_KIND_CONTACT) break;
        count(GroupsOf(s), labels, &Outcome::contact_minutes,
              std::max(0, note.duration_minutes()));
        const std::string cm = ManagerOf(s);
        const int64_t assigned_at = s.has_assignment() ? s.assignment().assigned_at().seconds() : 0;
        if (!cm.empty() && !track.first_contact_done && note.occurred_at().seconds() >= assigned_at) {
          track.first_contact_done = true;
          for (const GroupKey& g : GroupsOf(s)) {
            for (const std::string& l : labels) {
              samples[{g, l}].first_contact.push_back(note.occurred_at().seconds() - assigned_at);
            }
          }
        }
        break;
      }
      case v1::CaseEvent::kCaseClosed: {
        const auto groups = GroupsOf(s);
        const int reason = e.case_closed().reason();
        count(groups, labels, &Outcome::closed, 1);
        const auto& closed = e.case_closed();
        count(groups, labels, &Outcome::goals_total, std::max(0, closed.goals_total()));
        count(groups, labels, &Outcome::goals_achieved, std::max(0, closed.goals_achieved()));
        std::string currency = closed.delivered_cost().currency_code();
        if (!currency.empty() && !IsKeySafeId(currency)) currency = "invalid";
        if (!currency.empty()) {
          for (const GroupKey& g : groups) {
            for (const std::string& l : labels) {
              out.outcomes[{g, l}].delivered_cost[currency] += closed.delivered_cost().minor_units();
            }
          }
        }
        for (const GroupKey& g : groups) {
          for (const std::string& l : labels) out.outcomes[{g, l}].reasons[reason] += 1;
        }
        if (reason == v1::CLOSURE_REASON_GOALS_MET) count(groups, labels, &Outcome::goals_met, 1);
        const int sat = s.closure().satisfaction();
        if (sat >= 1 && sat <= 5) {
          count(groups, labels, &Outcome::satisfaction_sum, sat);
          count(groups, labels, &Outcome::satisfaction_count, 1);
        }
        const int64_t took = std::max<int64_t>(0, t - s.opened_at().seconds());
        for (const GroupKey& g : groups) {
          for (const std::string& l : labels) samples[{g, l}].close.push_back(took);
        }
        ++track.closures;
        track.closed_at = t;
        track.closed_groups = groups;
        track.closed_labels = labels;
        break;
      }
      case v1::CaseEvent::kCaseReopened:
        if (track.closed_at > 0) {
          const int64_t since = t - track.closed_at;
          if (since <= 30 * 86400) {
            count(track.closed_groups, track.closed_labels, &Outcome::reopened_30, 1);
          }
          if (since <= 90 * 86400) {
            count(track.closed_groups, track.closed_labels, &Outcome::reopened_90, 1);
          }
          track.closed_at = 0;
        }
        break;
      case v1::CaseEvent::kCaseCancelled:
        count(GroupsOf(s), labels, &Outcome::cancelled, 1);
        break;
      case v1::CaseEvent::kCaseEnteredInError:
        count(GroupsOf(s), labels, &Outcome::entered_in_error, 1);
        break;
      default:
        break;
    }
    // The registries: every group the case counted in while open.
    if (case_service::IsOpen(s.status())) {
      for (const GroupKey& g : GroupsOf(s)) out.counters[g];
    }
  }

  // Appointments: kept / no-show in the periods of each occurrence's start, to the tenant and
  // the case's final program, team and case manager; the next booked one per case.
  std::map<std::pair<std::string, std::string>, int64_t> next_appointment;  // (tenant, case)
  for (const auto& [key, appointment] : appointments) {
    const auto& [tenant, appointment_id] = key;
    std::vector<GroupKey> groups = {{tenant, kDimTenant, kTenantGroup}};
    auto found = cases.find({tenant, appointment.case_id()});
    if (found != cases.end()) groups = GroupsOf(found->second.state);
    for (const auto& o : appointment.occurrences()) {
      const int64_t start = o.start_time().seconds();
      if (IsBookedAppointment(o.status()) && start > clock.now) {
        int64_t& next = next_appointment[{tenant, appointment.case_id()}];
        if (next == 0 || start < next) next = start;
      }
      int64_t Outcome::*member = nullptr;
      if (IsKeptAppointment(o.status())) member = &Outcome::appointments_kept;
      if (IsNoShow(o.status())) member = &Outcome::appointments_no_show;
      if (member == nullptr) continue;
      const absl::Time at = absl::FromUnixSeconds(start);
      for (const GroupKey& g : groups) {
        for (Period p : {Period::kWeek, Period::kMonth, Period::kQuarter}) {
          out.outcomes[{g, PeriodLabel(p, at)}].*member += 1;
        }
      }
    }
  }

  for (const auto& [key, track] : cases) {
    const case_service::CaseState& s = track.state;
    if (!case_service::IsOpen(s.status())) continue;
    CaseFacts facts = FactsOf(s, clock);
    if (auto next = next_appointment.find(key); next != next_appointment.end()) {
      facts.next_appointment_at = next->second;
    }
    for (const GroupKey& g : GroupsOf(s)) {
      Counters& c = out.counters[g];
      c.open += 1;
      if (facts.case_manager_id.empty()) {
        c.unassigned += 1;
      } else {
        c.load += facts.acuity;
        if (!facts.accepted) c.unaccepted += 1;
      }
      if (IsHighRisk(facts)) c.high_risk += 1;
      c.escalations += facts.escalations;
      c.by_status[facts.status] += 1;
      c.by_stage[facts.stage] += 1;
    }
    if (!facts.case_manager_id.empty()) {
      out.caseloads[{s.tenant_id(), facts.case_manager_id}].push_back(facts);
    }
  }
  for (auto& [key, list] : out.caseloads) {
    std::sort(list.begin(), list.end(),
              [](const CaseFacts& a, const CaseFacts& b) { return a.case_id < b.case_id; });
  }
  for (auto& [key, o] : out.outcomes) {
    std::erase_if(o.delivered_cost, [](const auto& entry) { return entry.second == 0; });
  }
  for (auto& [key, s] : samples) {
    Outcome& o = out.outcomes[key];
    std::sort(s.close.begin(), s.close.end());
    std::sort(s.first_contact.begin(), s.first_contact.end());
    o.close_count = static_cast<int64_t>(s.close.size());
    if (!s.close.empty()) {
      o.close_p50 = NearestRank(s.close, 50);
      o.close_p90 = NearestRank(s.close, 90);
    }
    o.first_contact_count = static_cast<int64_t>(s.first_contact.size());
    if (!s.first_contact.empty()) o.first_contact_p50 = NearestRank(s.first_contact, 50);
  }
  return out;
}

}  // namespace clinical::views

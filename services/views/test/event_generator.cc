#include "event_generator.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "case_domain.h"
#include "scheduling_domain.h"

namespace clinical::views::testing {
namespace {

namespace v1 = ::clinical::case_::v1;
namespace sv1 = ::clinical::scheduling::v1;
using case_service::Command;

std::string Day(absl::Time t) {
  const absl::CivilDay d = absl::ToCivilDay(t, absl::UTCTimeZone());
  return absl::StrFormat("%04d-%02d-%02d", d.year(), d.month(), d.day());
}

const std::vector<std::string> kPrograms = {"elder_care", "substance_use", "behavioral_health",
                                            "hiv", "transitions_of_care"};
const std::vector<std::string> kTeams = {"team-north", "team-south", "team-east"};

}  // namespace

std::vector<common::v1::EventEnvelope> GenerateEvents(const GeneratorOptions& options) {
  std::mt19937_64 random(options.seed);
  auto pick = [&](int n) { return static_cast<int>(random() % static_cast<uint64_t>(n)); };
  std::vector<std::vector<common::v1::EventEnvelope>> per_case;

  for (int k = 0; k < options.cases; ++k) {
    const std::string tenant = options.tenants[static_cast<size_t>(pick(static_cast<int>(options.tenants.size())))];
    const std::string case_id = absl::StrCat("case-", options.seed, "-", k);
    case_service::CaseState state = case_service::NewCase(case_id, tenant);
    case_service::DecisionContext context;
    context.tenant_id = tenant;
    context.case_id = case_id;
    context.now = absl::FromUnixSeconds(options.start_unix) +
                  absl::Hours(pick(options.spread_days * 24));
    context.actor.set_user_id("sup-1");
    context.actor.set_role(common::v1::ROLE_SUPERVISOR);
    std::vector<common::v1::EventEnvelope> events;

    auto run = [&](const Command& command, const std::string& program) {
      context.program = {program, 1000, program == "elder_care" || program == "hiv"};
      auto decided = case_service::Decide(state, command, context);
      if (!decided.ok()) return;
      for (const case_service::Event& e : *decided) {
        state = case_service::Evolve(std::move(state), e);
        common::v1::EventEnvelope envelope;
        case_service::ToEnvelope(e, &envelope);
        envelope.set_event_id(absl::StrCat(case_id, "-", state.version()));
        envelope.set_aggregate_type("case");
        envelope.set_aggregate_id(case_id);
        envelope.set_aggregate_version(state.version());
        envelope.set_tenant_id(tenant);
        envelope.set_command_id(absl::StrCat("cmd-", case_id, "-", state.version()));
        events.push_back(std::move(envelope));
      }
    };

    v1::OpenCaseRequest open;
    open.mutable_patient()->set_mrn(absl::StrCat("MRN-", k));
    open.mutable_patient()->set_given_name("Test");
    open.mutable_patient()->set_family_name("Patient");
    open.mutable_patient()->set_birth_date("1950-01-01");
    const std::string program = kPrograms[static_cast<size_t>(pick(static_cast<int>(kPrograms.size())))];
    open.set_program(program);
    open.set_priority(1 + pick(5));
    open.set_acuity(1 + pick(5));
    open.mutable_referral()->set_source(v1::REFERRAL_SOURCE_HOSPITAL);
    open.mutable_referral()->set_reason("referral");
    open.set_initial_status(static_cast<v1::CaseStatus>(1 + pick(3)));
    if (pick(5) != 0) open.set_team_id(kTeams[static_cast<size_t>(pick(3))]);
    run(open, program);
    if (pick(2) == 0) {
      v1::CreateCarePlanRequest plan;
      plan.set_title("plan");
      plan.add_problems("needs");
      plan.set_status(v1::CARE_PLAN_STATUS_ACTIVE);
      run(plan, program);
    }

    for (int step = 0; step < options.commands_per_case; ++step) {
      context.now += absl::Minutes(1 + pick(60 * 24 * 12));
      const std::string current_program = state.program();
      const std::string manager = absl::StrCat("cm-", pick(options.managers));
      switch (pick(28)) {
        case 0: {
          v1::ChangeCaseStatusRequest c;
          c.set_status(static_cast<v1::CaseStatus>(1 + pick(3)));
          c.set_reason("status");
          run(c, current_program);
          break;
        }
        case 1: {
          v1::ChangeCaseStageRequest c;
          c.set_stage(static_cast<v1::CaseStage>(1 + pick(6)));
          c.set_reason("stage");
          run(c, current_program);
          break;
        }
        case 2: {
          v1::ReprioritizeCaseRequest c;
          c.set_priority(1 + pick(5));
          c.set_acuity(1 + pick(5));
          c.set_reason("reprioritize");
          run(c, current_program);
          break;
        }
        case 3:
        case 4: {
          v1::AssignCaseRequest c;
          c.set_case_manager_id(manager);
          if (pick(3) == 0) c.set_team_id(kTeams[static_cast<size_t>(pick(3))]);
          c.set_reason("assign");
          run(c, current_program);
          break;
        }
        case 5:
          run(v1::AcceptAssignmentRequest(), current_program);
          break;
        case 6: {
          v1::DeclineAssignmentRequest c;
          c.set_reason("decline");
          run(c, current_program);
          break;
        }
        case 7: {
          v1::TransferCaseRequest c;
          const std::string to = kPrograms[static_cast<size_t>(pick(static_cast<int>(kPrograms.size())))];
          c.set_to_program(to);
          c.set_to_team_id(kTeams[static_cast<size_t>(pick(3))]);
          if (pick(2) == 0) c.set_case_manager_id(manager);
          c.set_reason("transfer");
          run(c, to);
          break;
        }
        case 8:
        case 9:
        case 10: {
          v1::AddNoteRequest c;
          c.set_kind(pick(4) == 0 ? v1::NOTE_KIND_PROGRESS : v1::NOTE_KIND_CONTACT);
          c.set_channel(v1::CONTACT_CHANNEL_PHONE);
          c.mutable_occurred_at()->set_seconds(absl::ToUnixSeconds(context.now) - pick(3 * 24 * 3600));
          c.set_text("note");
          c.set_duration_minutes(pick(90));
          run(c, current_program);
          break;
        }
        case 11: {
          v1::MarkNoteEnteredInErrorRequest c;
          c.set_note_id(absl::StrCat("note-", 1 + pick(std::max(1, state.notes_size()))));
          c.set_reason("wrong case");
          run(c, current_program);
          break;
        }
        case 12: {
          v1::PutCaseOnHoldRequest c;
          c.set_reason("hospitalised");
          c.mutable_review_at()->set_seconds(absl::ToUnixSeconds(context.now) + 7 * 86400);
          run(c, current_program);
          break;
        }
        case 13: {
          v1::EscalateCaseRequest c;
          c.set_kind(v1::ESCALATION_KIND_SAFETY_CONCERN);
          c.set_severity(static_cast<v1::EscalationSeverity>(1 + pick(3)));
          c.set_description("escalation");
          run(c, current_program);
          break;
        }
        case 14: {
          v1::ResolveEscalationRequest c;
          c.set_escalation_id(absl::StrCat("escalation-", 1 + pick(std::max(1, state.escalations_size()))));
          c.set_resolution("resolved");
          run(c, current_program);
          break;
        }
        case 15:
        case 16: {
          v1::RequestClosureRequest c;
          c.set_reason(static_cast<v1::ClosureReason>(1 + pick(8)));
          c.set_outcome_summary("outcome");
          c.set_satisfaction(static_cast<v1::Satisfaction>(pick(7)));
          run(c, current_program);
          break;
        }
        case 17: {
          if (pick(4) == 0) {
            v1::RejectClosureRequest c;
            c.set_reason("not yet");
            run(c, current_program);
          } else {
            v1::ApproveClosureRequest c;
            c.set_comment("ok");
            run(c, current_program);
          }
          break;
        }
        case 18: {
          v1::ReopenCaseRequest c;
          c.set_reason("relapse");
          run(c, current_program);
          break;
        }
        case 20: {
          v1::CreateCarePlanRequest c;
          c.set_title("plan");
          c.add_problems("needs");
          c.set_status(v1::CARE_PLAN_STATUS_ACTIVE);
          run(c, current_program);
          break;
        }
        case 21: {
          v1::AddGoalRequest c;
          c.set_description("goal");
          c.set_measure("measure");
          c.set_target_value("target");
          c.set_target_date(Day(context.now + absl::Hours(24 * (pick(90) - 20))));
          c.set_lifecycle_status(pick(2) == 0 ? v1::GOAL_LIFECYCLE_STATUS_ACTIVE
                                              : v1::GOAL_LIFECYCLE_STATUS_PROPOSED);
          run(c, current_program);
          break;
        }
        case 22: {
          v1::ChangeGoalStatusRequest c;
          c.set_goal_id(absl::StrCat("goal-", 1 + pick(std::max(1, state.goals_size()))));
          static const v1::GoalLifecycleStatus kTo[] = {
              v1::GOAL_LIFECYCLE_STATUS_ACTIVE, v1::GOAL_LIFECYCLE_STATUS_ON_HOLD,
              v1::GOAL_LIFECYCLE_STATUS_COMPLETED, v1::GOAL_LIFECYCLE_STATUS_COMPLETED,
              v1::GOAL_LIFECYCLE_STATUS_CANCELLED, v1::GOAL_LIFECYCLE_STATUS_ENTERED_IN_ERROR};
          c.set_status(kTo[pick(6)]);
          if (c.status() == v1::GOAL_LIFECYCLE_STATUS_COMPLETED) {
            c.set_achievement_status(pick(3) == 0 ? v1::GOAL_ACHIEVEMENT_STATUS_NOT_ACHIEVED
                                                  : v1::GOAL_ACHIEVEMENT_STATUS_ACHIEVED);
          }
          c.set_reason("review");
          run(c, current_program);
          break;
        }
        case 23: {
          v1::AddCareTaskRequest c;
          c.set_description("task");
          if (pick(5) != 0) {
            c.mutable_due_at()->set_seconds(absl::ToUnixSeconds(context.now) + 3600 + pick(20 * 86400));
          }
          c.set_status(pick(2) == 0 ? v1::TASK_STATUS_REQUESTED : v1::TASK_STATUS_READY);
          run(c, current_program);
          break;
        }
        case 24: {
          v1::ChangeCareTaskStatusRequest c;
          c.set_task_id(absl::StrCat("task-", 1 + pick(std::max(1, state.tasks_size()))));
          static const v1::TaskStatus kTo[] = {
              v1::TASK_STATUS_ACCEPTED, v1::TASK_STATUS_READY, v1::TASK_STATUS_IN_PROGRESS,
              v1::TASK_STATUS_COMPLETED, v1::TASK_STATUS_CANCELLED, v1::TASK_STATUS_ON_HOLD,
              v1::TASK_STATUS_FAILED};
          c.set_status(kTo[pick(7)]);
          c.set_reason("update");
          run(c, current_program);
          break;
        }
        case 25: {
          // A provider, a referral under a consent override, its authorisation.
          v1::AddCareTeamMemberRequest member;
          member.set_role(v1::CARE_TEAM_ROLE_PROVIDER);
          member.set_name("provider");
          run(member, current_program);
          v1::ReferToServiceRequest refer;
          refer.set_member_id(absl::StrCat("member-", state.care_team_size()));
          refer.set_service_type(v1::SERVICE_TYPE_HOME_HEALTH);
          refer.set_reason("support");
          refer.set_requested_units(10);
          refer.mutable_unit_cost()->set_currency_code("USD");
          refer.mutable_unit_cost()->set_minor_units(1000 * (1 + pick(20)));
          refer.mutable_consent_override()->set_reason("urgent care coordination");
          run(refer, current_program);
          v1::AuthorizeServiceReferralRequest authorize;
          authorize.set_referral_id(absl::StrCat("referral-", state.service_referrals_size()));
          authorize.set_authorized_units(10);
          authorize.set_authorization_number("AUTH-1");
          run(authorize, current_program);
          break;
        }
        case 26:
        case 27: {
          v1::RecordServiceDeliveryRequest c;
          c.set_referral_id(absl::StrCat("referral-", 1 + pick(std::max(1, state.service_referrals_size()))));
          c.set_units(1 + pick(4));
          c.set_delivered_on(Day(context.now));
          run(c, current_program);
          break;
        }
        default: {
          if (pick(3) == 0) {
            v1::CancelCaseRequest c;
            c.set_reason("duplicate referral");
            run(c, current_program);
          } else if (pick(4) == 0) {
            v1::MarkCaseEnteredInErrorRequest c;
            c.set_reason("wrong patient");
            run(c, current_program);
          }
          break;
        }
      }
    }
    per_case.push_back(std::move(events));

    // Appointments of the case on the scheduling topic: their own streams, interleaved with
    // the case's below (a view reads the two topics independently).
    const int appointments = pick(4);
    for (int a = 0; a < appointments; ++a) {
      const std::string appointment_id = absl::StrCat("appt-", options.seed, "-", k, "-", a);
      std::vector<common::v1::EventEnvelope> stream;
      int64_t version = 0;
      auto emit = [&](const sv1::SchedulingEvent& e) {
        common::v1::EventEnvelope envelope;
        scheduling::ToEnvelope(e, &envelope);
        ++version;
        envelope.set_event_id(absl::StrCat(appointment_id, "-", version));
        envelope.set_aggregate_type("scheduling");
        envelope.set_aggregate_id(appointment_id);
        envelope.set_aggregate_version(version);
        envelope.set_tenant_id(tenant);
        envelope.set_command_id(absl::StrCat("cmd-", appointment_id, "-", version));
        stream.push_back(std::move(envelope));
      };
      const int64_t first = options.start_unix + pick(options.spread_days * 24) * 3600;
      const int count = 1 + pick(3);
      std::vector<int> status(static_cast<size_t>(count), sv1::APPOINTMENT_STATUS_BOOKED);
      std::vector<int64_t> start(static_cast<size_t>(count));
      sv1::SchedulingEvent booked;
      auto* b = booked.mutable_appointment_booked();
      b->set_case_id(case_id);
      b->set_status(sv1::APPOINTMENT_STATUS_BOOKED);
      for (int i = 0; i < count; ++i) {
        start[static_cast<size_t>(i)] = first + i * 7 * 86400;
        auto* o = b->add_occurrences();
        o->set_index(i);
        o->mutable_start_time()->set_seconds(start[static_cast<size_t>(i)]);
        o->mutable_end_time()->set_seconds(start[static_cast<size_t>(i)] + 3600);
      }
      emit(booked);
      const int changes = pick(5);
      for (int n = 0; n < changes; ++n) {
        const int i = pick(count);
        const size_t at = static_cast<size_t>(i);
        sv1::SchedulingEvent e;
        const int what = pick(6);
        if (status[at] == sv1::APPOINTMENT_STATUS_BOOKED && what == 0) {
          auto* r = e.mutable_appointment_rescheduled()->add_changes();
          r->set_index(i);
          r->mutable_previous_start_time()->set_seconds(start[at]);
          start[at] += (pick(41) - 20) * 86400 + 1800;
          r->mutable_start_time()->set_seconds(start[at]);
          r->mutable_end_time()->set_seconds(start[at] + 3600);
        } else if (status[at] == sv1::APPOINTMENT_STATUS_BOOKED && what == 1) {
          e.mutable_appointment_cancelled()->add_indexes(i);
          e.mutable_appointment_cancelled()->set_reason(sv1::CANCELLATION_REASON_PATIENT_REQUEST);
          status[at] = sv1::APPOINTMENT_STATUS_CANCELLED;
        } else {
          int to = 0;
          if (status[at] == sv1::APPOINTMENT_STATUS_BOOKED) {
            static const int kTo[] = {sv1::APPOINTMENT_STATUS_FULFILLED, sv1::APPOINTMENT_STATUS_NOSHOW,
                                      sv1::APPOINTMENT_STATUS_ARRIVED, sv1::APPOINTMENT_STATUS_FULFILLED};
            to = kTo[pick(4)];
          } else if (status[at] == sv1::APPOINTMENT_STATUS_ARRIVED) {
            to = sv1::APPOINTMENT_STATUS_FULFILLED;
          } else if (status[at] != sv1::APPOINTMENT_STATUS_ENTERED_IN_ERROR && what == 5) {
            to = sv1::APPOINTMENT_STATUS_ENTERED_IN_ERROR;
          } else {
            continue;
          }
          auto* c = e.mutable_appointment_status_changed();
          c->set_index(i);
          c->set_from(static_cast<sv1::AppointmentStatus>(status[at]));
          c->set_to(static_cast<sv1::AppointmentStatus>(to));
          status[at] = to;
        }
        emit(e);
      }
      per_case.push_back(std::move(stream));
    }
  }

  // Interleave the cases as a log would (each case keeps its order).
  std::vector<common::v1::EventEnvelope> log;
  std::vector<size_t> next(per_case.size(), 0);
  std::vector<size_t> live;
  for (size_t i = 0; i < per_case.size(); ++i) {
    if (!per_case[i].empty()) live.push_back(i);
  }
  while (!live.empty()) {
    const size_t slot = static_cast<size_t>(pick(static_cast<int>(live.size())));
    const size_t c = live[slot];
    log.push_back(per_case[c][next[c]++]);
    if (next[c] == per_case[c].size()) {
      live[slot] = live.back();
      live.pop_back();
    }
  }
  return log;
}

}  // namespace clinical::views::testing

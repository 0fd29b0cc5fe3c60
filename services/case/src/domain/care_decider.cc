// Decide for the clinical content of a case: assessments, care plan, goals, tasks, care
// team, consent, services. Called by Decide once the case exists and is open. Pure.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "care_rules.h"
#include "case_domain.h"
#include "google/protobuf/util/time_util.h"

namespace clinical::case_service {
namespace {

using google::protobuf::util::TimeUtil;

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(t));
}

template <typename Fill>
CareEvents One(Fill fill) {
  std::vector<v1::CaseEvent> events(1);
  fill(events[0]);
  return events;
}

absl::Status Required(const std::string& value, const char* field) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  return absl::OkStatus();
}

bool PlanOpenForChanges(const CaseState& s) {
  return s.has_care_plan() && (s.care_plan().status() == v1::CARE_PLAN_STATUS_DRAFT ||
                               s.care_plan().status() == v1::CARE_PLAN_STATUS_ACTIVE);
}

absl::Status NeedsPlan(const CaseState& s) {
  if (!PlanOpenForChanges(s)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "goals and tasks need a DRAFT or ACTIVE care plan; care plan is ",
        s.has_care_plan() ? v1::CarePlanStatus_Name(s.care_plan().status()) : "absent"));
  }
  return absl::OkStatus();
}

const v1::Goal* FindGoal(const CaseState& s, const std::string& id) {
  for (const auto& g : s.goals()) {
    if (g.goal_id() == id) return &g;
  }
  return nullptr;
}

const v1::CareTask* FindTask(const CaseState& s, const std::string& id) {
  for (const auto& t : s.tasks()) {
    if (t.task_id() == id) return &t;
  }
  return nullptr;
}

const v1::ServiceReferral* FindReferral(const CaseState& s, const std::string& id) {
  for (const auto& r : s.service_referrals()) {
    if (r.referral_id() == id) return &r;
  }
  return nullptr;
}

absl::StatusOr<const v1::CareTeamMember*> ActiveMember(const CaseState& s, const std::string& id) {
  for (const auto& m : s.care_team()) {
    if (m.member_id() != id) continue;
    if (!m.active()) {
      return absl::FailedPreconditionError(absl::StrCat("care team member ", id, " was removed"));
    }
    return &m;
  }
  return absl::NotFoundError(absl::StrCat("no care team member ", id, " on this case"));
}

absl::Status GoalExists(const CaseState& s, const std::string& goal_id) {
  if (!goal_id.empty() && FindGoal(s, goal_id) == nullptr) {
    return absl::NotFoundError(absl::StrCat("no goal ", goal_id, " on this case"));
  }
  return absl::OkStatus();
}

// The consent rule shared by DiscloseInformation and ReferToService.
absl::StatusOr<v1::InformationDisclosed> Disclose(const CaseState& s, const std::string& member_id,
                                                  const google::protobuf::RepeatedField<int>& categories,
                                                  v1::ConsentPurpose purpose,
                                                  const v1::ConsentOverride* consent_override,
                                                  const DecisionContext& x) {
  if (auto member = ActiveMember(s, member_id); !member.ok()) return member.status();
  v1::InformationDisclosed disclosed;
  disclosed.set_disclosure_id(absl::StrCat("disclosure-", s.disclosures_size() + 1));
  disclosed.set_member_id(member_id);
  *disclosed.mutable_categories() = categories;
  disclosed.set_purpose(purpose);
  auto consent = FindValidConsent(s, member_id, categories, purpose, x.now);
  if (consent.ok()) {
    disclosed.set_consent_id(*consent);
    return disclosed;
  }
  if (consent_override == nullptr || consent_override->reason().empty()) return consent.status();
  *disclosed.mutable_consent_override() = *consent_override;
  return disclosed;
}

bool IsFinalAchievement(v1::GoalAchievementStatus a) {
  return a == v1::GOAL_ACHIEVEMENT_STATUS_ACHIEVED || a == v1::GOAL_ACHIEVEMENT_STATUS_SUSTAINING ||
         a == v1::GOAL_ACHIEVEMENT_STATUS_NOT_ACHIEVED ||
         a == v1::GOAL_ACHIEVEMENT_STATUS_NOT_ATTAINABLE;
}

std::string CaseCurrency(const CaseState& s) {
  for (const auto& r : s.service_referrals()) {
    if (!r.unit_cost().currency_code().empty()) return r.unit_cost().currency_code();
  }
  return "";
}

}  // namespace

// ---- Assessments and risk ----

CareEvents DecideCare(const CaseState& s, const v1::RecordAssessmentRequest& c,
                      const DecisionContext& x) {
  auto result = ScoreAssessment(c.instrument(), c.responses(), s.patient().gender());
  if (!result.ok()) return result.status();
  std::vector<v1::CaseEvent> events(1);
  v1::AssessmentRecorded* a = events[0].mutable_assessment_recorded();
  a->set_assessment_id(absl::StrCat("assessment-", s.assessments_size() + 1));
  a->set_instrument(c.instrument());
  *a->mutable_responses() = c.responses();
  a->set_score(result->score);
  a->set_band(result->band);
  for (auto flag : result->flags) a->add_flags(flag);
  a->set_risk_level(result->risk);
  if (result->risk == v1::RISK_LEVEL_HIGH) {
    v1::HighRiskIdentified* h = events.emplace_back().mutable_high_risk_identified();
    h->set_previous_level(s.risk_level());
    h->set_assessment_id(a->assessment_id());
    h->set_instrument(c.instrument());
    for (auto flag : result->flags) h->add_flags(flag);
    h->set_program(s.program());
    h->set_team_id(s.team_id());
    if (s.has_assignment()) h->set_case_manager_id(s.assignment().case_manager_id());
  }
  (void)x;
  return events;
}

CareEvents DecideCare(const CaseState& s, const v1::ReviewRiskLevelRequest& c, const DecisionContext&) {
  if (auto st = Required(c.reason(), "reason"); !st.ok()) return st;
  if (c.risk_level() == s.risk_level()) {
    return absl::FailedPreconditionError(
        absl::StrCat("risk level is already ", v1::RiskLevel_Name(c.risk_level())));
  }
  return One([&](v1::CaseEvent& e) {
    auto* r = e.mutable_risk_level_reviewed();
    r->set_from(s.risk_level());
    r->set_to(c.risk_level());
    r->set_reason(c.reason());
  });
}

// ---- Care plan ----

CareEvents DecideCare(const CaseState& s, const v1::CreateCarePlanRequest& c, const DecisionContext&) {
  if (s.has_care_plan() && s.care_plan().status() != v1::CARE_PLAN_STATUS_REVOKED &&
      s.care_plan().status() != v1::CARE_PLAN_STATUS_COMPLETED &&
      s.care_plan().status() != v1::CARE_PLAN_STATUS_ENTERED_IN_ERROR) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the case already has a care plan (", v1::CarePlanStatus_Name(s.care_plan().status()), ")"));
  }
  const v1::CarePlanStatus status =
      c.status() == v1::CARE_PLAN_STATUS_UNSPECIFIED ? v1::CARE_PLAN_STATUS_DRAFT : c.status();
  if (status != v1::CARE_PLAN_STATUS_DRAFT && status != v1::CARE_PLAN_STATUS_ACTIVE) {
    return absl::InvalidArgumentError("status must be DRAFT or ACTIVE");
  }
  return One([&](v1::CaseEvent& e) {
    auto* p = e.mutable_care_plan_created();
    p->set_title(c.title());
    p->set_status(status);
    for (int i = 0; i < c.problems_size(); ++i) {
      auto* problem = p->add_problems();
      problem->set_problem_id(absl::StrCat("problem-", i + 1));
      problem->set_description(c.problems(i));
    }
  });
}

CareEvents DecideCare(const CaseState& s, const v1::ChangeCarePlanStatusRequest& c,
                      const DecisionContext&) {
  if (!s.has_care_plan()) return absl::FailedPreconditionError("the case has no care plan");
  if (auto st = CheckCarePlanTransition(s.care_plan().status(), c.status()); !st.ok()) return st;
  if ((c.status() == v1::CARE_PLAN_STATUS_REVOKED ||
       c.status() == v1::CARE_PLAN_STATUS_ENTERED_IN_ERROR) && c.reason().empty()) {
    return absl::InvalidArgumentError("reason is required to revoke or mark entered-in-error");
  }
  if (c.status() == v1::CARE_PLAN_STATUS_COMPLETED) {
    std::vector<std::string> open;
    for (const auto& g : s.goals()) {
      const auto l = g.lifecycle_status();
      if (l != v1::GOAL_LIFECYCLE_STATUS_COMPLETED && l != v1::GOAL_LIFECYCLE_STATUS_CANCELLED &&
          l != v1::GOAL_LIFECYCLE_STATUS_REJECTED && l != v1::GOAL_LIFECYCLE_STATUS_ENTERED_IN_ERROR) {
        open.push_back(g.goal_id());
      }
    }
    if (!open.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "a care plan completes when its goals are finished; open goals: ", absl::StrJoin(open, ", ")));
    }
  }
  return One([&](v1::CaseEvent& e) {
    auto* p = e.mutable_care_plan_status_changed();
    p->set_from(s.care_plan().status());
    p->set_to(c.status());
    p->set_reason(c.reason());
  });
}

// ---- Goals ----

CareEvents DecideCare(const CaseState& s, const v1::AddGoalRequest& c, const DecisionContext&) {
  if (auto st = NeedsPlan(s); !st.ok()) return st;
  if (!c.problem_id().empty()) {
    const auto& problems = s.care_plan().problems();
    if (std::none_of(problems.begin(), problems.end(),
                     [&](const v1::Problem& p) { return p.problem_id() == c.problem_id(); })) {
      return absl::NotFoundError(absl::StrCat("no problem ", c.problem_id(), " in the care plan"));
    }
  }
  const auto status = c.lifecycle_status() == v1::GOAL_LIFECYCLE_STATUS_UNSPECIFIED
                          ? v1::GOAL_LIFECYCLE_STATUS_PROPOSED
                          : c.lifecycle_status();
  if (status != v1::GOAL_LIFECYCLE_STATUS_PROPOSED && status != v1::GOAL_LIFECYCLE_STATUS_PLANNED &&
      status != v1::GOAL_LIFECYCLE_STATUS_ACCEPTED && status != v1::GOAL_LIFECYCLE_STATUS_ACTIVE) {
    return absl::InvalidArgumentError("lifecycle_status must be PROPOSED, PLANNED, ACCEPTED or ACTIVE");
  }
  return One([&](v1::CaseEvent& e) {
    auto* g = e.mutable_goal_added();
    g->set_goal_id(absl::StrCat("goal-", s.goals_size() + 1));
    g->set_description(c.description());
    g->set_measure(c.measure());
    g->set_target_value(c.target_value());
    g->set_target_date(c.target_date());
    g->set_priority(c.priority() == v1::GOAL_PRIORITY_UNSPECIFIED ? v1::GOAL_PRIORITY_MEDIUM
                                                                   : c.priority());
    g->set_problem_id(c.problem_id());
    g->set_lifecycle_status(status);
  });
}

CareEvents DecideCare(const CaseState& s, const v1::ChangeGoalStatusRequest& c, const DecisionContext&) {
  const v1::Goal* goal = FindGoal(s, c.goal_id());
  if (goal == nullptr) return absl::NotFoundError(absl::StrCat("no goal ", c.goal_id(), " on this case"));
  if (auto st = CheckGoalTransition(goal->lifecycle_status(), c.status()); !st.ok()) return st;
  const bool needs_reason = c.status() == v1::GOAL_LIFECYCLE_STATUS_CANCELLED ||
                            c.status() == v1::GOAL_LIFECYCLE_STATUS_REJECTED ||
                            c.status() == v1::GOAL_LIFECYCLE_STATUS_ENTERED_IN_ERROR;
  if (needs_reason && c.reason().empty()) {
    return absl::InvalidArgumentError("reason is required to cancel, reject or mark entered-in-error");
  }
  if (c.status() == v1::GOAL_LIFECYCLE_STATUS_COMPLETED) {
    const auto achievement = c.achievement_status() != v1::GOAL_ACHIEVEMENT_STATUS_UNSPECIFIED
                                 ? c.achievement_status()
                                 : goal->achievement_status();
    if (!IsFinalAchievement(achievement)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "completing ", c.goal_id(),
          " needs an outcome: achievement status ACHIEVED, SUSTAINING, NOT_ACHIEVED or "
          "NOT_ATTAINABLE; it is ",
          v1::GoalAchievementStatus_Name(achievement)));
    }
  }
  return One([&](v1::CaseEvent& e) {
    auto* g = e.mutable_goal_status_changed();
    g->set_goal_id(c.goal_id());
    g->set_from(goal->lifecycle_status());
    g->set_to(c.status());
    g->set_achievement_status(c.achievement_status());
    g->set_reason(c.reason());
  });
}

CareEvents DecideCare(const CaseState& s, const v1::RecordGoalProgressRequest& c,
                      const DecisionContext&) {
  const v1::Goal* goal = FindGoal(s, c.goal_id());
  if (goal == nullptr) return absl::NotFoundError(absl::StrCat("no goal ", c.goal_id(), " on this case"));
  if (goal->lifecycle_status() != v1::GOAL_LIFECYCLE_STATUS_ACTIVE) {
    return absl::FailedPreconditionError(absl::StrCat(
        "progress is recorded on ACTIVE goals; ", c.goal_id(), " is ",
        v1::GoalLifecycleStatus_Name(goal->lifecycle_status())));
  }
  return One([&](v1::CaseEvent& e) {
    auto* p = e.mutable_goal_progress_recorded();
    p->set_goal_id(c.goal_id());
    p->set_previous_achievement_status(goal->achievement_status());
    p->set_achievement_status(c.achievement_status());
    p->set_value(c.value());
    p->set_note(c.note());
  });
}

// ---- Tasks ----

CareEvents DecideCare(const CaseState& s, const v1::AddCareTaskRequest& c, const DecisionContext& x) {
  if (auto st = NeedsPlan(s); !st.ok()) return st;
  if (auto st = GoalExists(s, c.goal_id()); !st.ok()) return st;
  const auto status = c.status() == v1::TASK_STATUS_UNSPECIFIED ? v1::TASK_STATUS_REQUESTED : c.status();
  if (status != v1::TASK_STATUS_DRAFT && status != v1::TASK_STATUS_REQUESTED &&
      status != v1::TASK_STATUS_READY) {
    return absl::InvalidArgumentError("status must be DRAFT, REQUESTED or READY");
  }
  if (c.has_due_at() && ToTime(c.due_at()) <= x.now) {
    return absl::InvalidArgumentError("due_at must be in the future");
  }
  return One([&](v1::CaseEvent& e) {
    auto* t = e.mutable_care_task_added();
    t->set_task_id(absl::StrCat("task-", s.tasks_size() + 1));
    t->set_description(c.description());
    t->set_goal_id(c.goal_id());
    t->set_owner_id(c.owner_id());
    if (c.has_due_at()) *t->mutable_due_at() = c.due_at();
    t->set_priority(c.priority() == v1::TASK_PRIORITY_UNSPECIFIED ? v1::TASK_PRIORITY_ROUTINE
                                                                   : c.priority());
    t->set_status(status);
  });
}

CareEvents DecideCare(const CaseState& s, const v1::ChangeCareTaskStatusRequest& c,
                      const DecisionContext&) {
  const v1::CareTask* task = FindTask(s, c.task_id());
  if (task == nullptr) return absl::NotFoundError(absl::StrCat("no task ", c.task_id(), " on this case"));
  if (auto st = CheckTaskTransition(task->status(), c.status()); !st.ok()) return st;
  const bool needs_reason = c.status() == v1::TASK_STATUS_REJECTED ||
                            c.status() == v1::TASK_STATUS_CANCELLED ||
                            c.status() == v1::TASK_STATUS_FAILED ||
                            c.status() == v1::TASK_STATUS_ENTERED_IN_ERROR;
  if (needs_reason && c.reason().empty()) {
    return absl::InvalidArgumentError(
        "reason is required to reject, cancel, fail or mark entered-in-error");
  }
  return One([&](v1::CaseEvent& e) {
    auto* t = e.mutable_care_task_status_changed();
    t->set_task_id(c.task_id());
    t->set_from(task->status());
    t->set_to(c.status());
    t->set_reason(c.reason());
    t->set_owner_id(c.owner_id());
  });
}

// ---- Care team ----

CareEvents DecideCare(const CaseState& s, const v1::AddCareTeamMemberRequest& c, const DecisionContext&) {
  if (c.has_coverage() && c.role() != v1::CARE_TEAM_ROLE_PAYER) {
    return absl::InvalidArgumentError("coverage is for payers only");
  }
  return One([&](v1::CaseEvent& e) {
    auto* m = e.mutable_care_team_member_added()->mutable_member();
    m->set_member_id(absl::StrCat("member-", s.care_team_size() + 1));
    m->set_role(c.role());
    m->set_name(c.name());
    m->set_organization(c.organization());
    m->set_specialty(c.specialty());
    m->set_relationship(c.relationship());
    *m->mutable_contact_preferences() = c.contact_preferences();
    if (c.has_coverage()) *m->mutable_coverage() = c.coverage();
    // Staff who use the platform stand in RELATIONSHIP_CARE_TEAM to the case while active.
    m->set_staff_user_id(c.staff_user_id());
    m->set_active(true);
  });
}

CareEvents DecideCare(const CaseState& s, const v1::RemoveCareTeamMemberRequest& c,
                      const DecisionContext&) {
  if (auto st = Required(c.reason(), "reason"); !st.ok()) return st;
  if (auto member = ActiveMember(s, c.member_id()); !member.ok()) return member.status();
  return One([&](v1::CaseEvent& e) {
    auto* r = e.mutable_care_team_member_removed();
    r->set_member_id(c.member_id());
    r->set_reason(c.reason());
  });
}

// ---- Consent ----

CareEvents DecideCare(const CaseState& s, const v1::RecordConsentRequest& c, const DecisionContext& x) {
  for (const auto& id : c.member_ids()) {
    if (auto member = ActiveMember(s, id); !member.ok()) return member.status();
  }
  if (c.has_expires_at() && ToTime(c.expires_at()) <= x.now) {
    return absl::InvalidArgumentError("expires_at must be in the future");
  }
  return One([&](v1::CaseEvent& e) {
    auto* r = e.mutable_consent_recorded();
    r->set_consent_id(absl::StrCat("consent-", s.consents_size() + 1));
    *r->mutable_member_ids() = c.member_ids();
    *r->mutable_categories() = c.categories();
    *r->mutable_purposes() = c.purposes();
    r->set_source(c.source());
    if (c.has_expires_at()) *r->mutable_expires_at() = c.expires_at();
  });
}

CareEvents DecideCare(const CaseState& s, const v1::RevokeConsentRequest& c, const DecisionContext&) {
  if (auto st = Required(c.reason(), "reason"); !st.ok()) return st;
  const v1::Consent* found = nullptr;
  for (const auto& consent : s.consents()) {
    if (consent.consent_id() == c.consent_id()) found = &consent;
  }
  if (found == nullptr) {
    return absl::NotFoundError(absl::StrCat("no consent ", c.consent_id(), " on this case"));
  }
  if (found->revoked()) {
    return absl::FailedPreconditionError(absl::StrCat("consent ", c.consent_id(), " is already revoked"));
  }
  return One([&](v1::CaseEvent& e) {
    auto* r = e.mutable_consent_revoked();
    r->set_consent_id(c.consent_id());
    r->set_reason(c.reason());
  });
}

CareEvents DecideCare(const CaseState& s, const v1::DiscloseInformationRequest& c,
                      const DecisionContext& x) {
  auto disclosed = Disclose(s, c.member_id(), c.categories(), c.purpose(),
                            c.has_consent_override() ? &c.consent_override() : nullptr, x);
  if (!disclosed.ok()) return disclosed.status();
  return One([&](v1::CaseEvent& e) { *e.mutable_information_disclosed() = std::move(*disclosed); });
}

// ---- Services and cost ----

CareEvents DecideCare(const CaseState& s, const v1::ReferToServiceRequest& c, const DecisionContext& x) {
  auto member = ActiveMember(s, c.member_id());
  if (!member.ok()) return member.status();
  if ((*member)->role() != v1::CARE_TEAM_ROLE_PROVIDER &&
      (*member)->role() != v1::CARE_TEAM_ROLE_COMMUNITY_SERVICE) {
    return absl::FailedPreconditionError(absl::StrCat(
        "services are referred to providers or community services; ", c.member_id(), " is ",
        v1::CareTeamRole_Name((*member)->role())));
  }
  if (auto st = GoalExists(s, c.goal_id()); !st.ok()) return st;
  if (const std::string currency = CaseCurrency(s);
      !currency.empty() && currency != c.unit_cost().currency_code()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "a case's services share one currency: ", currency, ", not ", c.unit_cost().currency_code()));
  }
  if (auto requested = MultiplyMoney(c.unit_cost(), c.requested_units()); !requested.ok()) {
    return requested.status();
  }
  auto disclosed = Disclose(s, c.member_id(), c.shared_information(),
                            v1::CONSENT_PURPOSE_CARE_COORDINATION,
                            c.has_consent_override() ? &c.consent_override() : nullptr, x);
  if (!disclosed.ok()) return disclosed.status();
  const std::string referral_id = absl::StrCat("referral-", s.service_referrals_size() + 1);
  disclosed->set_referral_id(referral_id);
  std::vector<v1::CaseEvent> events(2);
  auto* r = events[0].mutable_service_referred();
  r->set_referral_id(referral_id);
  r->set_member_id(c.member_id());
  r->set_service_type(c.service_type());
  r->set_reason(c.reason());
  r->set_requested_units(c.requested_units());
  *r->mutable_unit_cost() = c.unit_cost();
  r->set_goal_id(c.goal_id());
  *events[1].mutable_information_disclosed() = std::move(*disclosed);
  return events;
}

CareEvents DecideCare(const CaseState& s, const v1::AuthorizeServiceReferralRequest& c,
                      const DecisionContext&) {
  const v1::ServiceReferral* referral = FindReferral(s, c.referral_id());
  if (referral == nullptr) {
    return absl::NotFoundError(absl::StrCat("no service referral ", c.referral_id(), " on this case"));
  }
  if (auto st = CheckServiceReferralTransition(referral->status(), v1::SERVICE_REFERRAL_STATUS_AUTHORIZED);
      !st.ok()) {
    return st;
  }
  const common::v1::Money unit = c.has_unit_cost() ? c.unit_cost() : referral->unit_cost();
  if (unit.currency_code() != referral->unit_cost().currency_code()) {
    return absl::FailedPreconditionError(absl::StrCat("unit_cost must be in ",
                                                      referral->unit_cost().currency_code()));
  }
  auto authorized = MultiplyMoney(unit, c.authorized_units());
  if (!authorized.ok()) return authorized.status();
  auto total = AddMoney(s.authorized_cost(), *authorized);
  if (!total.ok()) return total.status();
  return One([&](v1::CaseEvent& e) {
    auto* a = e.mutable_service_referral_authorized();
    a->set_referral_id(c.referral_id());
    a->set_authorized_units(c.authorized_units());
    a->set_authorization_number(c.authorization_number());
    *a->mutable_unit_cost() = unit;
  });
}

CareEvents DecideCare(const CaseState& s, const v1::RecordServiceDeliveryRequest& c,
                      const DecisionContext&) {
  const v1::ServiceReferral* referral = FindReferral(s, c.referral_id());
  if (referral == nullptr) {
    return absl::NotFoundError(absl::StrCat("no service referral ", c.referral_id(), " on this case"));
  }
  if (referral->status() != v1::SERVICE_REFERRAL_STATUS_AUTHORIZED &&
      referral->status() != v1::SERVICE_REFERRAL_STATUS_IN_PROGRESS) {
    return absl::FailedPreconditionError(absl::StrCat(
        "deliveries are recorded on AUTHORIZED or IN_PROGRESS referrals; ", c.referral_id(), " is ",
        v1::ServiceReferralStatus_Name(referral->status())));
  }
  if (static_cast<int64_t>(referral->delivered_units()) + c.units() > referral->authorized_units()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "delivery exceeds the authorisation: ", referral->delivered_units(), " delivered + ",
        c.units(), " > ", referral->authorized_units(), " authorised units"));
  }
  auto cost = MultiplyMoney(referral->unit_cost(), c.units());
  if (!cost.ok()) return cost.status();
  auto total = AddMoney(s.delivered_cost(), *cost);
  if (!total.ok()) return total.status();
  return One([&](v1::CaseEvent& e) {
    auto* d = e.mutable_service_delivered();
    d->set_referral_id(c.referral_id());
    d->set_units(c.units());
    d->set_delivered_on(c.delivered_on());
    *d->mutable_cost() = *cost;
  });
}

CareEvents DecideCare(const CaseState& s, const v1::ChangeServiceReferralStatusRequest& c,
                      const DecisionContext&) {
  const v1::ServiceReferral* referral = FindReferral(s, c.referral_id());
  if (referral == nullptr) {
    return absl::NotFoundError(absl::StrCat("no service referral ", c.referral_id(), " on this case"));
  }
  if (c.status() != v1::SERVICE_REFERRAL_STATUS_COMPLETED &&
      c.status() != v1::SERVICE_REFERRAL_STATUS_DENIED &&
      c.status() != v1::SERVICE_REFERRAL_STATUS_CANCELLED) {
    return absl::InvalidArgumentError("status must be COMPLETED, DENIED or CANCELLED");
  }
  if (auto st = CheckServiceReferralTransition(referral->status(), c.status()); !st.ok()) return st;
  if (c.status() != v1::SERVICE_REFERRAL_STATUS_COMPLETED && c.reason().empty()) {
    return absl::InvalidArgumentError("reason is required to deny or cancel");
  }
  return One([&](v1::CaseEvent& e) {
    auto* r = e.mutable_service_referral_status_changed();
    r->set_referral_id(c.referral_id());
    r->set_from(referral->status());
    r->set_to(c.status());
    r->set_reason(c.reason());
  });
}

}  // namespace clinical::case_service

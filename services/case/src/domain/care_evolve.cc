// Evolve for the clinical content of a case. Total and deterministic.
#include <algorithm>

#include "care_rules.h"
#include "case_domain.h"
#include "google/protobuf/util/time_util.h"

namespace clinical::case_service {
namespace {

using google::protobuf::Timestamp;
using google::protobuf::util::TimeUtil;

template <typename Items, typename Id>
auto* Find(Items* items, const std::string& id, Id id_of) {
  for (auto& item : *items) {
    if (id_of(item) == id) return &item;
  }
  return static_cast<typename Items::value_type*>(nullptr);
}

void RecomputeCost(CaseState& state) {
  // The decider refused anything that would overflow; stay total regardless.
  auto cost = CostOf(state);
  if (!cost.ok()) return;
  *state.mutable_authorized_cost() = cost->authorized;
  *state.mutable_delivered_cost() = cost->delivered;
}

}  // namespace

void EvolveCare(CaseState& state, const Event& event) {
  const v1::CaseEvent& e = event.body;
  const Timestamp at = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(event.occurred_at));
  const std::string& by = event.actor.user_id();
  switch (e.event_case()) {
    case v1::CaseEvent::kAssessmentRecorded: {
      const auto& a = e.assessment_recorded();
      v1::Assessment* assessment = state.add_assessments();
      assessment->set_assessment_id(a.assessment_id());
      assessment->set_instrument(a.instrument());
      *assessment->mutable_responses() = a.responses();
      assessment->set_score(a.score());
      assessment->set_band(a.band());
      *assessment->mutable_flags() = a.flags();
      assessment->set_risk_level(a.risk_level());
      *assessment->mutable_administered_at() = at;
      assessment->set_administered_by(by);
      if (a.risk_level() > state.risk_level()) state.set_risk_level(a.risk_level());
      break;
    }
    case v1::CaseEvent::kHighRiskIdentified:
      state.set_risk_level(v1::RISK_LEVEL_HIGH);
      break;
    case v1::CaseEvent::kRiskLevelReviewed:
      state.set_risk_level(e.risk_level_reviewed().to());
      break;
    case v1::CaseEvent::kCarePlanCreated: {
      const auto& p = e.care_plan_created();
      v1::CarePlan* plan = state.mutable_care_plan();
      plan->Clear();
      plan->set_status(p.status());
      plan->set_title(p.title());
      *plan->mutable_problems() = p.problems();
      *plan->mutable_created_at() = at;
      plan->set_created_by(by);
      break;
    }
    case v1::CaseEvent::kCarePlanStatusChanged:
      state.mutable_care_plan()->set_status(e.care_plan_status_changed().to());
      state.mutable_care_plan()->set_status_reason(e.care_plan_status_changed().reason());
      break;
    case v1::CaseEvent::kGoalAdded: {
      const auto& g = e.goal_added();
      v1::Goal* goal = state.add_goals();
      goal->set_goal_id(g.goal_id());
      goal->set_description(g.description());
      goal->set_measure(g.measure());
      goal->set_target_value(g.target_value());
      goal->set_target_date(g.target_date());
      goal->set_priority(g.priority());
      goal->set_problem_id(g.problem_id());
      goal->set_lifecycle_status(g.lifecycle_status());
      *goal->mutable_created_at() = at;
      goal->set_created_by(by);
      break;
    }
    case v1::CaseEvent::kGoalStatusChanged: {
      const auto& g = e.goal_status_changed();
      if (auto* goal = Find(state.mutable_goals(), g.goal_id(), [](const v1::Goal& x) { return x.goal_id(); })) {
        goal->set_lifecycle_status(g.to());
        if (g.achievement_status() != v1::GOAL_ACHIEVEMENT_STATUS_UNSPECIFIED) {
          goal->set_achievement_status(g.achievement_status());
        }
      }
      break;
    }
    case v1::CaseEvent::kGoalProgressRecorded: {
      const auto& p = e.goal_progress_recorded();
      if (auto* goal = Find(state.mutable_goals(), p.goal_id(), [](const v1::Goal& x) { return x.goal_id(); })) {
        goal->set_achievement_status(p.achievement_status());
        v1::GoalProgress* progress = goal->add_progress();
        progress->set_achievement_status(p.achievement_status());
        progress->set_value(p.value());
        progress->set_note(p.note());
        *progress->mutable_recorded_at() = at;
        progress->set_recorded_by(by);
      }
      break;
    }
    case v1::CaseEvent::kCareTaskAdded: {
      const auto& t = e.care_task_added();
      v1::CareTask* task = state.add_tasks();
      task->set_task_id(t.task_id());
      task->set_description(t.description());
      task->set_goal_id(t.goal_id());
      task->set_owner_id(t.owner_id());
      if (t.has_due_at()) *task->mutable_due_at() = t.due_at();
      task->set_priority(t.priority());
      task->set_status(t.status());
      *task->mutable_created_at() = at;
      task->set_created_by(by);
      *task->mutable_status_changed_at() = at;
      break;
    }
    case v1::CaseEvent::kCareTaskStatusChanged: {
      const auto& t = e.care_task_status_changed();
      if (auto* task = Find(state.mutable_tasks(), t.task_id(), [](const v1::CareTask& x) { return x.task_id(); })) {
        task->set_status(t.to());
        task->set_status_reason(t.reason());
        if (!t.owner_id().empty()) task->set_owner_id(t.owner_id());
        *task->mutable_status_changed_at() = at;
      }
      break;
    }
    case v1::CaseEvent::kCareTeamMemberAdded: {
      v1::CareTeamMember* member = state.add_care_team();
      *member = e.care_team_member_added().member();
      member->set_active(true);
      *member->mutable_added_at() = at;
      member->set_added_by(by);
      break;
    }
    case v1::CaseEvent::kCareTeamMemberRemoved:
      if (auto* member = Find(state.mutable_care_team(), e.care_team_member_removed().member_id(),
                              [](const v1::CareTeamMember& x) { return x.member_id(); })) {
        member->set_active(false);
      }
      break;
    case v1::CaseEvent::kConsentRecorded: {
      const auto& r = e.consent_recorded();
      v1::Consent* consent = state.add_consents();
      consent->set_consent_id(r.consent_id());
      *consent->mutable_member_ids() = r.member_ids();
      *consent->mutable_categories() = r.categories();
      *consent->mutable_purposes() = r.purposes();
      consent->set_source(r.source());
      if (r.has_expires_at()) *consent->mutable_expires_at() = r.expires_at();
      *consent->mutable_recorded_at() = at;
      consent->set_recorded_by(by);
      for (auto& member : *state.mutable_care_team()) {
        const auto& ids = r.member_ids();
        if (std::find(ids.begin(), ids.end(), member.member_id()) != ids.end()) {
          member.add_consent_ids(r.consent_id());
        }
      }
      break;
    }
    case v1::CaseEvent::kConsentRevoked: {
      const auto& r = e.consent_revoked();
      if (auto* consent = Find(state.mutable_consents(), r.consent_id(),
                               [](const v1::Consent& x) { return x.consent_id(); })) {
        consent->set_revoked(true);
        consent->set_revoke_reason(r.reason());
        *consent->mutable_revoked_at() = at;
      }
      for (auto& member : *state.mutable_care_team()) {
        auto* ids = member.mutable_consent_ids();
        ids->erase(std::remove(ids->begin(), ids->end(), r.consent_id()), ids->end());
      }
      break;
    }
    case v1::CaseEvent::kInformationDisclosed: {
      const auto& d = e.information_disclosed();
      v1::Disclosure* disclosure = state.add_disclosures();
      disclosure->set_disclosure_id(d.disclosure_id());
      disclosure->set_member_id(d.member_id());
      *disclosure->mutable_categories() = d.categories();
      disclosure->set_purpose(d.purpose());
      disclosure->set_consent_id(d.consent_id());
      if (d.has_consent_override()) *disclosure->mutable_consent_override() = d.consent_override();
      *disclosure->mutable_disclosed_at() = at;
      disclosure->set_disclosed_by(by);
      disclosure->set_referral_id(d.referral_id());
      break;
    }
    case v1::CaseEvent::kServiceReferred: {
      const auto& r = e.service_referred();
      v1::ServiceReferral* referral = state.add_service_referrals();
      referral->set_referral_id(r.referral_id());
      referral->set_member_id(r.member_id());
      referral->set_service_type(r.service_type());
      referral->set_reason(r.reason());
      referral->set_status(v1::SERVICE_REFERRAL_STATUS_REQUESTED);
      referral->set_requested_units(r.requested_units());
      *referral->mutable_unit_cost() = r.unit_cost();
      referral->set_goal_id(r.goal_id());
      *referral->mutable_referred_at() = at;
      referral->set_referred_by(by);
      RecomputeCost(state);
      break;
    }
    case v1::CaseEvent::kServiceReferralAuthorized: {
      const auto& a = e.service_referral_authorized();
      if (auto* referral = Find(state.mutable_service_referrals(), a.referral_id(),
                                [](const v1::ServiceReferral& x) { return x.referral_id(); })) {
        referral->set_status(v1::SERVICE_REFERRAL_STATUS_AUTHORIZED);
        referral->set_authorized_units(a.authorized_units());
        referral->set_authorization_number(a.authorization_number());
        *referral->mutable_unit_cost() = a.unit_cost();
      }
      RecomputeCost(state);
      break;
    }
    case v1::CaseEvent::kServiceDelivered: {
      const auto& d = e.service_delivered();
      if (auto* referral = Find(state.mutable_service_referrals(), d.referral_id(),
                                [](const v1::ServiceReferral& x) { return x.referral_id(); })) {
        // The first delivery starts the service.
        if (referral->status() == v1::SERVICE_REFERRAL_STATUS_AUTHORIZED) {
          referral->set_status(v1::SERVICE_REFERRAL_STATUS_IN_PROGRESS);
        }
        referral->set_delivered_units(referral->delivered_units() + d.units());
        v1::ServiceDelivery* delivery = referral->add_deliveries();
        delivery->set_units(d.units());
        delivery->set_delivered_on(d.delivered_on());
        *delivery->mutable_cost() = d.cost();
        *delivery->mutable_recorded_at() = at;
        delivery->set_recorded_by(by);
      }
      RecomputeCost(state);
      break;
    }
    case v1::CaseEvent::kServiceReferralStatusChanged: {
      const auto& r = e.service_referral_status_changed();
      if (auto* referral = Find(state.mutable_service_referrals(), r.referral_id(),
                                [](const v1::ServiceReferral& x) { return x.referral_id(); })) {
        referral->set_status(r.to());
        referral->set_status_reason(r.reason());
      }
      RecomputeCost(state);
      break;
    }
    default:
      break;
  }
}

}  // namespace clinical::case_service

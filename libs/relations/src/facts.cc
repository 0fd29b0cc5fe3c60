#include "clinical/relations/facts.h"

#include <algorithm>

namespace clinical::relations {
namespace {

absl::Time FromProto(const google::protobuf::Timestamp& timestamp) {
  return absl::FromUnixSeconds(timestamp.seconds()) + absl::Nanoseconds(timestamp.nanos());
}

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// Decodes an envelope's payload into the oneof wrapper `Events` (CaseEvent,
// OrganisationEvent). Writers pack the one event message itself (the case service's
// ToEnvelope: payload CaseAssigned, event_type "clinical.case.v1.CaseAssigned"), which is
// what every reader of the topic expects; a payload packing the wrapper decodes too.
template <typename Events>
bool Decode(const google::protobuf::Any& payload, Events& out) {
  if (payload.Is<Events>()) return payload.UnpackTo(&out);
  const std::string& url = payload.type_url();
  const std::string type = url.substr(url.rfind('/') + 1);
  const google::protobuf::OneofDescriptor* oneof = Events::descriptor()->oneof_decl(0);
  for (int i = 0; i < oneof->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = oneof->field(i);
    if (field->message_type()->full_name() != type) continue;
    return payload.UnpackTo(out.GetReflection()->MutableMessage(&out, field));
  }
  return false;
}

}  // namespace

void ApplyCaseEvent(CaseFacts& facts, const common::v1::EventEnvelope& envelope, const case_::v1::CaseEvent& event) {
  using E = case_::v1::CaseEvent;
  facts.tenant_id = envelope.tenant_id();
  facts.version = std::max(facts.version, envelope.aggregate_version());
  switch (event.event_case()) {
    case E::kCaseOpened:
      facts.status = event.case_opened().status();
      facts.team_id = event.case_opened().team_id();
      break;
    case E::kCaseStatusChanged:
      facts.status = event.case_status_changed().to();
      break;
    case E::kCaseAssigned:
      facts.case_manager_id = event.case_assigned().case_manager_id();
      if (!event.case_assigned().team_id().empty()) facts.team_id = event.case_assigned().team_id();
      break;
    case E::kAssignmentDeclined:
      facts.case_manager_id.clear();
      break;
    case E::kCaseTransferred:
      facts.case_manager_id.clear();
      if (!event.case_transferred().to_team_id().empty()) facts.team_id = event.case_transferred().to_team_id();
      break;
    case E::kCaseClosed:
      facts.status = case_::v1::CASE_STATUS_FINISHED;
      break;
    case E::kCaseReopened:
      facts.status = event.case_reopened().to();
      break;
    case E::kCaseCancelled:
      facts.status = case_::v1::CASE_STATUS_CANCELLED;
      break;
    case E::kCaseEnteredInError:
      facts.status = case_::v1::CASE_STATUS_ENTERED_IN_ERROR;
      break;
    case E::kCasePutOnHold:
      facts.status = case_::v1::CASE_STATUS_ONHOLD;
      break;
    case E::kCareTeamMemberAdded: {
      const case_::v1::CareTeamMember& member = event.care_team_member_added().member();
      if (!member.staff_user_id().empty()) facts.care_team_staff[member.member_id()] = member.staff_user_id();
      break;
    }
    case E::kCareTeamMemberRemoved:
      facts.care_team_staff.erase(event.care_team_member_removed().member_id());
      break;
    case E::kEmergencyAccessGranted: {
      const case_::v1::EmergencyAccessGrant& grant = event.emergency_access_granted().grant();
      facts.grants.push_back(Grant{grant.grant_id(), grant.user_id(), FromProto(grant.expires_at())});
      break;
    }
    default:
      break;
  }
}

bool ApplyCaseEvent(CaseFacts& facts, const common::v1::EventEnvelope& envelope) {
  case_::v1::CaseEvent event;
  if (!Decode(envelope.payload(), event)) return false;
  ApplyCaseEvent(facts, envelope, event);
  return true;
}

void ApplyOrganisationEvent(OrganisationFacts& facts, const case_::v1::OrganisationEvent& event) {
  switch (event.event_case()) {
    case case_::v1::OrganisationEvent::kOrganisationConfigured: {
      const auto& configured = event.organisation_configured();
      facts.privacy_officer_ids.assign(configured.privacy_officer_ids().begin(),
                                       configured.privacy_officer_ids().end());
      facts.emergency_access_max_minutes = configured.emergency_access_max_minutes();
      break;
    }
    case case_::v1::OrganisationEvent::kTeamSet:
      facts.teams[event.team_set().team().team_id()] = event.team_set().team();
      break;
    default:
      break;
  }
}

bool ApplyOrganisationEvent(OrganisationFacts& facts, const common::v1::EventEnvelope& envelope) {
  case_::v1::OrganisationEvent event;
  if (!Decode(envelope.payload(), event)) return false;
  facts.tenant_id = envelope.tenant_id();
  facts.version = std::max(facts.version, envelope.aggregate_version());
  ApplyOrganisationEvent(facts, event);
  return true;
}

case_::v1::Organisation ToProto(const OrganisationFacts& facts) {
  case_::v1::Organisation organisation;
  organisation.set_tenant_id(facts.tenant_id);
  organisation.set_version(facts.version);
  for (const auto& [id, team] : facts.teams) *organisation.add_teams() = team;
  for (const std::string& id : facts.privacy_officer_ids) organisation.add_privacy_officer_ids(id);
  organisation.set_emergency_access_max_minutes(facts.emergency_access_max_minutes);
  return organisation;
}

std::string OrganisationId(const std::string& tenant_id) { return "organisation-" + tenant_id; }

bool Supervises(const OrganisationFacts& organisation, const std::string& supervisor_id, const std::string& person_id) {
  if (supervisor_id.empty() || person_id.empty()) return false;
  for (const auto& [id, team] : organisation.teams) {
    if (!Contains(team.supervisor_ids(), supervisor_id)) continue;
    if (Contains(team.member_ids(), person_id) || Contains(team.supervisor_ids(), person_id)) return true;
  }
  return false;
}

std::set<std::string> SupervisorsOf(const OrganisationFacts& organisation, const CaseFacts& facts) {
  std::set<std::string> supervisors;
  for (const auto& [id, team] : organisation.teams) {
    const bool case_team = !facts.team_id.empty() && id == facts.team_id;
    const bool managers_team = !facts.case_manager_id.empty() && Contains(team.member_ids(), facts.case_manager_id);
    if (case_team || managers_team) supervisors.insert(team.supervisor_ids().begin(), team.supervisor_ids().end());
  }
  return supervisors;
}

access::CaseRelations RelationsTo(const std::string& case_id, const CaseFacts& facts,
                                  const OrganisationFacts* organisation, const access::Principal& principal,
                                  absl::Time now) {
  access::CaseRelations relations;
  relations.case_id = case_id;
  if (facts.version == 0) return relations;  // kUnknown
  if (facts.tenant_id != principal.tenant_id) {
    relations.where = access::CaseRelations::Where::kOtherTenant;
    return relations;
  }
  relations.where = access::CaseRelations::Where::kInTenant;
  const std::string& user = principal.user_id;
  relations.assigned = !user.empty() && facts.case_manager_id == user;
  for (const auto& [member, staff] : facts.care_team_staff) relations.care_team |= staff == user;
  relations.unassigned = facts.case_manager_id.empty() || facts.status == case_::v1::CASE_STATUS_WAITLIST;
  if (organisation != nullptr) relations.team_supervisor = SupervisorsOf(*organisation, facts).count(user) > 0;
  for (const Grant& grant : facts.grants) {
    if (grant.user_id == user && now < grant.expires_at) relations.emergency_grant_id = grant.grant_id;
  }
  return relations;
}

}  // namespace clinical::relations

#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "clinical/access/decision.h"
#include "clinical/case/v1/case.pb.h"
#include "clinical/case/v1/events.pb.h"
#include "clinical/common/v1/envelope.pb.h"

namespace clinical::relations {

// What access decisions need to know, folded from events: every service that decides a
// case relationship folds the same events with these same functions, and the audit
// service folds them as of past instants to re-check recorded reads (RecheckAccess).
// Pure functions; no I/O.

// An emergency grant as the decisions need it.
struct Grant {
  std::string grant_id;
  std::string user_id;
  absl::Time expires_at;
};

// One case, from the case topic.
struct CaseFacts {
  std::string tenant_id;
  case_::v1::CaseStatus status = case_::v1::CASE_STATUS_UNSPECIFIED;
  std::string team_id;
  // The case manager it is assigned to, pending or accepted ("" when unassigned).
  std::string case_manager_id;
  // Care-team members who are staff: member id -> user id (active members only).
  std::map<std::string, std::string> care_team_staff;
  std::vector<Grant> grants;
  // The case's last version folded (0: never opened).
  int64_t version = 0;
};

// Folds one envelope of the case topic. Events of other aggregates and undecodable payloads
// change nothing (returns false for them).
bool ApplyCaseEvent(CaseFacts& facts, const common::v1::EventEnvelope& envelope);
void ApplyCaseEvent(CaseFacts& facts, const common::v1::EventEnvelope& envelope, const case_::v1::CaseEvent& event);

// One tenant's organisation, from the organisation topic.
struct OrganisationFacts {
  std::string tenant_id;
  int64_t version = 0;
  std::map<std::string, case_::v1::Team> teams;  // by team id
  std::vector<std::string> privacy_officer_ids;
  int32_t emergency_access_max_minutes = 0;  // 0: the platform default
};

// The platform default for emergency_access_max_minutes.
inline constexpr int32_t kDefaultEmergencyAccessMaxMinutes = 240;

bool ApplyOrganisationEvent(OrganisationFacts& facts, const common::v1::EventEnvelope& envelope);
void ApplyOrganisationEvent(OrganisationFacts& facts, const case_::v1::OrganisationEvent& event);

// The organisation as the API shows it.
case_::v1::Organisation ToProto(const OrganisationFacts& facts);

// "organisation-<tenant>": the organisation aggregate's id (never PHI).
std::string OrganisationId(const std::string& tenant_id);

// Whether `supervisor_id` supervises a team whose member or supervisor `person_id` is.
bool Supervises(const OrganisationFacts& organisation, const std::string& supervisor_id, const std::string& person_id);

// The supervisors of the case's team and of the teams its case manager belongs to.
std::set<std::string> SupervisorsOf(const OrganisationFacts& organisation, const CaseFacts& facts);

// How `principal` stands to a case with `facts` at `now` (tenant, assignment, care team,
// team supervision, unassigned, an active emergency grant). `organisation` may be null
// (never configured: nobody supervises).
access::CaseRelations RelationsTo(const std::string& case_id, const CaseFacts& facts,
                                  const OrganisationFacts* organisation, const access::Principal& principal,
                                  absl::Time now);

}  // namespace clinical::relations

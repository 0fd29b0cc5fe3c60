#pragma once

#include <string>
#include <vector>

#include "clinical/common/v1/access_policy.pb.h"
#include "clinical/common/v1/types.pb.h"
#include "google/protobuf/message.h"

namespace clinical::access {

// The authorization decision: who may call a method, given what the method's AccessPolicy
// allows (declared in the protos) and how the caller stands to what the request names.
// Pure: the facts come in, the decision comes out; the services supply the facts
// (RelationsSource) from the organisation and case events they hold. Deny by default.

// The verified caller (from the token; never from request fields).
struct Principal {
  std::string user_id;
  std::string tenant_id;
  common::v1::Role role = common::v1::ROLE_UNSPECIFIED;
};

// How the caller stands to one case the request names.
struct CaseRelations {
  enum class Where {
    kInTenant,     // a case of the caller's tenant
    kOtherTenant,  // a case of another tenant: refused as NOT_FOUND, whatever the rules
    kUnknown,      // no such case (or the service cannot tell)
  };
  std::string case_id;
  Where where = Where::kUnknown;
  bool assigned = false;         // the caller is its case manager (pending or accepted)
  bool care_team = false;        // the caller is a staff member of its care team
  bool team_supervisor = false;  // the caller supervises its team (or its manager's team)
  bool unassigned = false;       // nobody is assigned, or it is waitlisted
  // An emergency grant of the caller on this case, active now ("" when none).
  std::string emergency_grant_id;
};

// Everything a decision needs besides the policy and the principal.
struct Relations {
  std::vector<CaseRelations> cases;  // one per case the request names
  // The person the request is about (subject_path), resolved; "" means the caller.
  std::string subject_id;
  // The request named a resource (a calendar) the service could not map to a person.
  bool subject_unresolved = false;
  bool supervises_subject = false;  // the caller supervises a team the subject is in
};

struct Decision {
  bool allowed = false;
  // The index of the rule in policy.allow that allowed the call (-1 when refused).
  int rule = -1;
  // "tenant", "assigned", ..., or "emergency" (allowed only by a grant); "" when refused.
  std::string relationship;
  // The grant that allowed the call (break-the-glass), or "".
  std::string emergency_grant_id;
  // Why the call was refused (the access record's denial_reason vocabulary):
  //   "no_policy"           the method declares no allow rules (never served),
  //   "role_not_permitted"  no rule names the caller's role,
  //   "other_tenant"        a named case belongs to another tenant (answered NOT_FOUND),
  //   "case_not_found"      the rules need a case and a named one does not exist,
  //   "no_relationship"     the role is allowed, but not in any relationship it holds.
  std::string denial_reason;
};

// The decision for `principal` calling a method with `policy`, given `relations`.
//  * A role that no rule names is refused ("role_not_permitted"), whatever is named.
//  * Any named case in another tenant refuses ("other_tenant"), whatever the rules.
//  * Rules are tried in declaration order; the first whose role is the caller's and whose
//    relationship holds allows. RELATIONSHIP_TENANT always holds; a case relationship holds
//    when the request names at least one case and it holds for every named case; SELF when
//    the subject is the caller (or empty); SUPERVISES when the caller supervises the subject.
//  * Break the glass: when no rule holds, a rule of the caller's role with a case
//    relationship allows if the caller holds an active emergency grant on every named case.
Decision Decide(const common::v1::AccessPolicy& policy, const Principal& principal, const Relations& relations);

// True when some rule of `policy` names `role` (checked before any handler runs).
bool RoleMayCall(const common::v1::AccessPolicy& policy, common::v1::Role role);

// "assigned" for RELATIONSHIP_ASSIGNED, ... ("" for UNSPECIFIED).
std::string RelationshipName(common::v1::Relationship relationship);
// Whether a relationship is about a case the request names.
bool IsCaseRelationship(common::v1::Relationship relationship);

// Minimum necessary: clears every field of `response` that no path of `visible_paths`
// ("response.case.patient.given_name"; a path naming a message keeps all below it) reaches.
// Returns true when something was cleared. Paths are checked by ValidatePolicy.
bool KeepOnly(google::protobuf::Message& response, const google::protobuf::RepeatedPtrField<std::string>& visible_paths);

}  // namespace clinical::access

#pragma once

// The organisation aggregate's rules (one per tenant: id relations::OrganisationId(tenant),
// aggregate type "organisation", events clinical.case.v1.OrganisationEvent on their own
// topic). Its state is the shared fold every service uses (relations::OrganisationFacts,
// relations::ApplyOrganisationEvent), so what the case service decides on is exactly what
// the others decide access with. Field checks are the API's (validation.cc); these are the
// rules that read the state. Pure.

#include "absl/status/statusor.h"
#include "clinical/case/v1/case_service.pb.h"
#include "clinical/case/v1/events.pb.h"
#include "clinical/relations/facts.h"

namespace clinical::case_service {

namespace v1 = ::clinical::case_::v1;

// The tenant's privacy officers and emergency-access limit, as given (a whole new
// configuration, not a change).
absl::StatusOr<v1::OrganisationEvent> DecideOrganisation(const relations::OrganisationFacts& organisation,
                                                         const v1::ConfigureOrganisationRequest& command);

// One team as it stands from now on. FAILED_PRECONDITION when another team of the tenant
// already has its name (people pick teams by name; two alike would be confused).
absl::StatusOr<v1::OrganisationEvent> DecideOrganisation(const relations::OrganisationFacts& organisation,
                                                         const v1::SetTeamRequest& command);

}  // namespace clinical::case_service

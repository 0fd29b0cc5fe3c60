#include "organisation.h"

#include "absl/strings/str_cat.h"

namespace clinical::case_service {

absl::StatusOr<v1::OrganisationEvent> DecideOrganisation(const relations::OrganisationFacts& /*organisation*/,
                                                         const v1::ConfigureOrganisationRequest& command) {
  v1::OrganisationEvent event;
  v1::OrganisationConfigured* configured = event.mutable_organisation_configured();
  *configured->mutable_privacy_officer_ids() = command.privacy_officer_ids();
  configured->set_emergency_access_max_minutes(command.emergency_access_max_minutes());
  return event;
}

absl::StatusOr<v1::OrganisationEvent> DecideOrganisation(const relations::OrganisationFacts& organisation,
                                                         const v1::SetTeamRequest& command) {
  const v1::Team& team = command.team();
  for (const auto& [id, existing] : organisation.teams) {
    if (id != team.team_id() && existing.name() == team.name()) {
      return absl::FailedPreconditionError(absl::StrCat("team ", id, " already has this name"));
    }
  }
  v1::OrganisationEvent event;
  *event.mutable_team_set()->mutable_team() = team;
  return event;
}

}  // namespace clinical::case_service

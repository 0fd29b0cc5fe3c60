#pragma once

// Sets up a tenant's organisation (privacy officers, teams with supervisors and members)
// through the case service's API, as an administrator would: what the access policies
// decide team supervision on (RELATIONSHIP_TEAM_SUPERVISOR, RELATIONSHIP_SUPERVISES), so a
// test that acts as a supervisor first gives the supervisor a team.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "clinical/case/v1/case_service.grpc.pb.h"

namespace clinical::testing {

struct TeamSetup {
  std::string team_id;
  std::string name;  // defaults to team_id
  std::vector<std::string> supervisor_ids;
  std::vector<std::string> member_ids;
};

struct OrganisationSetup {
  std::string tenant;
  // Who configures it (role administrator in `tenant`).
  std::string administrator = "admin-setup";
  std::vector<std::string> privacy_officer_ids = {"privacy-setup"};
  int32_t emergency_access_max_minutes = 0;  // 0: the platform default
  std::vector<TeamSetup> teams;
};

// ConfigureOrganisation, then SetTeam for each team, as `setup.administrator`. Idempotent:
// the command ids are derived from the requests, so running the same setup again (a
// restarted suite, a retry) writes nothing new. The first failing call's status.
absl::Status ConfigureOrganisationThroughApi(case_::v1::CaseService::Stub& stub, const OrganisationSetup& setup);

}  // namespace clinical::testing

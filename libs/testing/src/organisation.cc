#include "clinical/testing/organisation.h"

#include <functional>

#include "absl/strings/str_cat.h"
#include "clinical/testing/identity.h"

namespace clinical::testing {
namespace {

namespace v1 = ::clinical::case_::v1;

// The same request content, the same command id: a rerun is a retry, not a new change.
std::string CommandIdFor(const std::string& kind, const google::protobuf::Message& request) {
  std::string bytes;
  request.SerializeToString(&bytes);
  return absl::StrCat("setup-", kind, "-", std::hash<std::string>()(bytes));
}

absl::Status FromGrpc(const grpc::Status& status, const std::string& what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

}  // namespace

absl::Status ConfigureOrganisationThroughApi(v1::CaseService::Stub& stub, const OrganisationSetup& setup) {
  const Person administrator{setup.administrator, "administrator", setup.tenant};
  v1::ConfigureOrganisationRequest configure;
  for (const std::string& id : setup.privacy_officer_ids) configure.add_privacy_officer_ids(id);
  configure.set_emergency_access_max_minutes(setup.emergency_access_max_minutes);
  configure.set_command_id(CommandIdFor("organisation", configure));
  v1::ConfigureOrganisationResponse configured;
  auto context = ContextAs(administrator);
  if (absl::Status s = FromGrpc(stub.ConfigureOrganisation(context.get(), configure, &configured),
                                "ConfigureOrganisation");
      !s.ok()) {
    return s;
  }
  for (const TeamSetup& team : setup.teams) {
    v1::SetTeamRequest set;
    set.mutable_team()->set_team_id(team.team_id);
    set.mutable_team()->set_name(team.name.empty() ? team.team_id : team.name);
    for (const std::string& id : team.supervisor_ids) set.mutable_team()->add_supervisor_ids(id);
    for (const std::string& id : team.member_ids) set.mutable_team()->add_member_ids(id);
    set.set_command_id(CommandIdFor(absl::StrCat("team-", team.team_id), set));
    v1::SetTeamResponse done;
    auto team_context = ContextAs(administrator);
    if (absl::Status s = FromGrpc(stub.SetTeam(team_context.get(), set, &done), absl::StrCat("SetTeam ", team.team_id));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace clinical::testing

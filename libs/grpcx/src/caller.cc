#include "clinical/grpcx/caller.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace clinical::grpcx {
namespace {

std::string Header(const grpc::ServerContextBase& context, const char* name) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(name);
  if (it == metadata.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

}  // namespace

common::v1::Role ParseRole(std::string_view text) {
  const std::string name = absl::StrCat("ROLE_", absl::AsciiStrToUpper(std::string(text)));
  common::v1::Role role = common::v1::ROLE_UNSPECIFIED;
  if (!common::v1::Role_Parse(name, &role)) return common::v1::ROLE_UNSPECIFIED;
  return role;
}

absl::StatusOr<Caller> CallerFrom(const grpc::ServerContextBase& context) {
  Caller caller;
  const std::string user = Header(context, kUserHeader);
  const std::string role = Header(context, kRoleHeader);
  caller.tenant_id = Header(context, kTenantHeader);
  if (user.empty()) return absl::UnauthenticatedError(absl::StrCat("missing ", kUserHeader));
  if (caller.tenant_id.empty()) {
    return absl::UnauthenticatedError(absl::StrCat("missing ", kTenantHeader));
  }
  caller.actor.set_user_id(user);
  caller.actor.set_role(ParseRole(role));
  if (caller.actor.role() == common::v1::ROLE_UNSPECIFIED) {
    return absl::UnauthenticatedError(absl::StrCat("missing or unknown ", kRoleHeader));
  }
  caller.actor.set_on_behalf_of(Header(context, kOnBehalfOfHeader));
  caller.trace.set_traceparent(Header(context, kTraceparentHeader));
  caller.peer = context.peer();
  return caller;
}

}  // namespace clinical::grpcx

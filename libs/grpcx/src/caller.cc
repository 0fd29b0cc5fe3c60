#include "clinical/grpcx/caller.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace clinical::grpcx {

common::v1::Role ParseRole(std::string_view text) {
  const std::string name = absl::StrCat("ROLE_", absl::AsciiStrToUpper(std::string(text)));
  common::v1::Role role = common::v1::ROLE_UNSPECIFIED;
  if (!common::v1::Role_Parse(name, &role)) return common::v1::ROLE_UNSPECIFIED;
  return role;
}

std::string RoleName(common::v1::Role role) {
  if (role == common::v1::ROLE_UNSPECIFIED) return "";
  const std::string& name = common::v1::Role_Name(role);
  return name.size() > 5 ? absl::AsciiStrToLower(name.substr(5)) : "";  // drop "ROLE_"
}

}  // namespace clinical::grpcx

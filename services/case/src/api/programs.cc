#include "programs.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace clinical::case_service {
namespace {

absl::Status ParsePrograms(const nlohmann::json& node, const std::string& path,
                           std::map<std::string, ProgramRules>* out) {
  if (!node.is_object() || !node.contains("programs") || !node["programs"].is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ".programs must be an object"));
  }
  for (const auto& [code, rules] : node["programs"].items()) {
    const std::string where = absl::StrCat(path, ".programs.", code);
    if (code.empty() || code.size() > 64) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".programs: bad program code"));
    }
    if (!rules.is_object() || !rules.contains("caseload_limit") ||
        !rules["caseload_limit"].is_number_integer() || rules["caseload_limit"].get<int>() < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".caseload_limit must be a positive integer"));
    }
    ProgramRules program;
    program.code = code;
    program.caseload_limit = rules["caseload_limit"].get<int32_t>();
    if (rules.contains("closure_requires_approval")) {
      if (!rules["closure_requires_approval"].is_boolean()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".closure_requires_approval must be a boolean"));
      }
      program.closure_requires_approval = rules["closure_requires_approval"].get<bool>();
    }
    (*out)[code] = program;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ProgramCatalog> ProgramCatalog::Parse(const std::string& json_text) {
  auto root = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError("programs file is not a JSON object");
  }
  ProgramCatalog catalog;
  if (!root.contains("default")) return absl::InvalidArgumentError("programs file needs 'default'");
  if (auto s = ParsePrograms(root["default"], "default", &catalog.default_); !s.ok()) return s;
  if (root.contains("tenants")) {
    if (!root["tenants"].is_object()) return absl::InvalidArgumentError("tenants must be an object");
    for (const auto& [tenant, node] : root["tenants"].items()) {
      if (auto s = ParsePrograms(node, absl::StrCat("tenants.", tenant), &catalog.tenants_[tenant]);
          !s.ok()) {
        return s;
      }
    }
  }
  return catalog;
}

absl::StatusOr<ProgramCatalog> ProgramCatalog::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("programs file cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str());
}

const ProgramRules* ProgramCatalog::Find(const std::string& tenant_id,
                                         const std::string& program) const {
  auto tenant = tenants_.find(tenant_id);
  const Programs& programs = tenant != tenants_.end() ? tenant->second : default_;
  auto it = programs.find(program);
  return it == programs.end() ? nullptr : &it->second;
}

size_t ProgramCatalog::size() const {
  size_t n = default_.size();
  for (const auto& [tenant, programs] : tenants_) n += programs.size();
  return n;
}

}  // namespace clinical::case_service

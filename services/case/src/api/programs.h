#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "case_domain.h"

namespace clinical::case_service {

// The programs each tenant offers and their rules, from a JSON file
// (services/case/config/programs.json):
//   {"default": {"programs": {"elder_care": {"caseload_limit": 60,
//                                           "closure_requires_approval": true}, ...}},
//    "tenants": {"<tenant id>": {"programs": {...}}}}
// A tenant with its own entry gets exactly its programs; others get "default".
// Immutable after loading; thread-safe.
class ProgramCatalog {
 public:
  // INVALID_ARGUMENT naming the JSON path of the first problem.
  static absl::StatusOr<ProgramCatalog> Parse(const std::string& json_text);
  static absl::StatusOr<ProgramCatalog> Load(const std::string& path);

  // nullptr when the tenant does not offer the program.
  const ProgramRules* Find(const std::string& tenant_id, const std::string& program) const;
  size_t size() const;

 private:
  using Programs = std::map<std::string, ProgramRules>;
  Programs default_;
  std::map<std::string, Programs> tenants_;
};

}  // namespace clinical::case_service

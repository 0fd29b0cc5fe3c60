#include "clinical/access/relations.h"

#include <algorithm>
#include <vector>

#include "clinical/access/policy.h"

namespace clinical::access {
namespace {

CaseRelations Unknown(const std::string& case_id) {
  CaseRelations relations;
  relations.case_id = case_id;
  relations.where = CaseRelations::Where::kUnknown;
  return relations;
}

}  // namespace

absl::StatusOr<std::string> RelationsSource::CaseOf(const Principal& /*principal*/,
                                                    const std::string& /*resource_id*/) const {
  return std::string();
}

absl::StatusOr<std::string> RelationsSource::SubjectOf(const Principal& /*principal*/,
                                                       const std::string& value) const {
  return value;
}

absl::StatusOr<Relations> RelationsFor(const common::v1::AccessPolicy& policy, const Principal& principal,
                                       const google::protobuf::Message& request, const RelationsSource* source) {
  bool subject_rules = false, supervises_rules = false;
  for (const common::v1::AccessRule& rule : policy.allow()) {
    if (rule.role() != principal.role) continue;
    subject_rules |= rule.relationship() == common::v1::RELATIONSHIP_SELF ||
                     rule.relationship() == common::v1::RELATIONSHIP_SUPERVISES;
    supervises_rules |= rule.relationship() == common::v1::RELATIONSHIP_SUPERVISES;
  }
  Relations relations;
  // Every named case is looked up whatever the rules: the tenant boundary applies to all.
  std::vector<std::string> case_ids;
  NamedCases(request, policy, case_ids);
  if (!policy.case_of_path().empty() && source != nullptr) {
    if (const std::string resource = NamedValue(request, policy.case_of_path()); !resource.empty()) {
      absl::StatusOr<std::string> owner = source->CaseOf(principal, resource);
      if (!owner.ok()) return owner.status();
      if (owner->empty()) {
        relations.cases.push_back(Unknown(""));
      } else if (std::find(case_ids.begin(), case_ids.end(), *owner) == case_ids.end()) {
        case_ids.push_back(*owner);
      }
    }
  }
  for (const std::string& case_id : case_ids) {
    if (source == nullptr) {
      relations.cases.push_back(Unknown(case_id));
      continue;
    }
    absl::StatusOr<CaseRelations> found = source->RelationsTo(principal, case_id);
    if (!found.ok()) return found.status();
    relations.cases.push_back(*std::move(found));
  }
  if (subject_rules && !policy.subject_path().empty()) {
    const std::string named = NamedValue(request, policy.subject_path());
    if (!named.empty()) {
      if (source != nullptr) {
        absl::StatusOr<std::string> subject = source->SubjectOf(principal, named);
        if (!subject.ok()) return subject.status();
        relations.subject_id = *subject;
        // A resource the service cannot map to a person is nobody's: SELF does not hold.
        relations.subject_unresolved = relations.subject_id.empty();
      } else {
        relations.subject_id = named;
      }
    }
    if (supervises_rules && source != nullptr && !relations.subject_id.empty() &&
        relations.subject_id != principal.user_id) {
      absl::StatusOr<bool> supervises = source->Supervises(principal, relations.subject_id);
      if (!supervises.ok()) return supervises.status();
      relations.supervises_subject = *supervises;
    }
  }
  return relations;
}

}  // namespace clinical::access

#include "clinical/access/decision.h"

#include <map>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "clinical/access/policy.h"
#include "google/protobuf/reflection.h"

namespace clinical::access {
namespace {

using common::v1::Relationship;

bool HoldsForEveryCase(const Relations& relations, bool CaseRelations::*flag) {
  if (relations.cases.empty()) return false;
  for (const CaseRelations& c : relations.cases) {
    if (c.where != CaseRelations::Where::kInTenant || !(c.*flag)) return false;
  }
  return true;
}

bool Holds(Relationship relationship, const Principal& principal, const Relations& relations) {
  switch (relationship) {
    case common::v1::RELATIONSHIP_TENANT:
      return true;
    case common::v1::RELATIONSHIP_ASSIGNED:
      return HoldsForEveryCase(relations, &CaseRelations::assigned);
    case common::v1::RELATIONSHIP_CARE_TEAM:
      return HoldsForEveryCase(relations, &CaseRelations::care_team);
    case common::v1::RELATIONSHIP_TEAM_SUPERVISOR:
      return HoldsForEveryCase(relations, &CaseRelations::team_supervisor);
    case common::v1::RELATIONSHIP_UNASSIGNED:
      return HoldsForEveryCase(relations, &CaseRelations::unassigned);
    case common::v1::RELATIONSHIP_SELF:
      if (relations.subject_unresolved) return false;
      return relations.subject_id.empty() || relations.subject_id == principal.user_id;
    case common::v1::RELATIONSHIP_SUPERVISES:
      return !relations.subject_id.empty() && relations.subject_id != principal.user_id &&
             relations.supervises_subject;
    default:
      return false;
  }
}

// The grant that lets the caller in on every named case, or "".
std::string EmergencyGrant(const Relations& relations) {
  if (relations.cases.empty()) return "";
  for (const CaseRelations& c : relations.cases) {
    if (c.where != CaseRelations::Where::kInTenant || c.emergency_grant_id.empty()) return "";
  }
  return relations.cases.front().emergency_grant_id;
}

Decision Refused(std::string reason) {
  Decision decision;
  decision.denial_reason = std::move(reason);
  return decision;
}

// The visible paths as a tree of field names; a leaf keeps everything below it.
struct PathTree {
  std::map<std::string, std::unique_ptr<PathTree>, std::less<>> children;
};

bool Prune(google::protobuf::Message& message, const PathTree& tree) {
  const google::protobuf::Reflection* reflection = message.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  bool cleared = false;
  for (const google::protobuf::FieldDescriptor* field : fields) {
    auto it = tree.children.find(field->name());
    if (it == tree.children.end()) {
      reflection->ClearField(&message, field);
      cleared = true;
      continue;
    }
    const PathTree& below = *it->second;
    if (below.children.empty() || field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (field->is_repeated()) {
      const int n = reflection->FieldSize(message, field);
      for (int i = 0; i < n; ++i) cleared |= Prune(*reflection->MutableRepeatedMessage(&message, field, i), below);
    } else {
      cleared |= Prune(*reflection->MutableMessage(&message, field), below);
    }
  }
  return cleared;
}

}  // namespace

bool IsCaseRelationship(Relationship relationship) {
  return relationship == common::v1::RELATIONSHIP_ASSIGNED || relationship == common::v1::RELATIONSHIP_CARE_TEAM ||
         relationship == common::v1::RELATIONSHIP_TEAM_SUPERVISOR ||
         relationship == common::v1::RELATIONSHIP_UNASSIGNED;
}

std::string RelationshipName(Relationship relationship) {
  if (relationship == common::v1::RELATIONSHIP_UNSPECIFIED) return "";
  const std::string& name = common::v1::Relationship_Name(relationship);
  constexpr std::string_view kPrefix = "RELATIONSHIP_";
  return name.size() > kPrefix.size() ? absl::AsciiStrToLower(name.substr(kPrefix.size())) : "";
}

bool RoleMayCall(const common::v1::AccessPolicy& policy, common::v1::Role role) {
  if (role == common::v1::ROLE_UNSPECIFIED) return false;
  for (const common::v1::AccessRule& rule : policy.allow()) {
    if (rule.role() == role) return true;
  }
  return false;
}

Decision Decide(const common::v1::AccessPolicy& policy, const Principal& principal, const Relations& relations) {
  if (policy.allow().empty()) return Refused("no_policy");
  // A role no rule names is refused whatever the request names (the Authenticator does so
  // before any handler runs), so the answer reveals nothing about the cases it names.
  if (!RoleMayCall(policy, principal.role)) return Refused("role_not_permitted");
  // Then tenant boundaries, never bypassed, not even by break-the-glass.
  for (const CaseRelations& c : relations.cases) {
    if (c.where == CaseRelations::Where::kOtherTenant) return Refused("other_tenant");
  }
  bool needs_case = false;
  for (int i = 0; i < policy.allow_size(); ++i) {
    const common::v1::AccessRule& rule = policy.allow(i);
    if (rule.role() != principal.role) continue;
    if (Holds(rule.relationship(), principal, relations)) {
      Decision decision;
      decision.allowed = true;
      decision.rule = i;
      decision.relationship = RelationshipName(rule.relationship());
      return decision;
    }
    needs_case |= IsCaseRelationship(rule.relationship());
  }
  if (needs_case) {
    if (const std::string grant = EmergencyGrant(relations); !grant.empty()) {
      for (int i = 0; i < policy.allow_size(); ++i) {
        const common::v1::AccessRule& rule = policy.allow(i);
        if (rule.role() != principal.role || !IsCaseRelationship(rule.relationship())) continue;
        Decision decision;
        decision.allowed = true;
        decision.rule = i;
        decision.relationship = "emergency";
        decision.emergency_grant_id = grant;
        return decision;
      }
    }
    for (const CaseRelations& c : relations.cases) {
      if (c.where == CaseRelations::Where::kUnknown) return Refused("case_not_found");
    }
  }
  return Refused("no_relationship");
}

bool KeepOnly(google::protobuf::Message& response, const google::protobuf::RepeatedPtrField<std::string>& visible_paths) {
  if (visible_paths.empty()) return false;
  PathTree root;
  for (const std::string& path : visible_paths) {
    auto split = SplitPath(path);
    if (!split.has_value() || split->first != PathRoot::kResponse) continue;
    PathTree* node = &root;
    bool whole = false;
    for (const std::string& part : std::vector<std::string>(absl::StrSplit(split->second, '.'))) {
      auto [it, inserted] = node->children.try_emplace(part);
      if (inserted) {
        it->second = std::make_unique<PathTree>();
      } else if (it->second->children.empty()) {
        whole = true;  // an ancestor is already visible whole
        break;
      }
      node = it->second.get();
    }
    // A shorter path than one seen before makes the whole subtree visible.
    if (!whole) node->children.clear();
  }
  return Prune(response, root);
}

}  // namespace clinical::access

#include "clinical/access/policy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "clinical/access/decision.h"
#include "google/protobuf/reflection.h"

namespace clinical::access {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

void AddUnique(std::string value, std::vector<std::string>& out) {
  if (value.empty()) return;
  if (std::find(out.begin(), out.end(), value) == out.end()) out.push_back(std::move(value));
}

// Walks `parts[index..]` from `message`, collecting string values at the leaf.
void Walk(const Message& message, const std::vector<std::string>& parts, size_t index,
          std::vector<std::string>& out) {
  const Descriptor* descriptor = message.GetDescriptor();
  const FieldDescriptor* field = descriptor->FindFieldByName(parts[index]);
  if (field == nullptr) return;
  const Reflection* reflection = message.GetReflection();
  const bool leaf = index + 1 == parts.size();
  if (leaf) {
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_STRING) return;
    if (field->is_repeated()) {
      const int n = reflection->FieldSize(message, field);
      for (int i = 0; i < n; ++i) AddUnique(reflection->GetRepeatedString(message, field, i), out);
    } else {
      AddUnique(reflection->GetString(message, field), out);
    }
    return;
  }
  if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return;
  if (field->is_repeated()) {
    const int n = reflection->FieldSize(message, field);
    for (int i = 0; i < n; ++i) Walk(reflection->GetRepeatedMessage(message, field, i), parts, index + 1, out);
  } else if (reflection->HasField(message, field)) {
    Walk(reflection->GetMessage(message, field), parts, index + 1, out);
  }
}

// OK when `field_path` resolves on `type` through message fields to a string leaf (or, with
// `any_leaf`, to any field: visible paths may name messages and scalars).
absl::Status Resolve(const Descriptor* type, std::string_view field_path, bool any_leaf) {
  const std::vector<std::string> parts = absl::StrSplit(std::string(field_path), '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const FieldDescriptor* field = type->FindFieldByName(parts[i]);
    if (field == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("no field '", parts[i], "' in ", type->full_name()));
    }
    const bool leaf = i + 1 == parts.size();
    if (leaf && !any_leaf && field->cpp_type() != FieldDescriptor::CPPTYPE_STRING) {
      return absl::InvalidArgumentError(absl::StrCat(field->full_name(), " is not a string field"));
    }
    if (!leaf) {
      if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
        return absl::InvalidArgumentError(absl::StrCat(field->full_name(), " is not a message field"));
      }
      type = field->message_type();
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<MethodPolicy> PolicyFor(std::string_view grpc_method,
                                      const google::protobuf::DescriptorPool* pool) {
  // "/package.Service/Method"
  if (grpc_method.size() < 4 || grpc_method.front() != '/') return std::nullopt;
  const size_t slash = grpc_method.rfind('/');
  if (slash == 0) return std::nullopt;
  const std::string service_name(grpc_method.substr(1, slash - 1));
  const auto* service = pool->FindServiceByName(service_name);
  if (service == nullptr) return std::nullopt;
  const auto* method = service->FindMethodByName(std::string(grpc_method.substr(slash + 1)));
  if (method == nullptr || !method->options().HasExtension(common::v1::access)) return std::nullopt;
  return MethodPolicy{method, method->options().GetExtension(common::v1::access)};
}

bool IsRead(const google::protobuf::MethodDescriptor& method) {
  return method.input_type()->FindFieldByName("command_id") == nullptr;
}

absl::Status ValidatePolicy(const google::protobuf::MethodDescriptor& method,
                            const common::v1::AccessPolicy& policy) {
  auto invalid = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(method.full_name(), ": ", parts...));
  };
  const bool recording = !policy.resource_type().empty();
  const bool exempt = !policy.exempt_reason().empty();
  if (IsRead(method)) {
    if (recording == exempt) return invalid("a read sets exactly one of resource_type and exempt_reason");
  } else if (recording || exempt) {
    return invalid("a write is recorded as its events: no resource_type or exempt_reason");
  }
  if (exempt && (policy.case_id_paths_size() > 0 || policy.resource_id_paths_size() > 0)) {
    return invalid("an exempt method names no ids");
  }
  if (recording && policy.case_id_paths_size() + policy.resource_id_paths_size() == 0) {
    return invalid("names no id paths");
  }
  auto check_path = [&](const std::string& path, std::optional<PathRoot> only,
                        bool any_leaf) -> absl::Status {
    auto split = SplitPath(path);
    if (!split.has_value() || split->second.empty()) {
      return invalid("path '", path, "' must start with request. or response.");
    }
    if (only.has_value() && split->first != *only) {
      return invalid("path '", path, "' must start with ", *only == PathRoot::kRequest ? "request." : "response.");
    }
    const Descriptor* type = split->first == PathRoot::kRequest ? method.input_type() : method.output_type();
    if (absl::Status s = Resolve(type, split->second, any_leaf); !s.ok()) {
      return invalid("path '", path, "': ", std::string(s.message()));
    }
    return absl::OkStatus();
  };
  for (const auto* paths : {&policy.case_id_paths(), &policy.resource_id_paths()}) {
    for (const std::string& path : *paths) {
      if (absl::Status s = check_path(path, std::nullopt, false); !s.ok()) return s;
    }
  }
  // Deny by default: a method nobody may call is a mistake, not a policy.
  if (policy.allow().empty()) return invalid("declares no allow rule");
  bool subject_rule = false, case_rule = false;
  for (const common::v1::AccessRule& rule : policy.allow()) {
    if (rule.role() == common::v1::ROLE_UNSPECIFIED) return invalid("a rule names no role");
    if (rule.relationship() == common::v1::RELATIONSHIP_UNSPECIFIED) return invalid("a rule names no relationship");
    subject_rule |= rule.relationship() == common::v1::RELATIONSHIP_SELF ||
                    rule.relationship() == common::v1::RELATIONSHIP_SUPERVISES;
    case_rule |= IsCaseRelationship(rule.relationship());
    for (const std::string& path : rule.visible_paths()) {
      if (absl::Status s = check_path(path, PathRoot::kResponse, true); !s.ok()) return s;
    }
  }
  if (subject_rule && policy.subject_path().empty()) return invalid("SELF/SUPERVISES rules need subject_path");
  if (!policy.subject_path().empty()) {
    if (absl::Status s = check_path(policy.subject_path(), PathRoot::kRequest, false); !s.ok()) return s;
  }
  if (!policy.case_of_path().empty()) {
    if (absl::Status s = check_path(policy.case_of_path(), PathRoot::kRequest, false); !s.ok()) return s;
  }
  if (case_rule) {
    const Descriptor* request = method.input_type();
    bool names_case = request->FindFieldByName("case_id") != nullptr ||
                      request->FindFieldByName("case_ids") != nullptr || !policy.case_of_path().empty();
    for (const std::string& path : policy.case_id_paths()) {
      auto split = SplitPath(path);
      names_case |= split.has_value() && split->first == PathRoot::kRequest;
    }
    if (!names_case) return invalid("case relationships need a request that names a case");
  }
  return absl::OkStatus();
}

void NamedCases(const Message& request, const common::v1::AccessPolicy& policy, std::vector<std::string>& out) {
  ExtractIdsFor(request, PathRoot::kRequest, policy.case_id_paths(), out);
  ExtractIds(request, "case_id", out);
  ExtractIds(request, "case_ids", out);
}

std::string NamedValue(const Message& request, const std::string& path) {
  auto split = SplitPath(path);
  if (!split.has_value() || split->first != PathRoot::kRequest) return "";
  std::vector<std::string> values;
  ExtractIds(request, split->second, values);
  return values.empty() ? "" : values.front();
}

std::optional<std::pair<PathRoot, std::string>> SplitPath(std::string_view path) {
  constexpr std::string_view kRequest = "request.";
  constexpr std::string_view kResponse = "response.";
  if (path.substr(0, kRequest.size()) == kRequest) {
    return std::make_pair(PathRoot::kRequest, std::string(path.substr(kRequest.size())));
  }
  if (path.substr(0, kResponse.size()) == kResponse) {
    return std::make_pair(PathRoot::kResponse, std::string(path.substr(kResponse.size())));
  }
  return std::nullopt;
}

void ExtractIds(const Message& message, std::string_view field_path, std::vector<std::string>& out) {
  if (field_path.empty()) return;
  const std::vector<std::string> parts = absl::StrSplit(std::string(field_path), '.');
  Walk(message, parts, 0, out);
}

void ExtractIdsFor(const Message& message, PathRoot root,
                   const google::protobuf::RepeatedPtrField<std::string>& paths,
                   std::vector<std::string>& out) {
  for (const std::string& path : paths) {
    auto split = SplitPath(path);
    if (split.has_value() && split->first == root) ExtractIds(message, split->second, out);
  }
}

audit::v1::AccessOutcome OutcomeFor(int grpc_code, bool marked_denied) {
  constexpr int kOk = 0, kPermissionDenied = 7, kUnauthenticated = 16;
  if (marked_denied || grpc_code == kPermissionDenied || grpc_code == kUnauthenticated) {
    return audit::v1::ACCESS_OUTCOME_DENIED;
  }
  return grpc_code == kOk ? audit::v1::ACCESS_OUTCOME_ALLOWED : audit::v1::ACCESS_OUTCOME_FAILED;
}

std::string ServiceOf(std::string_view grpc_method) {
  const size_t slash = grpc_method.rfind('/');
  if (grpc_method.empty() || grpc_method.front() != '/' || slash == 0 || slash == std::string_view::npos) {
    return "";
  }
  return std::string(grpc_method.substr(1, slash - 1));
}

}  // namespace clinical::access

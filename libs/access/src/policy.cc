#include "clinical/access/policy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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

// OK when `field_path` resolves on `type` to a string leaf through message fields.
absl::Status Resolve(const Descriptor* type, std::string_view field_path) {
  const std::vector<std::string> parts = absl::StrSplit(std::string(field_path), '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    const FieldDescriptor* field = type->FindFieldByName(parts[i]);
    if (field == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("no field '", parts[i], "' in ", type->full_name()));
    }
    const bool leaf = i + 1 == parts.size();
    if (leaf && field->cpp_type() != FieldDescriptor::CPPTYPE_STRING) {
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
  const bool recording = !policy.resource_type().empty();
  const bool exempt = !policy.exempt_reason().empty();
  if (recording == exempt) {
    return absl::InvalidArgumentError(absl::StrCat(
        method.full_name(), ": set exactly one of resource_type and exempt_reason"));
  }
  if (exempt && (policy.case_id_paths_size() > 0 || policy.resource_id_paths_size() > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(method.full_name(), ": an exempt method names no ids"));
  }
  if (recording && policy.case_id_paths_size() + policy.resource_id_paths_size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(method.full_name(), ": names no id paths"));
  }
  for (const auto* paths : {&policy.case_id_paths(), &policy.resource_id_paths()}) {
    for (const std::string& path : *paths) {
      auto split = SplitPath(path);
      if (!split.has_value() || split->second.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            method.full_name(), ": path '", path, "' must start with request. or response."));
      }
      const Descriptor* type =
          split->first == PathRoot::kRequest ? method.input_type() : method.output_type();
      if (absl::Status s = Resolve(type, split->second); !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(method.full_name(), ": path '", path, "': ", std::string(s.message())));
      }
    }
  }
  return absl::OkStatus();
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

#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "clinical/audit/v1/access.pb.h"
#include "clinical/common/v1/access_policy.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace clinical::access {

// The pure parts of access recording: which RPCs are reads of patient data (declared in
// the protos with the `clinical.common.v1.access` method option), where the ids are, and
// what a status code means for the record. No I/O here; every function is thread-safe.

// A method's access option, looked up by its full gRPC path.
struct MethodPolicy {
  const google::protobuf::MethodDescriptor* method = nullptr;
  common::v1::AccessPolicy policy;
  // True when calls must be recorded (resource_type set); false for declared exemptions.
  bool records() const { return !policy.resource_type().empty(); }
};

// "/clinical.case.v1.CaseService/GetCase" -> its descriptor and option, from `pool`
// (the generated pool by default: every linked service proto is in it). nullopt when the
// method is unknown or carries no access option.
std::optional<MethodPolicy> PolicyFor(
    std::string_view grpc_method,
    const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool());

// The platform's rule for "read": a request without a `command_id` field (every mutating
// RPC carries one, docs/architecture.md). Every read must carry the access option.
bool IsRead(const google::protobuf::MethodDescriptor& method);

// OK when the policy can be enforced as written: at least one allow rule, each with a role
// and a relationship; a read either recording (resource_type) or exempt (with a reason),
// a write neither; every id path resolving to a string field of the request or response;
// visible paths resolving on the response; SELF/SUPERVISES rules with a subject_path; case
// relationships on a request that names a case. INVALID_ARGUMENT naming the method and the
// problem otherwise.
absl::Status ValidatePolicy(const google::protobuf::MethodDescriptor& method,
                            const common::v1::AccessPolicy& policy);

// The cases a request names for the case relationships: the request paths of
// case_id_paths and the request's own `case_id` / `case_ids` fields (not case_of_path,
// whose value the service maps to a case).
void NamedCases(const google::protobuf::Message& request, const common::v1::AccessPolicy& policy,
                std::vector<std::string>& out);

// The first value at a "request.x.y" path of `request` ("" when none): the subject_path
// and case_of_path values.
std::string NamedValue(const google::protobuf::Message& request, const std::string& path);

// Which message a path reads from.
enum class PathRoot { kRequest, kResponse };

// Splits "request.a.b" into (kRequest, "a.b"); nullopt when the prefix is neither.
std::optional<std::pair<PathRoot, std::string>> SplitPath(std::string_view path);

// The non-empty string values at `field_path` ("a.b.c", relative to `message`), following
// singular and repeated message fields in order; appended to `out` unless already there.
// A path that does not resolve (unknown field, non-string leaf) yields nothing; unset
// singular messages yield nothing.
void ExtractIds(const google::protobuf::Message& message, std::string_view field_path,
                std::vector<std::string>& out);

// The ids that `paths` (with "request."/"response." prefixes) name in `message`, for the
// paths under `root` only.
void ExtractIdsFor(const google::protobuf::Message& message, PathRoot root,
                   const google::protobuf::RepeatedPtrField<std::string>& paths,
                   std::vector<std::string>& out);

// The outcome of a call that ended with `grpc_code` (google.rpc.Code): OK -> ALLOWED;
// PERMISSION_DENIED, UNAUTHENTICATED, or any code when the service marked the call denied
// (e.g. another tenant's case answered NOT_FOUND) -> DENIED; anything else -> FAILED.
audit::v1::AccessOutcome OutcomeFor(int grpc_code, bool marked_denied);

// "/clinical.case.v1.CaseService/GetCase" -> "clinical.case.v1.CaseService".
std::string ServiceOf(std::string_view grpc_method);

// Trailing metadata a handler may add to say "this was a refusal" when its status code
// cannot say so (NOT_FOUND for another tenant's data, so as not to reveal it exists). The
// access interceptor records DENIED and removes the entry before the status is sent.
inline constexpr char kDeniedTrailer[] = "x-clinical-access-denied";

}  // namespace clinical::access

#pragma once

#include "clinical/audit/v1/access.pb.h"
#include "google/protobuf/descriptor.h"

namespace clinical::access {

// The access policy of one service as the protos declare it, method by method in
// declaration order, with its version: the first 16 hex digits of the SHA-256 of the
// methods and policies, deterministically serialized (equal policies, equal versions).
// published_at is left unset. Services publish it when they start; the audit service
// re-checks past reads against the version each record names (RecheckAccess).
audit::v1::AccessPolicySnapshot SnapshotOf(const google::protobuf::ServiceDescriptor& service);

// The version of a service's policy, by full name ("clinical.case.v1.CaseService"), from the
// generated pool; "" for an unknown service. Computed once per service.
std::string PolicyVersionOf(const std::string& service);

}  // namespace clinical::access

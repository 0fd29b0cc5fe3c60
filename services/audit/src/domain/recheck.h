#pragma once

// Policy at the time (RecheckAccess, docs/audit-service.md "Policy at the time"), as pure
// functions: allowed reads, policy snapshots and events in, the reads that would have been
// denied out. No I/O, no clock.
//
// Each read is decided again with the platform's own engine (access::Decide) and folds
// (relations::ApplyCaseEvent, ApplyOrganisationEvent, RelationsTo, Supervises), against
//   * the policy its service enforced: the snapshot named by the record's policy_version,
//     method by method;
//   * the relationships as they stood at the read's occurred_at: every case and
//     organisation event whose occurred_at is at or before it, folded in occurred_at order
//     (ties in aggregate version order). A reassignment entered late with an earlier
//     occurred_at counts from when it took effect, not from when it was recorded.
// What a record keeps of its request is rebuilt (NamedCaseOf, SubjectOf below).

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "clinical/access/decision.h"
#include "clinical/audit/v1/access.pb.h"
#include "clinical/audit/v1/audit_service.pb.h"
#include "clinical/common/v1/access_policy.pb.h"
#include "clinical/common/v1/envelope.pb.h"

namespace clinical::audit {

// The findings' reasons besides Decide's own ("role_not_permitted", "no_relationship",
// "case_not_found", "other_tenant"): no policy is known for the read.
inline constexpr char kNoPolicy[] = "no_policy";

// The published snapshots, by "<service>@<version>" (the policy topic's key).
class PolicyIndex {
 public:
  // Snapshots without a service or version are ignored; of two with one key the first is
  // kept (equal versions are equal policies by construction).
  explicit PolicyIndex(const std::vector<audit::v1::AccessPolicySnapshot>& snapshots);
  // The policy of `read`'s method in the snapshot its policy_version names; null when there
  // is no such snapshot or it has no such method.
  const common::v1::AccessPolicy* PolicyOf(const audit::v1::ChainedRecord& read) const;

 private:
  std::map<std::string, std::map<std::string, common::v1::AccessPolicy>> methods_;
};

// The case a read's request named, when its policy decides by case relationships: a
// record lists the request's case ids before the response's (libs/grpcx access
// interceptor), and every such method names one case (request.case_id, or case_of_path's
// resource whose case the response names first), so it is case_ids[0]. Methods without
// case rules (tenant-wide, SELF, SUPERVISES) named none that matters: nullopt.
std::optional<std::string> NamedCaseOf(const audit::v1::ChainedRecord& read, const common::v1::AccessPolicy& policy);

// The person a read was about, for SELF and SUPERVISES rules: the value at the policy's
// subject_path, which the record keeps as its only resource id when that path is the
// method's only resource id path (GetCaseload, GetWorklist, SubscribeInbox; none recorded
// means the caller). Otherwise the record does not say, and "" (the caller, as the service
// took an empty subject) is assumed: SELF then holds as it did, SUPERVISES does not.
std::string SubjectOf(const audit::v1::ChainedRecord& read, const common::v1::AccessPolicy& policy);

// The cases whose events re-checking `reads` needs (NamedCaseOf of every read that has a
// policy).
std::set<std::string> CasesToFold(const std::vector<audit::v1::ChainedRecord>& reads, const PolicyIndex& policies);

struct RecheckInput {
  // Access records of the audit log; only ALLOWED ones are re-checked. Any order.
  std::vector<audit::v1::ChainedRecord> reads;
  // The events of the cases the reads name and of their tenant's organisation (other
  // aggregates are ignored). Any order.
  std::vector<common::v1::EventEnvelope> events;
};

struct RecheckOutcome {
  // Allowed reads re-checked, and those for which no policy was known.
  int64_t records_checked = 0;
  int64_t records_without_policy = 0;
  // The reads that would have been denied, oldest first (then by record id), at most the
  // limit given; truncated when there were more.
  std::vector<audit::v1::RecheckFinding> findings;
  bool truncated = false;
};

// Re-decides every allowed read of `input` (see the top of this file).
RecheckOutcome Recheck(const RecheckInput& input, const PolicyIndex& policies, size_t limit);

}  // namespace clinical::audit

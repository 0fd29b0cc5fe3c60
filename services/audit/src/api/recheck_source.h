#pragma once

// What RecheckAccess reads besides the audit log's access records: the services' published
// policy snapshots and the case and organisation events the relationships are folded from.
// Read per call straight from the topics, read_committed, as the audit service's principal
// (it may read clinical.case.* and clinical.access.*); nothing is copied or cached, so a
// report always sees everything committed before it started.

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/audit/v1/access.pb.h"
#include "clinical/common/v1/envelope.pb.h"
#include "clinical/kafka/cluster.h"

namespace clinical::audit {

// Thread-safe implementations. UNAVAILABLE when the broker does not answer in time;
// DATA_LOSS for an event topic record that is not an envelope. A topic that does not exist
// yet holds nothing.
class RecheckSource {
 public:
  virtual ~RecheckSource() = default;
  // Every snapshot on the policy topic.
  virtual absl::StatusOr<std::vector<audit::v1::AccessPolicySnapshot>> PolicySnapshots() = 0;
  // Every event of these cases (any tenant), and every event of the tenant's organisation.
  virtual absl::StatusOr<std::vector<common::v1::EventEnvelope>> Events(const std::set<std::string>& case_ids,
                                                                        const std::string& tenant_id) = 0;
};

struct RecheckSourceOptions {
  kafka::Cluster cluster;
  std::string case_topic = "clinical.case.events.v1";
  std::string organisation_topic = "clinical.case.organisation.v1";
  std::string policy_topic = "clinical.access.policies.v1";
  // Bound on reading each topic.
  absl::Duration timeout = absl::Seconds(20);
};

// Costs per call: the policy topic (compacted: one record per service and version); the
// case topic's partitions the cases hash to (murmur2 of the case id, as the case service
// writes them), each once; the organisation topic (one small aggregate per tenant).
std::unique_ptr<RecheckSource> MakeKafkaRecheckSource(RecheckSourceOptions options);

}  // namespace clinical::audit

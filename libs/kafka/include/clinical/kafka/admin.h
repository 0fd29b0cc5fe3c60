#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/kafka/cluster.h"

namespace clinical::kafka {

// How an event topic is created. The defaults are the platform's rules for event topics
// (docs/architecture.md): kept forever, delete policy (never compacted), 12 partitions.
struct TopicSpec {
  std::string name;
  int partitions = 12;
  int replication_factor = 1;
  std::map<std::string, std::string> configs = {
      {"retention.ms", "-1"}, {"retention.bytes", "-1"}, {"cleanup.policy", "delete"}};
};

// Creates topics through the Kafka Admin API. A topic that already exists is not an error
// (creation is idempotent), but one whose partition count differs from the spec is
// FAILED_PRECONDITION: the key-to-partition mapping would silently change. UNAVAILABLE
// when the broker cannot be reached within `timeout`; PERMISSION_DENIED when the
// principal may not create (or describe) the topic — readers never create another
// service's topics, and the ACLs enforce it.
absl::Status EnsureTopics(const Cluster& cluster, const std::vector<TopicSpec>& topics,
                          absl::Duration timeout);

// Partition count of an existing topic (NOT_FOUND if it does not exist, PERMISSION_DENIED
// if the principal may not describe it).
absl::StatusOr<int> PartitionCount(const Cluster& cluster, const std::string& topic,
                                   absl::Duration timeout);

}  // namespace clinical::kafka

#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "clinical/kafka/cluster.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical::kafka {

// Builds an RdKafka::Conf from properties; INVALID_ARGUMENT names the property librdkafka
// refused (values are not echoed, they may be credentials).
// `events`, when given, receives librdkafka's logs and errors (see LogBridge); it must
// outlive the client created from the Conf.
absl::StatusOr<std::unique_ptr<RdKafka::Conf>> MakeConf(const Properties& properties,
                                                       RdKafka::EventCb* events = nullptr);

// The producer settings every writer of the platform uses: the cluster's connection and
// security (ClientProperties), idempotent, acks=all, and the Java-compatible partitioner
// (murmur2_random) so that a key lands in the same partition whichever client wrote it.
// Add "transactional.id" for transactional writers.
Properties ProducerDefaults(const Cluster& cluster);

// The consumer settings every reader uses: the cluster's connection and security,
// read_committed, no auto-commit (positions are stored with the data they produced),
// manual assignment friendly. The group id is GroupId(cluster, group): librdkafka needs one
// even for manual assignment, and ACLs grant each service only its own groups.
Properties ConsumerDefaults(const Cluster& cluster, const std::string& group);

}  // namespace clinical::kafka

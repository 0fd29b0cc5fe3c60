#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical::kafka {

using Properties = std::map<std::string, std::string>;

// Builds an RdKafka::Conf from properties; INVALID_ARGUMENT names the property librdkafka
// refused (values are not echoed, they may be credentials).
// `events`, when given, receives librdkafka's logs and errors (see LogBridge); it must
// outlive the client created from the Conf.
absl::StatusOr<std::unique_ptr<RdKafka::Conf>> MakeConf(const Properties& properties,
                                                       RdKafka::EventCb* events = nullptr);

// The producer settings every writer of the platform uses: idempotent, acks=all, and the
// Java-compatible partitioner (murmur2_random) so that a key lands in the same partition
// whichever client wrote it. Add "transactional.id" for transactional writers.
Properties ProducerDefaults(const std::string& bootstrap);

// The consumer settings every reader uses: read_committed, no auto-commit (positions are
// stored with the data they produced), manual assignment friendly.
Properties ConsumerDefaults(const std::string& bootstrap, const std::string& group_id);

}  // namespace clinical::kafka

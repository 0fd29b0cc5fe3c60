#pragma once

// Reading records of the audit service's Kafka topics as raw values, read_committed, with
// the audit service's own principal: the verification's source partitions and checkpoints,
// and RecheckAccess's policy snapshots. (Event topics are read with eventstore::ReadLog,
// which decodes envelopes; these topics hold other messages.)

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/kafka/cluster.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical::audit {

// A consumer that is never part of a group (partitions are assigned by hand).
absl::StatusOr<std::unique_ptr<RdKafka::KafkaConsumer>> OpenReader(const kafka::Cluster& cluster);

// Calls `each(offset, value)` for the records of one partition from offset `from`, stopping
// after offset `until` (inclusive) or at the partition's end. UNAVAILABLE when the broker
// fails or `deadline` passes first.
absl::Status ReadPartition(RdKafka::KafkaConsumer& consumer, const std::string& topic, int32_t partition,
                           int64_t from, int64_t until, absl::Time deadline,
                           const std::function<void(int64_t, std::string)>& each);

// Every record of every partition of `topic` up to its end, partition by partition. A topic
// that does not exist holds nothing (OK, no calls).
absl::Status ReadWholeTopic(const kafka::Cluster& cluster, const std::string& topic, absl::Duration timeout,
                            const std::function<void(std::string)>& each);

}  // namespace clinical::audit

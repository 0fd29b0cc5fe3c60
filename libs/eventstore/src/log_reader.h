#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/eventstore/types.h"
#include "clinical/kafka/cluster.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical::eventstore::internal {

// A read_committed consumer for reading partitions directly (no group membership, no
// offset commits: the event store and replays track positions themselves).
// `events` (optional) receives librdkafka's logs; it must outlive the consumer.
absl::StatusOr<std::unique_ptr<RdKafka::KafkaConsumer>> MakeReader(const kafka::Cluster& cluster,
                                                                   RdKafka::EventCb* events = nullptr);

// One record as read, for side topics that do not hold envelopes. `value` is empty and
// `tombstone` true for a compaction tombstone.
struct RawRecord {
  int64_t offset = 0;
  std::string key;
  std::string value;
  bool tombstone = false;
};

// Like ReadPartition below, for any record.
absl::StatusOr<int64_t> ReadRecords(RdKafka::KafkaConsumer& consumer, const std::string& topic,
                                    int32_t partition, int64_t from_offset,
                                    const std::function<bool(const RawRecord&)>& visit,
                                    absl::Duration timeout);

// Reads one partition from `from_offset` until the end as of now, calling `visit` for each
// event; `visit` returning false stops early. "The end" is the last stable offset: a
// read_committed consumer's watermark query answers it, so records of transactions that are
// still open, or whose commit markers are not written yet, are not waited for.
// Returns the offset after the last one read (also past trailing transaction markers).
// DATA_LOSS for a record that is not an envelope; UNAVAILABLE on timeout.
absl::StatusOr<int64_t> ReadPartition(RdKafka::KafkaConsumer& consumer, const std::string& topic,
                                      int32_t partition, int64_t from_offset,
                                      const std::function<bool(const LoggedEvent&)>& visit,
                                      absl::Duration timeout);

}  // namespace clinical::eventstore::internal

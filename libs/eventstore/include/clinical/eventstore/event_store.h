#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/eventstore/types.h"
#include "clinical/eventstore/v1/storage.pb.h"
#include "clinical/kafka/client_config.h"
#include "clinical/logging/logger.h"

namespace clinical::eventstore {

struct StoreOptions {
  kafka::Cluster cluster;      // brokers and this writer's principal (kafka/cluster.h)
  std::string topic;           // the writer's event topic, e.g. "clinical.case.events.v1"
  std::string aggregate_type;  // stamped on every event, e.g. "case"
  // Stable name of the writer; partition N is written with the transactional ids
  // "<writer_id>.p<N>" and "<writer_id>.p<N>.b" (taking turns, see event_store.cc), so
  // whichever process acquires partition N fences the previous one.
  std::string writer_id;
  // Group commit: one transaction takes at most this many appends, and waits at most
  // `max_batch_wait` for more to arrive after the first (0: take only what is queued).
  int max_batch_appends = 512;
  absl::Duration max_batch_wait = absl::ZeroDuration();
  // Bound on every broker operation (produce+flush, commit, abort, init).
  absl::Duration kafka_timeout = absl::Seconds(10);
  // After this many events written to a partition, its index is checkpointed to
  // "<topic>.checkpoints", so that a new owner reads only the log after the checkpoint.
  // 0 turns checkpoints off.
  int64_t checkpoint_every_events = 50'000;
  // How many recent commands per aggregate are remembered for idempotent retries.
  size_t commands_kept = 32;
  kafka::Properties extra_producer_properties;
};

// Counters for benchmarks and metrics. Monotonic.
struct StoreStats {
  int64_t appends_committed = 0;
  int64_t appends_duplicate = 0;
  int64_t appends_rejected = 0;
  int64_t appends_failed = 0;  // UNAVAILABLE / FAILED_PRECONDITION
  int64_t transactions_committed = 0;
  int64_t events_written = 0;
  int64_t recoveries = 0;
  int64_t events_replayed_on_acquire = 0;  // log events read to rebuild the index
  int64_t checkpoints_written = 0;
  int64_t snapshots_written = 0;
};

// An aggregate's latest snapshot (if any) and the events after it.
struct LoadedAggregate {
  std::optional<eventstore::v1::AggregateSnapshot> snapshot;
  std::vector<LoggedEvent> events;
};

// EventStore appends events to one Kafka topic as the single writer of the partitions it
// owns, and reads them back.
//
// Ownership: Acquire(partitions) initialises a transactional producer per partition
// (fencing any earlier owner with the same writer_id), then rebuilds the partition's index
// (aggregate versions, command ids) from the log, read_committed, before serving. A fenced
// owner answers FAILED_PRECONDITION for that partition until it acquires it again.
//
// Appends are serialised per partition by a writer thread that commits many concurrent
// appends in one transaction (group commit). Append() returns only after its transaction
// committed. Status codes:
//   INVALID_ARGUMENT     malformed request (nothing written)
//   ABORTED              expected version does not match (nothing written)
//   FAILED_PRECONDITION  this store does not own the aggregate's partition (or was fenced)
//   UNAVAILABLE          the broker did not confirm in time; nothing is acknowledged, and a
//                        retry with the same command id is safe (it returns the original
//                        result if the first attempt did commit after all)
// Thread-safe. Owns its Kafka clients; the logger must outlive it.
class EventStore {
 public:
  // Connects and learns the topic's partition count (the topic must exist).
  static absl::StatusOr<std::unique_ptr<EventStore>> Open(StoreOptions options,
                                                          logging::Logger& logger);
  ~EventStore();
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;

  int32_t partition_count() const { return partition_count_; }
  // The partition an aggregate's events live in (the Java client's key partitioning).
  int32_t PartitionOf(const std::string& aggregate_id) const;

  // Takes ownership of `partitions` (all when empty) and blocks until each is rebuilt.
  // UNAVAILABLE if the broker is unreachable.
  absl::Status Acquire(std::vector<int32_t> partitions = {});
  // Gives partitions up (finishing queued appends first). Another process may then own them.
  void Release(std::vector<int32_t> partitions = {});
  std::vector<int32_t> OwnedPartitions() const;

  absl::StatusOr<AppendResult> Append(AppendRequest request);

  // The aggregate's current version (0 if it has no events). FAILED_PRECONDITION if not owned.
  absl::StatusOr<int64_t> CurrentVersion(const std::string& aggregate_id) const;

  // The aggregate's events from `from_version` on, in order, read from the log.
  // FAILED_PRECONDITION if not owned; UNAVAILABLE if the broker does not answer.
  absl::StatusOr<std::vector<LoggedEvent>> Load(const std::string& aggregate_id,
                                                int64_t from_version = 1) const;

  // Records the service's state of an aggregate as of `version` (at most its current
  // version) in "<topic>.snapshots", through the partition's transactional producer, so a
  // fenced owner cannot write one. INVALID_ARGUMENT for a version the aggregate does not
  // have; otherwise as Append.
  absl::Status SaveSnapshot(const std::string& aggregate_id, int64_t version,
                            const google::protobuf::Any& state);
  // The latest snapshot and the events after it: what a service folds to rebuild state.
  absl::StatusOr<LoadedAggregate> LoadLatest(const std::string& aggregate_id) const;

  // The side topics the store keeps next to `topic` (compacted, same partition count).
  static std::string SnapshotTopic(const std::string& topic) { return topic + ".snapshots"; }
  static std::string CheckpointTopic(const std::string& topic) { return topic + ".checkpoints"; }

  StoreStats Stats() const;

 private:
  class PartitionWriter;
  EventStore(StoreOptions options, int32_t partition_count, logging::Logger& logger);
  absl::StatusOr<PartitionWriter*> WriterFor(const std::string& aggregate_id) const;

  const StoreOptions options_;
  const int32_t partition_count_;
  logging::Logger& logger_;
  mutable std::mutex mutex_;
  std::map<int32_t, std::unique_ptr<PartitionWriter>> writers_;  // guarded by mutex_
};

// Reading a topic for replay (auditors, rebuilds): every partition from a starting point to
// the end as of the call, read_committed, in offset order per partition.
struct ReplayStart {
  // Either a timestamp (events recorded at or after it) ...
  std::optional<absl::Time> from_time;
  // ... or per-partition offsets (missing partitions start at 0).
  std::map<int32_t, int64_t> from_offsets;
  // Only these partitions (all when empty): one aggregate's events live in one partition.
  std::vector<int32_t> partitions;
};
// Calls `visit` for every event; stops early when it returns false. A record that is not an
// EventEnvelope fails the read with DATA_LOSS naming its partition and offset: a writer's
// topic holds nothing else. UNAVAILABLE if the broker does not answer within `timeout`.
absl::Status ReadLog(const kafka::Cluster& cluster, const std::string& topic,
                     const ReplayStart& start,
                     const std::function<bool(const LoggedEvent&)>& visit,
                     absl::Duration timeout = absl::Seconds(30));

}  // namespace clinical::eventstore

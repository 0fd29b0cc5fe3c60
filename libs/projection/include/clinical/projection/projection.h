#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/kafka/client_config.h"
#include "clinical/logging/logger.h"
#include "clinical/projection/read_model.h"
#include "clinical/redis/connection.h"

namespace clinical::projection {

struct ProjectionOptions {
  // The brokers and Redis, each with this process's own credentials.
  kafka::Cluster kafka;
  redis::Endpoint redis;

  // Key root (default: the model's Name()) and the version this runtime writes.
  std::string root;
  std::string version = "v1";

  // Where poison events go (default "<root>.deadletter.v1" with ':' replaced by '.'). The
  // runtime creates it if missing, with `dead_letter_partitions` and the platform's
  // keep-forever settings.
  std::string dead_letter_topic;
  int dead_letter_partitions = 1;

  // librdkafka needs a group.id even for manual assignment; nothing is ever committed to
  // it (positions live in Redis). Default "projection.<root>.<version>", under the
  // cluster's group prefix (kafka::GroupId).
  std::string consumer_group;
  // Extra consumer/producer properties (fetch sizes); security comes from `kafka` only.
  kafka::Properties consumer_overrides;
  kafka::Properties producer_overrides;

  // At most this many records are taken from Kafka per round, and one Redis transaction
  // applies at most this many records of one partition.
  int max_batch_events = 500;

  absl::Duration redis_timeout = absl::Seconds(2);   // connect and each socket read/write
  absl::Duration kafka_timeout = absl::Seconds(10);  // metadata, dead-letter acks
  absl::Duration initial_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(5);

  // Switch <root>:active to this version once it has caught up with every partition and is
  // not behind the active version (ActivateIfNotBehind). For rebuilds.
  bool activate_when_caught_up = false;
};

struct PartitionStats {
  std::string topic;
  int32_t partition = 0;
  int64_t applied_offset = -1;  // last offset whose effects are in Redis (-1: none)
  int64_t high_watermark = -1;  // end of the partition as last seen by the consumer (-1: unknown)
  // high_watermark minus the next position to apply (transaction markers included), 0 when
  // caught up, -1 when the watermark is unknown.
  int64_t lag = -1;
};

struct ProjectionStats {
  int64_t events_applied = 0;    // committed to Redis (including events the view ignores)
  int64_t events_skipped = 0;    // received again at or below the stored offset
  int64_t dead_lettered = 0;     // acknowledged by the dead-letter topic (at-least-once)
  int64_t batches = 0;           // committed Redis transactions
  int64_t redis_errors = 0;      // failed Redis round trips (each followed by a backoff)
  int64_t kafka_errors = 0;      // consumer errors, failed metadata or dead-letter produce
  int64_t resyncs = 0;           // offsets reloaded from Redis (another writer, lost data)
  absl::Duration apply_latency_total;  // sum over batches of the MULTI/EXEC round trip
  absl::Duration apply_latency_max;
  bool caught_up = false;  // every partition reached its end at least once since (re)start
  bool active = false;     // this runtime activated its version (activate_when_caught_up)
  absl::Status status;     // non-OK once the runtime stopped on a broken invariant
  std::vector<PartitionStats> partitions;
};

// The projection runtime: consumes the model's topics read_committed (manual assignment of
// every partition, never a consumer group) and applies each batch of one partition to
// Redis in ONE MULTI/EXEC together with the partition's offset. On start and after any
// doubt (another writer moved the offset, Redis lost data) it reloads the offsets from
// Redis and seeks Kafka there; Kafka's group offsets are never read or written.
//
// Guarantees:
//  - exactly-once effects in Redis: a record's commands and its offset commit together;
//    records at or below the stored offset are skipped; a concurrent second writer of the
//    same version (a zombie) is detected by WATCH on the offset and never double-applies;
//  - poison records are dead-lettered (acknowledged) before the offset passes them;
//  - Redis or Kafka unavailable: retries with exponential backoff, never advances, and
//    resumes from the offsets Redis actually holds;
//  - a Redis error inside a committed transaction (a model bug: a script or command that
//    fails at run time) stops the runtime with INTERNAL in Stats().status, because Redis
//    does not roll back and the view may be half-applied: rebuild it after fixing the model.
//
// Thread-safety: Stats() and WaitForPosition() may be called from any thread; Start/Stop
// from the owner. The model and logger must outlive the runtime.
class Projection {
 public:
  // Validates the options (INVALID_ARGUMENT) and creates the Kafka clients. Connects to
  // nothing yet: a missing broker or Redis is handled by retrying after Start().
  static absl::StatusOr<std::unique_ptr<Projection>> Create(ProjectionOptions options,
                                                            const ReadModel& model,
                                                            logging::Logger& logger);
  ~Projection();  // Stop()s
  Projection(const Projection&) = delete;
  Projection& operator=(const Projection&) = delete;

  // Starts the consuming thread. Call once.
  void Start();
  // Stops the thread and joins it. Returns within the longest single blocking step: a
  // consume poll (100 ms), one Redis round trip (redis_timeout) or one Kafka metadata or
  // dead-letter wait (kafka_timeout); backoff pauses end at once. Work not committed to
  // Redis is dropped and redone by the next runtime. Idempotent.
  void Stop();

  // Read-your-writes: blocks until the effects of `offset` of topic/partition are in Redis
  // (applied offset >= `offset`). OK, DEADLINE_EXCEEDED at `deadline`, or the runtime's
  // failure status if it stopped on a broken invariant.
  absl::Status WaitForPosition(const std::string& topic, int32_t partition, int64_t offset,
                               absl::Time deadline) const;

  ProjectionStats Stats() const;
  const KeySpace& keys() const;

 private:
  class Impl;
  explicit Projection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace clinical::projection

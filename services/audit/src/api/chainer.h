#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "checkpoint.h"
#include "clinical/kafka/cluster.h"
#include "clinical/logging/logger.h"
#include "clinical/metrics/registry.h"
#include "clinical/redis/connection.h"
#include "log_keys.h"

namespace clinical::audit {

struct ChainerOptions {
  // The brokers and Redis, as the audit service's own principal and ACL user.
  kafka::Cluster kafka;
  redis::Endpoint redis;
  // Topics of event envelopes, and the topic of access records. Every partition of each
  // is a chain.
  std::vector<std::string> event_topics;
  std::string access_topic;
  // Where signed checkpoints are published (created if missing, 1 partition, kept forever).
  std::string checkpoint_topic = "clinical.audit.checkpoints.v1";
  // Key root in Redis (see LogKeys).
  std::string key_root = "audit";
  // A checkpoint is signed when a chain has this many unsigned records, or has unsigned
  // records older than checkpoint_interval.
  int64_t checkpoint_every = 100;
  absl::Duration checkpoint_interval = absl::Seconds(10);
  // HMAC key for the patient index (PatientKey); empty: no patient index is kept.
  std::string patient_index_key;
  int max_batch_records = 500;
  // How often a topic that does not exist yet is looked for again.
  absl::Duration topic_retry = absl::Seconds(2);
  absl::Duration redis_timeout = absl::Seconds(2);
  absl::Duration kafka_timeout = absl::Seconds(10);
  absl::Duration max_backoff = absl::Seconds(5);
};

struct ChainStats {
  int64_t records_chained = 0;
  int64_t checkpoints_signed = 0;
  int64_t redis_errors = 0;
  int64_t kafka_errors = 0;
  int64_t resyncs = 0;
  int chains = 0;
  // Topics configured but not found on the broker yet.
  std::vector<std::string> waiting_for_topics;
  // Records in the source partitions not chained yet (sum over chains; -1 unknown).
  int64_t lag = -1;
  // The chainer has set up its chains once (Redis heads read, partitions assigned).
  bool started = false;
  absl::Status status;  // non-OK once the chainer stopped on a broken invariant
};

// The chainer follows every configured topic (read_committed, manual assignment, never a
// consumer group) and appends one ChainedRecord per Kafka record to the chain of its
// partition. Each batch of one partition goes to Redis in ONE MULTI/EXEC together with the
// chain's new head (sequence, hash, source offset), under WATCH of the head: exactly once,
// and a restart continues the chain from the head Redis holds, seeking Kafka there. Why not
// the projection runtime: a record's hash depends on the previous record's hash (a
// read-modify-write Redis Lua cannot do, it has no SHA-256) and on the record's offset and
// raw bytes, which a ReadModel never sees.
//
// Checkpoints: after a batch commits, a chain due for one (checkpoint_every records or
// checkpoint_interval since the first unsigned record) gets an Ed25519 signature over its
// head, published to the checkpoint topic (acknowledged) and then copied to Redis. Without
// a signer no checkpoints are made (the service logs this at start).
//
// Missing topics are looked for again every topic_retry; the others are chained meanwhile.
// Redis or Kafka down: retried with backoff, never skipped. Thread-safe: Stats() from any
// thread; Start/Stop from the owner. Logs carry ids and counts only.
class Chainer {
 public:
  static absl::StatusOr<std::unique_ptr<Chainer>> Create(ChainerOptions options,
                                                         const CheckpointSigner* signer,
                                                         std::function<absl::Time()> clock,
                                                         logging::Logger& logger);
  ~Chainer();
  void Start();
  void Stop();
  ChainStats Stats() const;

 private:
  class Impl;
  explicit Chainer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Publishes the chainer's progress (clinical_audit_*) at scrape time.
metrics::Collector ChainerMetrics(const Chainer& chainer);

}  // namespace clinical::audit

#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/common/v1/envelope.pb.h"
#include "clinical/kafka/cluster.h"
#include "clinical/kafka/log_bridge.h"
#include "clinical/logging/logger.h"
#include "clinical/metrics/registry.h"
#include "clinical/relations/read_progress.h"

namespace RdKafka {
class KafkaConsumer;
}

namespace clinical::relations {

// KafkaFollower reads other services' event topics on its own thread — every partition,
// read_committed, from offset 0 — and hands each envelope to a handler, in offset order per
// partition. It is how a service learns what another service wrote: the scheduling service
// its case and organisation facts (FollowedDirectory), the notification service the case and
// scheduling events its rules react to.
//
//  * Nothing is committed to Kafka and nothing persisted: a restart reads again from the
//    start (the case service's own recovery model too), so handlers must be idempotent.
//  * A topic that does not exist yet is waited for (its metadata polled every second), never
//    created: only its writer creates it (the ACLs allow nothing else), so services may start
//    in any order.
//  * A handler that fails (UNAVAILABLE: a broker it appends to is down) gets the same record
//    again after a backoff (RetryBackoff); no record is skipped. A record that is not an
//    EventEnvelope is logged (partition and offset only) and skipped.
//  * Read-your-writes across services: CatchUp(topic, key) asks the broker for the end of the
//    key's partition (every partition for an empty key) and waits until the reader has passed
//    it, so what another service acknowledged before the call has been handled when it
//    returns. Bounded by `sync_timeout`: UNAVAILABLE when the broker does not answer or the
//    reader cannot catch up in time.
//
// Thread-safe. The handler and `caught_up` run on the follower's thread.
class KafkaFollower {
 public:
  using Handler = std::function<absl::Status(const std::string& topic, const common::v1::EventEnvelope& envelope)>;

  struct Options {
    kafka::Cluster cluster;
    std::vector<std::string> topics;
    // Names the reader in logs, metrics and its consumer group ("<group prefix>.<name>";
    // nothing is ever committed under it).
    std::string name = "relations";
    absl::Duration sync_timeout = absl::Seconds(5);
    // Runs once, when every partition of every topic has been read to the end it had when the
    // reader first reached it (what was there at start has been handled).
    std::function<void()> caught_up;
  };

  static absl::StatusOr<std::unique_ptr<KafkaFollower>> Start(Options options, Handler handler,
                                                              logging::Logger& logger);
  // Stops the thread (interrupting a handler's retry wait) and closes the consumers.
  ~KafkaFollower();
  KafkaFollower(const KafkaFollower&) = delete;
  KafkaFollower& operator=(const KafkaFollower&) = delete;

  // Returns once every record committed to `topic` before the call in `key`'s partition
  // (every partition when `key` is empty) has been handled. OK at once for a topic this
  // follower does not follow, and for one that does not exist (nothing was committed to it).
  absl::Status CatchUp(const std::string& topic, const std::string& key) const;

  // Consume lag per followed partition: records between what has been read and the
  // partition's end as of the reader's last fetch (librdkafka's cached high watermark: no
  // broker round trip, so a scrape never blocks); -1 while unknown.
  struct PartitionLag {
    std::string topic;
    int32_t partition = 0;
    int64_t lag = -1;
  };
  std::vector<PartitionLag> Lag() const;
  // The lag as the gauge clinical_reader_lag_records{reader=<reader>,topic,partition}.
  void CollectLag(metrics::Sink& sink, const std::string& reader) const;

  const std::vector<std::string>& topics() const { return options_.topics; }
  // Records that were not envelopes (skipped) so far.
  int64_t undecodable() const;

 private:
  KafkaFollower(Options options, Handler handler, logging::Logger& logger);
  void Run();
  // Assigns the partitions of every followed topic that exists by now; returns whether all
  // have been found.
  bool DiscoverTopics();
  // Hands one envelope to the handler until it succeeds; false when stopped first.
  bool Deliver(const std::string& topic, int32_t partition, int64_t offset,
               const common::v1::EventEnvelope& envelope);
  bool Stopping() const;

  const Options options_;
  const Handler handler_;
  logging::Logger& logger_;
  kafka::LogBridge bridge_;
  std::unique_ptr<RdKafka::KafkaConsumer> reader_;  // the follower thread's (and Lag's cached reads)
  mutable std::mutex meta_mutex_;
  std::unique_ptr<RdKafka::KafkaConsumer> meta_ ABSL_GUARDED_BY(meta_mutex_);  // watermark queries

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;  // progress, topics found, stop, discovery wanted
  ReadProgress progress_ ABSL_GUARDED_BY(mutex_);
  bool stop_ ABSL_GUARDED_BY(mutex_) = false;
  mutable bool discover_now_ ABSL_GUARDED_BY(mutex_) = false;  // a CatchUp waits for a topic
  int64_t undecodable_ ABSL_GUARDED_BY(mutex_) = 0;
  std::thread thread_;
};

}  // namespace clinical::relations

#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/kafka/cluster.h"
#include "clinical/kafka/log_bridge.h"
#include "clinical/logging/logger.h"
#include "scheduling_engine.h"

namespace RdKafka {
class KafkaConsumer;
}

namespace clinical::scheduling {

// KafkaCaseDirectory follows the case topic (read_committed, every partition from the
// start) on its own thread. The case topic belongs to the case service: if it does not
// exist yet, the thread waits for it (polling its metadata) instead of creating it, so the
// two services can start in any order without racing to create one topic; until it
// appears, lookups answer UNAVAILABLE and health is not held back. It and keeps, per case, its tenant, status and assigned case
// manager (ApplyCaseEvent). Nothing is persisted: it rebuilds from offset 0 at start, which
// is the case service's own recovery model too (snapshots are future work for both).
//
// Lookup is read-your-writes across services: it asks the broker for the end of the case's
// partition and waits (at most `sync_timeout`) until the reader has passed it, so a case
// closed in the case service just before is seen closed. UNAVAILABLE when the broker does
// not answer or the reader cannot catch up in time. Thread-safe.
class KafkaCaseDirectory final : public CaseDirectory {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaCaseDirectory>> Start(
      const kafka::Cluster& cluster, const std::string& topic, absl::Duration sync_timeout,
      logging::Logger& logger);
  ~KafkaCaseDirectory() override;

  absl::StatusOr<CaseInfo> Lookup(const std::string& case_id) override;
  size_t case_count() const;

  // Consume lag per partition of the case topic: records between what the directory has
  // read and the partition's end as of the reader's last fetch (librdkafka's cached high
  // watermark; no broker round trip, so a scrape never blocks). -1 while unknown.
  std::vector<std::pair<int32_t, int64_t>> Lag() const;
  const std::string& topic() const { return topic_; }

 private:
  KafkaCaseDirectory(kafka::Cluster cluster, std::string topic, absl::Duration sync_timeout,
                     logging::Logger& logger);
  void Run();
  // Waits until the case topic exists and assigns its partitions; false when stopped.
  bool AwaitTopic();

  const kafka::Cluster cluster_;
  const std::string topic_;
  const absl::Duration sync_timeout_;
  logging::Logger& logger_;
  kafka::LogBridge bridge_;
  std::unique_ptr<RdKafka::KafkaConsumer> reader_;  // reader thread only
  std::mutex meta_mutex_;
  std::unique_ptr<RdKafka::KafkaConsumer> meta_;  // watermark queries, guarded by meta_mutex_

  mutable std::mutex mutex_;
  std::condition_variable advanced_;
  std::map<std::string, CaseInfo> cases_ ABSL_GUARDED_BY(mutex_);
  int32_t partitions_ ABSL_GUARDED_BY(mutex_) = 0;  // 0 until the topic is found
  std::vector<int64_t> next_offset_ ABSL_GUARDED_BY(mutex_);
  bool stop_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace clinical::scheduling

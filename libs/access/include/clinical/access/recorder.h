#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/audit/v1/access.pb.h"
#include "clinical/kafka/cluster.h"
#include "clinical/logging/logger.h"
#include "clinical/metrics/registry.h"

namespace clinical::access {

// Makes access records durable. Record() returns only once the record is acknowledged
// (OK) or has certainly not been within the recorder's bound (UNAVAILABLE): callers hold
// patient data back until it returns OK. Implementations are thread-safe.
class Recorder {
 public:
  virtual ~Recorder() = default;
  virtual absl::Status Record(const audit::v1::AccessRecord& record) = 0;
  // Makes the access policy of `service` ("clinical.case.v1.CaseService") durable as an
  // AccessPolicySnapshot, once, in the background: the records name its version. Does not
  // wait; recorders that keep no policies ignore it.
  virtual void PublishPolicy(const std::string& /*service*/) {}
};

struct KafkaRecorderOptions {
  // The brokers and the service's own principal: every service may write (and create) the
  // access topic; only the audit service may read it (ACLs, docs/security.md).
  kafka::Cluster cluster;
  std::string topic = "clinical.access.v1";
  // Where the services' policy snapshots go (compacted; the audit service reads it).
  std::string policy_topic = "clinical.access.policies.v1";
  // Longest a read waits for its record's acknowledgement (librdkafka's
  // message.timeout.ms; the wait itself is bounded a little above it).
  absl::Duration ack_timeout = absl::Seconds(5);
  // The topic is created with the platform's event-topic spec (kept forever, delete
  // policy) and this many partitions, if it does not exist yet.
  int partitions = 12;
};

// Recorder onto a Kafka topic: an idempotent producer with acks=all, key = record_id,
// value = the AccessRecord in protobuf binary. The topic is ensured (kafka::EnsureTopics,
// idempotent) by a background thread that retries until it succeeds, so a service starts
// and serves health while the broker is still coming up; until the topic exists, reads
// fail closed. Publishes clinical_access_records_total{outcome} and
// clinical_access_record_failures_total (no ids in labels).
class KafkaRecorder : public Recorder {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaRecorder>> Create(KafkaRecorderOptions options,
                                                                logging::Logger& logger,
                                                                metrics::Registry& metrics);
  ~KafkaRecorder() override;

  absl::Status Record(const audit::v1::AccessRecord& record) override;
  void PublishPolicy(const std::string& service) override;

  // True once the topic is known to exist (for tests and readiness logs).
  bool topic_ready() const;

  class Impl;

 private:
  explicit KafkaRecorder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace clinical::access

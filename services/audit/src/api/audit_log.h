#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "chain.h"
#include "checkpoint.h"
#include "clinical/audit/v1/audit_service.pb.h"
#include "clinical/kafka/cluster.h"
#include "clinical/redis/connection.h"
#include "log_keys.h"

namespace clinical::audit {

struct AuditLogOptions {
  kafka::Cluster kafka;
  redis::Endpoint redis;
  std::string key_root = "audit";
  // The source topics (to know each chain's format) and the checkpoint topic.
  std::vector<std::string> event_topics;
  std::string access_topic;
  std::string checkpoint_topic = "clinical.audit.checkpoints.v1";
  // HMAC key of the patient index; empty: queries by patient are FAILED_PRECONDITION.
  std::string patient_index_key;
  absl::Duration redis_timeout = absl::Seconds(2);
  absl::Duration kafka_timeout = absl::Seconds(20);
  // Upper bound of records one VerifyChain call checks (INVALID_ARGUMENT beyond).
  int64_t max_verify_records = 200000;
};

// A query's paging state and result.
struct Page {
  std::vector<audit::v1::ChainedRecord> records;
  std::string next_page_token;
};

// Read side of the audit log: what the gRPC handlers and tools need, over Redis (the log
// and its indexes) and Kafka (source records and checkpoints, for verification). Callers
// pass an already-authorised tenant. Thread-safe: Redis connections come from a small
// pool, one per call in flight.
//
// Errors: UNAVAILABLE when Redis or Kafka cannot be reached; NOT_FOUND for an unknown
// chain; INVALID_ARGUMENT for a bad range or page token; FAILED_PRECONDITION for a patient
// query without a patient index key; INTERNAL for stored data that does not decode.
class AuditLog {
 public:
  AuditLog(AuditLogOptions options, const CheckpointVerifier* verifier);
  ~AuditLog();

  absl::StatusOr<std::vector<audit::v1::ChainHead>> ListChains();

  absl::StatusOr<audit::v1::VerifyChainResponse> Verify(const std::string& chain_id,
                                                        int64_t from_sequence, int64_t to_sequence);

  // Records of `tenant` matching `filter`, oldest first; page_size already validated.
  absl::StatusOr<Page> Query(const std::string& tenant, const audit::v1::RecordFilter& filter,
                             int page_size, const std::string& page_token);

  // The cases of a patient within a tenant (from CaseOpened events).
  absl::StatusOr<std::vector<std::string>> PatientCases(const std::string& tenant,
                                                        const std::string& mrn);

  bool has_patient_index() const { return !options_.patient_index_key.empty(); }

 private:
  class ConnectionLease;
  absl::StatusOr<ConnectionLease> Lease();
  void Return(redis::Connection connection);

  absl::StatusOr<std::map<int64_t, std::string>> ReadSource(const std::string& topic,
                                                            int32_t partition, int64_t first,
                                                            int64_t last);
  absl::StatusOr<std::vector<audit::v1::Checkpoint>> ReadCheckpoints(const std::string& chain_id);

  const AuditLogOptions options_;
  const CheckpointVerifier* const verifier_;
  const LogKeys keys_;
  std::mutex pool_mutex_;
  std::vector<redis::Connection> pool_ ABSL_GUARDED_BY(pool_mutex_);
};

}  // namespace clinical::audit

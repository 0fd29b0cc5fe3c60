#pragma once

// Where the replay reads events from: the case and scheduling topics, read_committed,
// straight from the log (no copy of the events is kept by the audit service for this).

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/kafka/cluster.h"
#include "replay_fold.h"

namespace clinical::audit::replay {

// Thread-safe implementations; every call reads the log as of the call.
// Status codes: UNAVAILABLE when the broker does not answer in time; DATA_LOSS for a
// record that is not an event envelope. A topic that does not exist yet holds no events.
class EventSource {
 public:
  virtual ~EventSource() = default;
  // Every event of the case, in log order.
  virtual absl::StatusOr<std::vector<LogEvent>> CaseEvents(const std::string& case_id) = 0;
  // The scheduling events of the appointments booked for the case (AppointmentFilter).
  virtual absl::StatusOr<std::vector<LogEvent>> AppointmentEvents(const std::string& case_id,
                                                                  const std::string& tenant_id) = 0;
  // The events of every case of the tenant whose CaseOpened names the patient's MRN, by
  // case id, each in log order.
  virtual absl::StatusOr<std::map<std::string, std::vector<LogEvent>>> PatientCaseEvents(
      const std::string& tenant_id, const std::string& patient_mrn) = 0;
};

struct KafkaSourceOptions {
  kafka::Cluster cluster;  // as the audit service's principal
  std::string case_topic = "clinical.case.events.v1";
  std::string scheduling_topic = "clinical.scheduling.events.v1";
  // Bound on each read of a topic.
  absl::Duration timeout = absl::Seconds(30);
};

// Reads with eventstore::ReadLog. Costs, per call:
//   CaseEvents           one partition of the case topic (the case id's murmur2 partition)
//   AppointmentEvents    the whole scheduling topic (appointments are keyed by their own
//                        id; the case id is only inside the booking)
//   PatientCaseEvents    the whole case topic (the MRN is only inside CaseOpened)
std::unique_ptr<EventSource> MakeKafkaSource(KafkaSourceOptions options);

}  // namespace clinical::audit::replay

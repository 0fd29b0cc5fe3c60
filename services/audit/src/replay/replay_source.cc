#include "replay_source.h"

#include <functional>
#include <set>

#include "clinical/case/v1/events.pb.h"
#include "clinical/eventstore/event_store.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/partitioner.h"

namespace clinical::audit::replay {
namespace {

LogEvent ToLogEvent(const std::string& topic, const eventstore::LoggedEvent& logged) {
  LogEvent event;
  event.envelope = logged.envelope;
  event.position.set_topic(topic);
  event.position.set_partition(logged.partition);
  event.position.set_offset(logged.offset);
  return event;
}

class KafkaSource final : public EventSource {
 public:
  explicit KafkaSource(KafkaSourceOptions options) : options_(std::move(options)) {}

  absl::StatusOr<std::vector<LogEvent>> CaseEvents(const std::string& case_id) override {
    auto partitions = kafka::PartitionCount(options_.cluster, options_.case_topic,
                                            options_.timeout);
    if (absl::IsNotFound(partitions.status())) return std::vector<LogEvent>();
    if (!partitions.ok()) return partitions.status();
    eventstore::ReplayStart start;
    start.partitions = {kafka::Murmur2Partition(case_id, *partitions)};
    std::vector<LogEvent> events;
    auto status = Read(options_.case_topic, start, [&](const eventstore::LoggedEvent& logged) {
      if (logged.envelope.aggregate_id() == case_id) {
        events.push_back(ToLogEvent(options_.case_topic, logged));
      }
    });
    if (!status.ok()) return status;
    return events;
  }

  absl::StatusOr<std::vector<LogEvent>> AppointmentEvents(const std::string& case_id,
                                                          const std::string& tenant_id) override {
    AppointmentFilter filter(case_id, tenant_id);
    std::vector<LogEvent> events;
    auto status = Read(options_.scheduling_topic, {}, [&](const eventstore::LoggedEvent& logged) {
      if (filter.Take(logged.envelope)) events.push_back(ToLogEvent(options_.scheduling_topic, logged));
    });
    if (!status.ok()) return status;
    return events;
  }

  absl::StatusOr<std::map<std::string, std::vector<LogEvent>>> PatientCaseEvents(
      const std::string& tenant_id, const std::string& patient_mrn) override {
    const std::string opened_type = case_::v1::CaseOpened::descriptor()->full_name();
    std::set<std::string> cases;
    std::map<std::string, std::vector<LogEvent>> events;
    auto status = Read(options_.case_topic, {}, [&](const eventstore::LoggedEvent& logged) {
      const common::v1::EventEnvelope& envelope = logged.envelope;
      if (envelope.tenant_id() != tenant_id) return;
      if (envelope.event_type() == opened_type) {
        case_::v1::CaseOpened opened;
        if (envelope.payload().UnpackTo(&opened) && opened.patient().mrn() == patient_mrn) {
          cases.insert(envelope.aggregate_id());
        }
      }
      // A case's CaseOpened is its first event in its partition, so a case is known
      // before any later event of it is read.
      if (cases.contains(envelope.aggregate_id())) {
        events[envelope.aggregate_id()].push_back(ToLogEvent(options_.case_topic, logged));
      }
    });
    if (!status.ok()) return status;
    return events;
  }

 private:
  absl::Status Read(const std::string& topic, const eventstore::ReplayStart& start,
                    const std::function<void(const eventstore::LoggedEvent&)>& visit) {
    absl::Status status = eventstore::ReadLog(
        options_.cluster, topic, start,
        [&](const eventstore::LoggedEvent& logged) {
          visit(logged);
          return true;
        },
        options_.timeout);
    // A topic nobody has written yet (its service never started) has no events.
    if (absl::IsNotFound(status)) return absl::OkStatus();
    return status;
  }

  const KafkaSourceOptions options_;
};

}  // namespace

std::unique_ptr<EventSource> MakeKafkaSource(KafkaSourceOptions options) {
  return std::make_unique<KafkaSource>(std::move(options));
}

}  // namespace clinical::audit::replay

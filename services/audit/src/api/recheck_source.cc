#include "recheck_source.h"

#include "clinical/eventstore/event_store.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/partitioner.h"
#include "clinical/relations/facts.h"
#include "topic_reader.h"

namespace clinical::audit {
namespace {

class KafkaRecheckSource final : public RecheckSource {
 public:
  explicit KafkaRecheckSource(RecheckSourceOptions options) : options_(std::move(options)) {}

  absl::StatusOr<std::vector<audit::v1::AccessPolicySnapshot>> PolicySnapshots() override {
    std::vector<audit::v1::AccessPolicySnapshot> snapshots;
    const absl::Status read =
        ReadWholeTopic(options_.cluster, options_.policy_topic, options_.timeout, [&](std::string value) {
          audit::v1::AccessPolicySnapshot snapshot;
          // Only the services write this topic; a record that does not decode names no
          // policy, and the reads it would have covered are reported as without one.
          if (snapshot.ParseFromString(value)) snapshots.push_back(std::move(snapshot));
        });
    if (!read.ok()) return read;
    return snapshots;
  }

  absl::StatusOr<std::vector<common::v1::EventEnvelope>> Events(const std::set<std::string>& case_ids,
                                                                const std::string& tenant_id) override {
    std::vector<common::v1::EventEnvelope> events;
    if (!case_ids.empty()) {
      auto partitions = kafka::PartitionCount(options_.cluster, options_.case_topic, options_.timeout);
      if (!partitions.ok() && !absl::IsNotFound(partitions.status())) return partitions.status();
      if (partitions.ok()) {
        eventstore::ReplayStart start;
        std::set<int32_t> wanted;
        for (const std::string& id : case_ids) wanted.insert(kafka::Murmur2Partition(id, *partitions));
        start.partitions.assign(wanted.begin(), wanted.end());
        const absl::Status read = Read(options_.case_topic, start, [&](const common::v1::EventEnvelope& envelope) {
          if (envelope.aggregate_type() == "case" && case_ids.contains(envelope.aggregate_id())) {
            events.push_back(envelope);
          }
        });
        if (!read.ok()) return read;
      }
    }
    // The organisation topic is small (one aggregate per tenant): read whole, so nothing
    // depends on how its writer keys it.
    const std::string organisation = relations::OrganisationId(tenant_id);
    const absl::Status read = Read(options_.organisation_topic, {}, [&](const common::v1::EventEnvelope& envelope) {
      if (envelope.aggregate_id() == organisation && envelope.tenant_id() == tenant_id) events.push_back(envelope);
    });
    if (!read.ok()) return read;
    return events;
  }

 private:
  absl::Status Read(const std::string& topic, const eventstore::ReplayStart& start,
                    const std::function<void(const common::v1::EventEnvelope&)>& visit) {
    const absl::Status status = eventstore::ReadLog(
        options_.cluster, topic, start,
        [&](const eventstore::LoggedEvent& logged) {
          visit(logged.envelope);
          return true;
        },
        options_.timeout);
    // A topic nobody has written yet holds no events.
    if (absl::IsNotFound(status)) return absl::OkStatus();
    return status;
  }

  const RecheckSourceOptions options_;
};

}  // namespace

std::unique_ptr<RecheckSource> MakeKafkaRecheckSource(RecheckSourceOptions options) {
  return std::make_unique<KafkaRecheckSource>(std::move(options));
}

}  // namespace clinical::audit

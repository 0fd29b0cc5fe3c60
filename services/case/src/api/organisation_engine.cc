#include "organisation_engine.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"

namespace clinical::case_service {
namespace {

absl::StatusOr<v1::OrganisationEvent> Decode(const eventstore::LoggedEvent& logged) {
  v1::OrganisationEvent event;
  if (!logged.envelope.payload().UnpackTo(&event)) {
    return absl::DataLossError(absl::StrCat("partition ", logged.partition, " offset ", logged.offset,
                                            ": not an organisation event"));
  }
  return event;
}

}  // namespace

OrganisationEngine::OrganisationEngine(EventLog& log, std::string topic, std::function<absl::Time()> clock,
                                       relations::Directory& directory)
    : log_(log), topic_(std::move(topic)), clock_(std::move(clock)), directory_(directory) {}

void OrganisationEngine::Apply(Entry& entry, const eventstore::LoggedEvent& logged,
                               const v1::OrganisationEvent& event) {
  const common::v1::EventEnvelope& envelope = logged.envelope;
  entry.facts.tenant_id = envelope.tenant_id();
  entry.facts.version = envelope.aggregate_version();
  relations::ApplyOrganisationEvent(entry.facts, event);
  OrganisationOutcome& outcome = entry.commands[envelope.command_id()];
  outcome.version = envelope.aggregate_version();
  outcome.position.set_topic(topic_);
  outcome.position.set_partition(logged.partition);
  outcome.position.set_offset(logged.offset);
  common::v1::EventEnvelope related = envelope;
  related.set_aggregate_type("organisation");
  directory_.Apply(related);
}

absl::Status OrganisationEngine::Replay(const eventstore::LoggedEvent& logged) {
  auto event = Decode(logged);
  if (!event.ok()) return event.status();
  std::lock_guard<std::mutex> lock(mutex_);
  Entry& entry = organisations_[logged.envelope.tenant_id()];
  if (logged.envelope.aggregate_version() != entry.facts.version + 1) {
    return absl::DataLossError(
        absl::StrCat("partition ", logged.partition, " offset ", logged.offset, ": version gap"));
  }
  Apply(entry, logged, *event);
  return absl::OkStatus();
}

absl::Status OrganisationEngine::Reload(const std::string& tenant_id) {
  auto events = log_.Load(relations::OrganisationId(tenant_id), 1);
  if (!events.ok()) return events.status();
  Entry fresh;
  for (const eventstore::LoggedEvent& logged : *events) {
    auto event = Decode(logged);
    if (!event.ok()) return event.status();
    // The directory already holds the versions it was given; it folds whole teams and
    // configurations, so handing them again leaves the same facts.
    Apply(fresh, logged, *event);
  }
  organisations_[tenant_id] = std::move(fresh);
  return absl::OkStatus();
}

absl::StatusOr<OrganisationOutcome> OrganisationEngine::Execute(const grpcx::Caller& caller,
                                                                const std::string& command_id,
                                                                std::optional<int64_t> expected_version,
                                                                const Command& command) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (organisations_[caller.tenant_id].stale) {
    if (absl::Status reloaded = Reload(caller.tenant_id); !reloaded.ok()) return reloaded;
  }
  Entry& entry = organisations_[caller.tenant_id];
  if (auto done = entry.commands.find(command_id); done != entry.commands.end()) {
    OrganisationOutcome outcome = done->second;
    outcome.duplicate = true;
    return outcome;
  }
  if (expected_version && *expected_version != entry.facts.version) {
    return absl::AbortedError(absl::StrCat("version conflict: the organisation is at version ",
                                           entry.facts.version, ", expected ", *expected_version));
  }
  auto event = std::visit([&](const auto& c) { return DecideOrganisation(entry.facts, c); }, command);
  if (!event.ok()) return event.status();

  eventstore::AppendRequest append;
  append.aggregate_id = relations::OrganisationId(caller.tenant_id);
  append.expected_version = eventstore::ExpectedVersion::Exactly(entry.facts.version);
  append.command_id = command_id;
  common::v1::EventEnvelope& envelope = append.events.emplace_back();
  // The payload is the whole OrganisationEvent (what every reader folds, and the event
  // store checks the type against the payload).
  envelope.set_event_type(std::string(v1::OrganisationEvent::descriptor()->full_name()));
  envelope.mutable_payload()->PackFrom(*event);
  *envelope.mutable_occurred_at() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock_()));
  *envelope.mutable_actor() = caller.actor;
  envelope.set_tenant_id(caller.tenant_id);
  *envelope.mutable_trace() = caller.trace;
  envelope.set_correlation_id(command_id);
  envelope.set_schema_version(1);
  auto appended = log_.Append(append);
  if (!appended.ok() || appended->duplicate) {
    entry.stale = true;  // unknown outcome, or the log knew the command: reload first
    if (!appended.ok()) return appended.status();
    return OrganisationOutcome{appended->last_version, appended->position, true};
  }
  eventstore::LoggedEvent logged;
  logged.envelope = envelope;
  logged.envelope.set_aggregate_id(append.aggregate_id);
  logged.envelope.set_aggregate_version(appended->first_version);
  logged.envelope.set_command_id(command_id);
  *logged.envelope.mutable_recorded_at() = appended->recorded_at;
  logged.partition = appended->position.partition();
  logged.offset = appended->position.offset();
  Apply(entry, logged, *event);
  return OrganisationOutcome{appended->last_version, appended->position, false};
}

v1::Organisation OrganisationEngine::Get(const std::string& tenant_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = organisations_.find(tenant_id);
  if (it == organisations_.end()) {
    relations::OrganisationFacts empty;
    empty.tenant_id = tenant_id;
    return relations::ToProto(empty);
  }
  return relations::ToProto(it->second.facts);
}

size_t OrganisationEngine::organisation_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return organisations_.size();
}

}  // namespace clinical::case_service

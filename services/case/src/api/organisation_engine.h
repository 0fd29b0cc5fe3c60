#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/grpcx/caller.h"
#include "clinical/relations/directory.h"
#include "clinical/eventstore/event_log.h"
#include "organisation.h"

namespace clinical::case_service {

using eventstore::EventLog;

struct OrganisationOutcome {
  int64_t version = 0;
  common::v1::LogPosition position;
  bool duplicate = false;
};

// The organisation aggregate (one per tenant, organisation.h) on its own topic: decide,
// append, then fold into the relations directory before the command returns, so the next
// call is authorized against the new teams. Commands are idempotent by command id and honour
// expected_version (0: never configured). Organisation changes are rare, so one lock
// serialises them all. Thread-safe.
class OrganisationEngine {
 public:
  using Command = std::variant<v1::ConfigureOrganisationRequest, v1::SetTeamRequest>;

  // `directory` must outlive the engine.
  OrganisationEngine(EventLog& log, std::string topic, std::function<absl::Time()> clock,
                     relations::Directory& directory);

  // Rebuilds state from the log, before serving (events in log order).
  absl::Status Replay(const eventstore::LoggedEvent& logged);

  absl::StatusOr<OrganisationOutcome> Execute(const grpcx::Caller& caller, const std::string& command_id,
                                              std::optional<int64_t> expected_version, const Command& command);

  // The tenant's organisation as the API shows it (version 0 when never configured).
  v1::Organisation Get(const std::string& tenant_id) const;

  size_t organisation_count() const;

 private:
  struct Entry {
    relations::OrganisationFacts facts;
    std::map<std::string, OrganisationOutcome> commands;  // by command id
    bool stale = false;  // an append's outcome is unknown: reload from the log first
  };
  void Apply(Entry& entry, const eventstore::LoggedEvent& logged, const v1::OrganisationEvent& event);
  absl::Status Reload(const std::string& tenant_id);

  EventLog& log_;
  const std::string topic_;
  const std::function<absl::Time()> clock_;
  relations::Directory& directory_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry> organisations_;  // by tenant
};

}  // namespace clinical::case_service

#pragma once

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "case_domain.h"
#include "clinical/grpcx/caller.h"
#include "clinical/relations/directory.h"
#include "clinical/eventstore/event_log.h"
#include "programs.h"

namespace clinical::case_service {

using eventstore::EventLog;
using eventstore::EventStoreLog;

struct CommandOutcome {
  std::string case_id;
  int64_t version = 0;
  common::v1::LogPosition position;
  // The command id had been applied before: this is its original result.
  bool duplicate = false;
  // The id the command created (note, delegation, escalation), or "pending_approval" for a
  // closure request that waits for a supervisor.
  std::string detail;
};

// CaseEngine is the case service's application layer, independent of gRPC: it keeps the
// current state of every case in memory (the process owns all partitions), serialises
// commands per case, answers retried command ids with their original result, runs the
// pure decider and appends its events with the expected version.
//
// The capacity rule spans cases (a manager's caseload), so commands that add to a
// caseload are serialised with each other as well: the load read for the decision cannot
// change before the append is acknowledged.
//
// The relations directory (access decisions' facts) is fed every event the engine replays
// or appends, in each case's version order, before the command returns: the next call's
// authorization sees this one's effect (read-your-writes, no catch-up needed). The
// directory also tells a break-the-glass request whether the caller already has a
// relationship to the case, and the tenant's emergency-access limit.
//
// Status codes: those of Decide, plus NOT_FOUND (no such case for this tenant; for a case
// of another tenant, including OpenCase with its id, a grpcx::NotFoundInTenant refusal),
// ABORTED (expected_version mismatch; the message names the current version),
// ALREADY_EXISTS (OpenCase with a case id in use in this tenant), UNAVAILABLE (broker did not acknowledge: retry with the
// same command id), DATA_LOSS (an undecodable event in the log). Thread-safe.
class CaseEngine {
 public:
  // `directory` may be null (unit tests of rules that need no relations); it must outlive
  // the engine.
  CaseEngine(EventLog& log, const ProgramCatalog& programs, std::string topic,
             std::function<absl::Time()> clock, std::function<std::string()> new_case_id,
             relations::Directory* directory = nullptr);

  // Rebuilds state from the log, before serving (events in log order).
  absl::Status Replay(const eventstore::LoggedEvent& logged);

  absl::StatusOr<CommandOutcome> Open(const grpcx::Caller& caller,
                                      const v1::OpenCaseRequest& request);
  absl::StatusOr<CommandOutcome> Execute(const grpcx::Caller& caller, const std::string& case_id,
                                         const std::string& command_id,
                                         std::optional<int64_t> expected_version,
                                         const Command& command);
  absl::StatusOr<v1::BulkReassignCasesResponse> BulkReassign(
      const grpcx::Caller& caller, const v1::BulkReassignCasesRequest& request);

  absl::StatusOr<v1::Case> Get(const std::string& tenant_id, const std::string& case_id) const;
  absl::StatusOr<v1::ListCaseHistoryResponse> History(const std::string& tenant_id,
                                                      const v1::ListCaseHistoryRequest& request) const;
  // The case's latest event in time (LatestEventTime), for validating a relationship change
  // entered late; nullopt when the tenant has no such case.
  std::optional<absl::Time> LatestEventTimeOf(const std::string& tenant_id, const std::string& case_id) const;
  // Every emergency grant on every case of the tenant (ListEmergencyAccess's input).
  std::vector<v1::CaseEmergencyAccess> EmergencyGrants(const std::string& tenant_id) const;

  // Acuity-weighted load of a case manager (open cases, pending or accepted).
  int32_t LoadOf(const std::string& tenant_id, const std::string& case_manager_id) const;
  size_t case_count() const;
  absl::Time Now() const { return clock_(); }
  const ProgramCatalog& programs() const { return programs_; }

 private:
  struct CommandRecord {
    int64_t version = 0;
    common::v1::LogPosition position;
    std::string detail;
  };
  struct Entry {
    std::shared_ptr<const CaseState> state;
    std::map<std::string, CommandRecord> commands;
    // The broker's answer to an append was lost: reload from the log before deciding.
    bool stale = false;
  };

  std::mutex& StripeOf(const std::string& case_id);
  // Replaces a case's state and keeps the caseload index in step. Requires mutex_.
  void Install(const std::string& case_id, std::shared_ptr<const CaseState> state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Record(Entry& entry, const common::v1::EventEnvelope& envelope, const Event& event,
              const common::v1::LogPosition& position);
  absl::Status Reload(const std::string& case_id);
  // Hands appended or replayed events to the directory (see the class comment).
  void Relate(const common::v1::EventEnvelope& envelope) const;
  // The facts a command's decision needs from outside the case (see DecisionContext).
  void AddRelations(const grpcx::Caller& caller, const std::string& case_id, const Command& command,
                    DecisionContext& context) const;
  absl::StatusOr<ProgramRules> RulesFor(const CaseState& state, const Command& command,
                                        const std::string& tenant_id) const;

  EventLog& log_;
  const ProgramCatalog& programs_;
  const std::string topic_;
  const std::function<absl::Time()> clock_;
  const std::function<std::string()> new_case_id_;
  relations::Directory* const directory_;

  std::array<std::mutex, 64> stripes_;
  std::mutex capacity_mutex_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry> cases_ ABSL_GUARDED_BY(mutex_);
  std::map<std::pair<std::string, std::string>, int32_t> loads_ ABSL_GUARDED_BY(mutex_);
  // (tenant, command id) of each OpenCase -> case id, so a retried OpenCase without a
  // client-chosen case id finds its case.
  std::map<std::pair<std::string, std::string>, std::string> opened_by_command_
      ABSL_GUARDED_BY(mutex_);
};

}  // namespace clinical::case_service

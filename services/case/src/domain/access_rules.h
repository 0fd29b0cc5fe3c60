#pragma once

// Access rules that depend on a case's data (docs/case-service.md, "Access"). Who may call
// which RPC in which relationship is the access policy's (declared next to each RPC in
// case_service.proto, decided by libs/access before a handler runs); what is left here is
// what only the case itself can tell:
//   * who may correct a note (its author, or a supervisor of the case's team);
//   * which 42 CFR Part 2 records a reader may see (program staff, an emergency grant, or a
//     consent that covers them) and how they are withheld;
//   * break the glass: the longest grant, when a grant is refused, the review queue;
//   * how far back a relationship change entered late may take effect.
// Pure: no I/O, no clock (time comes in as an argument).

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "case_domain.h"

namespace clinical::case_service {

// ---- Notes ----

// AmendNote and MarkNoteEnteredInError: only the note's author, or a supervisor of the
// case's team (a call the policy allowed as "team_supervisor"). Anyone else the policy
// lets in (a care-team member, a caller under an emergency grant) may add notes but not
// rewrite someone else's. PERMISSION_DENIED otherwise.
absl::Status CheckNoteCorrection(const v1::Note& note, const std::string& user_id, const std::string& relationship);

// ---- Late entry of relationship changes ----

// The latest occurred_at among the case's events (its updated_at); nullopt before its first
// event.
std::optional<absl::Time> LatestEventTime(const CaseState& state);

// When a relationship change (AssignCase, TransferCase, RemoveCareTeamMember) may say it
// took effect: not after `now`, and not before `latest` (the case's latest event in time,
// LatestEventTime), so that a change entered late never reorders what the case already
// records after it. nullopt when `occurred` is acceptable, else why not (a field
// violation's description).
std::optional<std::string> CheckEffectiveTime(absl::Time occurred, std::optional<absl::Time> latest, absl::Time now);

// ---- 42 CFR Part 2 on reads ----

// Whether `user_id`, allowed in with `relationship` (grpcx::Caller::relationship), may see
// the case's substance-use records (notes of INFORMATION_CATEGORY_SUBSTANCE_USE and AUDIT-C
// assessments):
//   * the case's program staff: its case manager ("assigned") and its team's supervisors
//     ("team_supervisor");
//   * a caller under an emergency grant ("emergency": the 42 CFR 2.51 medical-emergency
//     exception; the read is recorded as emergency access anyway);
//   * a caller a consent covers: an unrevoked consent, unexpired at `now`, whose categories
//     include SUBSTANCE_USE and whose member_ids include an active care-team member whose
//     staff_user_id is the caller.
// Nobody else, whatever the policy let them read.
bool MaySeeSubstanceUseRecords(const CaseState& state, const std::string& user_id, const std::string& relationship,
                               absl::Time now);

// Whether an assessment instrument's results are substance-use records (AUDIT-C).
bool IsSubstanceUseInstrument(v1::AssessmentInstrument instrument);

// The ids of a case's substance-use records.
struct SubstanceUseRecords {
  std::set<std::string> note_ids;
  std::set<std::string> assessment_ids;
  bool empty() const { return note_ids.empty() && assessment_ids.empty(); }
};
SubstanceUseRecords SubstanceUseRecordsOf(const CaseState& state);

// The case without its substance-use records (those notes and assessments removed; the
// rest, including the case's overall risk level, stays). True when something was removed.
bool RemoveSubstanceUseRecords(CaseState& state);

// Whether an event of the case's history is about one of `records`: the NoteAdded,
// NoteAmended and NoteEnteredInError of such a note, the AssessmentRecorded and
// HighRiskIdentified of such an assessment.
bool IsSubstanceUseEvent(const v1::CaseEvent& event, const SubstanceUseRecords& records);

// ---- Break the glass ----

// The longest emergency access the tenant allows, in minutes: its configured limit, or
// the platform default (relations::kDefaultEmergencyAccessMaxMinutes) when it set none.
int32_t EmergencyAccessLimit(int32_t configured_max_minutes);

// nullopt when `minutes` is a duration the tenant allows (1..EmergencyAccessLimit), else
// why not (a field violation's description).
std::optional<std::string> CheckEmergencyDuration(int32_t minutes, int32_t configured_max_minutes);

// The caller's grant on the case that is still running at `now`, or null.
const v1::EmergencyAccessGrant* ActiveGrantOf(const CaseState& state, const std::string& user_id, absl::Time now);

// ListEmergencyAccess over the tenant's grants (`grants`: every grant of every case of the
// tenant, in any order):
//   * grants made at or after `since` (with `unreviewed_only`, those without a review), the
//     unreviewed first, then newest first (ties: case id, grant id), at most `page_size`;
//   * repeated_use: every person with at least `repeated_use_threshold` grants made since
//     `since` (reviewed or not), most grants first (ties: user id), with their first and
//     last grant.
struct EmergencyAccessQuery {
  absl::Time since;
  bool unreviewed_only = false;
  int32_t page_size = 100;
  int32_t repeated_use_threshold = 3;
};
v1::ListEmergencyAccessResponse ListEmergencyAccess(const std::vector<v1::CaseEmergencyAccess>& grants,
                                                    const EmergencyAccessQuery& query);

}  // namespace clinical::case_service

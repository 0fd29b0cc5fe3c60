#include "access_rules.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "clinical/relations/facts.h"
#include "google/protobuf/util/time_util.h"

namespace clinical::case_service {
namespace {

using google::protobuf::util::TimeUtil;

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(t));
}

template <typename Ids>
bool Contains(const Ids& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// The care-team members (active) whose platform account is `user_id`.
std::vector<std::string> StaffMemberIds(const CaseState& state, const std::string& user_id) {
  std::vector<std::string> ids;
  if (user_id.empty()) return ids;
  for (const v1::CareTeamMember& member : state.care_team()) {
    if (member.active() && member.staff_user_id() == user_id) ids.push_back(member.member_id());
  }
  return ids;
}

bool CoversSubstanceUse(const v1::Consent& consent, const std::vector<std::string>& member_ids, absl::Time now) {
  if (consent.revoked()) return false;
  if (consent.has_expires_at() && ToTime(consent.expires_at()) <= now) return false;
  const auto& categories = consent.categories();
  if (std::find(categories.begin(), categories.end(), v1::INFORMATION_CATEGORY_SUBSTANCE_USE) == categories.end()) {
    return false;
  }
  for (const std::string& member : member_ids) {
    if (Contains(consent.member_ids(), member)) return true;
  }
  return false;
}

}  // namespace

// ---- Notes ----

absl::Status CheckNoteCorrection(const v1::Note& note, const std::string& user_id, const std::string& relationship) {
  if (!user_id.empty() && note.author_id() == user_id) return absl::OkStatus();
  if (relationship == "team_supervisor") return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("only the author of ", note.note_id(), " or a supervisor of the case's team may correct it"));
}

// ---- Late entry of relationship changes ----

std::optional<absl::Time> LatestEventTime(const CaseState& state) {
  if (state.version() == 0 || !state.has_updated_at()) return std::nullopt;
  return ToTime(state.updated_at());
}

std::optional<std::string> CheckEffectiveTime(absl::Time occurred, std::optional<absl::Time> latest, absl::Time now) {
  if (occurred > now) return "must not be in the future";
  if (latest.has_value() && occurred < *latest) {
    return absl::StrCat("must not be before the case's latest event (", absl::FormatTime(*latest, absl::UTCTimeZone()),
                        ")");
  }
  return std::nullopt;
}

// ---- 42 CFR Part 2 on reads ----

bool MaySeeSubstanceUseRecords(const CaseState& state, const std::string& user_id, const std::string& relationship,
                               absl::Time now) {
  if (relationship == "assigned" || relationship == "team_supervisor" || relationship == "emergency") return true;
  const std::vector<std::string> members = StaffMemberIds(state, user_id);
  if (members.empty()) return false;
  for (const v1::Consent& consent : state.consents()) {
    if (CoversSubstanceUse(consent, members, now)) return true;
  }
  return false;
}

bool IsSubstanceUseInstrument(v1::AssessmentInstrument instrument) {
  return instrument == v1::ASSESSMENT_INSTRUMENT_AUDIT_C;
}

SubstanceUseRecords SubstanceUseRecordsOf(const CaseState& state) {
  SubstanceUseRecords records;
  for (const v1::Note& note : state.notes()) {
    if (note.category() == v1::INFORMATION_CATEGORY_SUBSTANCE_USE) records.note_ids.insert(note.note_id());
  }
  for (const v1::Assessment& assessment : state.assessments()) {
    if (IsSubstanceUseInstrument(assessment.instrument())) records.assessment_ids.insert(assessment.assessment_id());
  }
  return records;
}

bool RemoveSubstanceUseRecords(CaseState& state) {
  const size_t notes = state.notes_size();
  const size_t assessments = state.assessments_size();
  auto* kept_notes = state.mutable_notes();
  kept_notes->erase(std::remove_if(kept_notes->begin(), kept_notes->end(),
                                   [](const v1::Note& note) {
                                     return note.category() == v1::INFORMATION_CATEGORY_SUBSTANCE_USE;
                                   }),
                    kept_notes->end());
  auto* kept_assessments = state.mutable_assessments();
  kept_assessments->erase(std::remove_if(kept_assessments->begin(), kept_assessments->end(),
                                         [](const v1::Assessment& assessment) {
                                           return IsSubstanceUseInstrument(assessment.instrument());
                                         }),
                          kept_assessments->end());
  return static_cast<size_t>(state.notes_size()) != notes ||
         static_cast<size_t>(state.assessments_size()) != assessments;
}

bool IsSubstanceUseEvent(const v1::CaseEvent& event, const SubstanceUseRecords& records) {
  switch (event.event_case()) {
    case v1::CaseEvent::kNoteAdded:
      return event.note_added().category() == v1::INFORMATION_CATEGORY_SUBSTANCE_USE ||
             records.note_ids.count(event.note_added().note_id()) > 0;
    case v1::CaseEvent::kNoteAmended:
      return records.note_ids.count(event.note_amended().note_id()) > 0;
    case v1::CaseEvent::kNoteEnteredInError:
      return records.note_ids.count(event.note_entered_in_error().note_id()) > 0;
    case v1::CaseEvent::kAssessmentRecorded:
      return IsSubstanceUseInstrument(event.assessment_recorded().instrument()) ||
             records.assessment_ids.count(event.assessment_recorded().assessment_id()) > 0;
    case v1::CaseEvent::kHighRiskIdentified:
      return IsSubstanceUseInstrument(event.high_risk_identified().instrument()) ||
             records.assessment_ids.count(event.high_risk_identified().assessment_id()) > 0;
    default:
      return false;
  }
}

// ---- Break the glass ----

int32_t EmergencyAccessLimit(int32_t configured_max_minutes) {
  return configured_max_minutes > 0 ? configured_max_minutes : relations::kDefaultEmergencyAccessMaxMinutes;
}

std::optional<std::string> CheckEmergencyDuration(int32_t minutes, int32_t configured_max_minutes) {
  const int32_t limit = EmergencyAccessLimit(configured_max_minutes);
  if (minutes < 1 || minutes > limit) {
    return absl::StrCat("must be between 1 and ", limit, " minutes (the tenant's limit)");
  }
  return std::nullopt;
}

const v1::EmergencyAccessGrant* ActiveGrantOf(const CaseState& state, const std::string& user_id, absl::Time now) {
  for (const v1::EmergencyAccessGrant& grant : state.emergency_access()) {
    if (grant.user_id() == user_id && now < ToTime(grant.expires_at())) return &grant;
  }
  return nullptr;
}

v1::ListEmergencyAccessResponse ListEmergencyAccess(const std::vector<v1::CaseEmergencyAccess>& grants,
                                                    const EmergencyAccessQuery& query) {
  std::vector<const v1::CaseEmergencyAccess*> period;
  for (const v1::CaseEmergencyAccess& entry : grants) {
    if (ToTime(entry.grant().granted_at()) >= query.since) period.push_back(&entry);
  }

  v1::ListEmergencyAccessResponse response;
  // Repeated use counts every grant of the period, reviewed or not: a pattern is a pattern
  // even after each use was found justified.
  struct Use {
    int32_t grants = 0;
    google::protobuf::Timestamp first, last;
  };
  std::map<std::string, Use> uses;
  for (const v1::CaseEmergencyAccess* entry : period) {
    Use& use = uses[entry->grant().user_id()];
    const google::protobuf::Timestamp& at = entry->grant().granted_at();
    if (use.grants == 0 || at < use.first) use.first = at;
    if (use.grants == 0 || at > use.last) use.last = at;
    ++use.grants;
  }
  std::vector<std::pair<std::string, Use>> repeated;
  for (const auto& [user, use] : uses) {
    if (use.grants >= query.repeated_use_threshold) repeated.emplace_back(user, use);
  }
  std::stable_sort(repeated.begin(), repeated.end(),
                   [](const auto& a, const auto& b) { return a.second.grants > b.second.grants; });
  for (const auto& [user, use] : repeated) {
    v1::RepeatedEmergencyUse* out = response.add_repeated_use();
    out->set_user_id(user);
    out->set_grants(use.grants);
    *out->mutable_first_granted_at() = use.first;
    *out->mutable_last_granted_at() = use.last;
  }

  if (query.unreviewed_only) {
    std::erase_if(period, [](const v1::CaseEmergencyAccess* entry) { return entry->grant().has_review(); });
  }
  std::sort(period.begin(), period.end(), [](const v1::CaseEmergencyAccess* a, const v1::CaseEmergencyAccess* b) {
    const bool a_open = !a->grant().has_review(), b_open = !b->grant().has_review();
    if (a_open != b_open) return a_open;
    const google::protobuf::Timestamp &a_at = a->grant().granted_at(), &b_at = b->grant().granted_at();
    if (a_at != b_at) return a_at > b_at;
    return std::tie(a->case_id(), a->grant().grant_id()) < std::tie(b->case_id(), b->grant().grant_id());
  });
  for (const v1::CaseEmergencyAccess* entry : period) {
    if (response.grants_size() >= query.page_size) break;
    *response.add_grants() = *entry;
  }
  return response;
}

}  // namespace clinical::case_service

#include "validation.h"

#include <cctype>

#include <set>

#include "absl/strings/str_cat.h"
#include "access_rules.h"
#include "care_rules.h"
#include "absl/time/civil_time.h"
#include "google/protobuf/util/time_util.h"

namespace clinical::case_service {
namespace {

using google::protobuf::util::TimeUtil;

constexpr size_t kMaxId = 128;
constexpr size_t kMaxReason = 2000;
constexpr size_t kMaxText = 20000;

bool IsIdText(const std::string& text) {
  for (unsigned char ch : text) {
    if (!std::isgraph(ch)) return false;
  }
  return true;
}

void Id(const std::string& value, const char* field, grpcx::Violations& v, bool required = true) {
  if (value.empty()) {
    if (required) v.Add(field, "is required");
    return;
  }
  if (value.size() > kMaxId) {
    v.Add(field, absl::StrCat("must be at most ", kMaxId, " characters"));
  } else if (!IsIdText(value)) {
    v.Add(field, "must be printable ASCII without spaces");
  }
}

void Text(const std::string& value, const char* field, size_t max, grpcx::Violations& v,
          bool required = true) {
  if (value.empty()) {
    if (required) v.Add(field, "is required");
    return;
  }
  if (value.size() > max) v.Add(field, absl::StrCat("must be at most ", max, " bytes"));
}

void CaseId(const std::string& value, grpcx::Violations& v) {
  if (value.empty()) {
    v.Add("case_id", "is required");
  } else if (!IsUuid(value)) {
    v.Add("case_id", "must be a lowercase UUID");
  }
}

template <typename R>
void Envelope(const R& r, grpcx::Violations& v) {
  CaseId(r.case_id(), v);
  Id(r.command_id(), "command_id", v);
  if (r.has_expected_version() && r.expected_version() < 1) {
    v.Add("expected_version", "must be at least 1 when set (an existing case)");
  }
}

bool ValidTimestamp(const google::protobuf::Timestamp& t) {
  return t.seconds() >= TimeUtil::kTimestampMinSeconds &&
         t.seconds() <= TimeUtil::kTimestampMaxSeconds && t.nanos() >= 0 &&
         t.nanos() < 1'000'000'000;
}

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

// A fact recorded late (an intake entered after a downtime, an assessment administered at
// a home visit): not in the future, and not older than kMaxBackdate, so a typo in the year
// cannot move a fact years back in the case's history.
constexpr absl::Duration kMaxBackdate = absl::Hours(24 * 90);
void Backdated(const google::protobuf::Timestamp& t, const ValidationContext& c,
               grpcx::Violations& v) {
  if (!ValidTimestamp(t)) {
    v.Add("occurred_at", "is not a valid timestamp");
  } else if (ToTime(t) > c.now) {
    v.Add("occurred_at", "must not be in the future");
  } else if (ToTime(t) < c.now - kMaxBackdate) {
    v.Add("occurred_at", "must be at most 90 days ago");
  }
}

template <typename Enum>
void RequiredEnum(int value, bool (*is_valid)(int), const char* field, grpcx::Violations& v) {
  if (value == 0) {
    v.Add(field, "is required");
  } else if (!is_valid(value)) {
    v.Add(field, "is not a known value");
  }
}

void Range(int32_t value, int32_t low, int32_t high, const char* field, grpcx::Violations& v) {
  if (value < low || value > high) v.Add(field, absl::StrCat("must be between ", low, " and ", high));
}

bool ValidDate(const std::string& date, absl::Time now) {
  if (date.size() != 10 || date[4] != '-' || date[7] != '-') return false;
  absl::CivilDay day;
  if (!absl::ParseCivilTime(date, &day)) return false;
  if (absl::FormatCivilTime(day) != date) return false;  // rejects 2023-02-30 normalisation
  return day.year() >= 1880 && absl::FromCivil(day, absl::UTCTimeZone()) <= now;
}

void Program(const std::string& program, const char* field, const ValidationContext& c,
             grpcx::Violations& v, bool required) {
  if (program.empty()) {
    if (required) v.Add(field, "is required");
    return;
  }
  if (c.programs == nullptr || c.programs->Find(c.tenant_id, program) == nullptr) {
    v.Add(field, "is not a program this tenant offers");
  }
}

void Override(const v1::CapacityOverride& o, grpcx::Violations& v) {
  Text(o.reason(), "capacity_override.reason", kMaxReason, v);
}

// A relationship change entered late (AssignCase, TransferCase, RemoveCareTeamMember): see
// CheckEffectiveTime.
void EffectiveAt(const google::protobuf::Timestamp& t, const ValidationContext& c, grpcx::Violations& v) {
  if (!ValidTimestamp(t)) {
    v.Add("occurred_at", "is not a valid timestamp");
  } else if (auto problem = CheckEffectiveTime(ToTime(t), c.case_latest_event, c.now)) {
    v.Add("occurred_at", *problem);
  }
}

// Person ids in a list: each a valid id, none twice.
void UserIds(const google::protobuf::RepeatedPtrField<std::string>& ids, const std::string& field,
             grpcx::Violations& v) {
  std::set<std::string> seen;
  for (int i = 0; i < ids.size(); ++i) {
    const std::string at = absl::StrCat(field, "[", i, "]");
    if (ids[i].empty() || ids[i].size() > kMaxId || !IsIdText(ids[i])) {
      v.Add(at, "must be a user id");
    } else if (!seen.insert(ids[i]).second) {
      v.Add(at, "is listed twice");
    }
  }
}

// expected_version of the organisation aggregate: 0 (not configured yet) is a real version.
template <typename R>
void OrganisationEnvelope(const R& r, grpcx::Violations& v) {
  Id(r.command_id(), "command_id", v);
  if (r.has_expected_version() && r.expected_version() < 0) v.Add("expected_version", "must not be negative");
}

}  // namespace

bool IsUuid(const std::string& text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (ch != '-') return false;
    } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
      return false;
    }
  }
  return true;
}

void Validate(const v1::OpenCaseRequest& r, const ValidationContext& c, grpcx::Violations& v) {
  if (!r.case_id().empty() && !IsUuid(r.case_id())) v.Add("case_id", "must be a lowercase UUID");
  Id(r.command_id(), "command_id", v);
  if (r.has_expected_version() && r.expected_version() != 0) {
    v.Add("expected_version", "must be 0 or absent: a case is always new");
  }
  if (!r.has_patient()) {
    v.Add("patient", "is required");
  } else {
    const auto& p = r.patient();
    Id(p.mrn(), "patient.mrn", v);
    Text(p.given_name(), "patient.given_name", 100, v);
    Text(p.family_name(), "patient.family_name", 100, v);
    if (p.birth_date().empty()) {
      v.Add("patient.birth_date", "is required");
    } else if (!ValidDate(p.birth_date(), c.now)) {
      v.Add("patient.birth_date", "must be a past date YYYY-MM-DD");
    }
    if (!v1::AdministrativeGender_IsValid(p.gender())) v.Add("patient.gender", "is not a known value");
    Text(p.language(), "patient.language", 35, v, false);
  }
  Program(r.program(), "program", c, v, true);
  Range(r.priority(), 1, 5, "priority", v);
  Range(r.acuity(), 1, 5, "acuity", v);
  if (!r.has_referral()) {
    v.Add("referral", "is required");
  } else {
    RequiredEnum<v1::ReferralSource>(r.referral().source(), v1::ReferralSource_IsValid,
                                     "referral.source", v);
    Text(r.referral().reason(), "referral.reason", kMaxReason, v);
    Id(r.referral().referrer_id(), "referral.referrer_id", v, false);
    if (r.referral().has_received_at()) {
      if (!ValidTimestamp(r.referral().received_at())) {
        v.Add("referral.received_at", "is not a valid timestamp");
      } else if (ToTime(r.referral().received_at()) > c.now) {
        v.Add("referral.received_at", "must not be in the future");
      }
    }
  }
  const auto s = r.initial_status();
  if (s != v1::CASE_STATUS_UNSPECIFIED && s != v1::CASE_STATUS_PLANNED &&
      s != v1::CASE_STATUS_WAITLIST && s != v1::CASE_STATUS_ACTIVE) {
    v.Add("initial_status", "must be PLANNED, WAITLIST or ACTIVE");
  }
  Id(r.team_id(), "team_id", v, false);
  if (r.has_occurred_at()) Backdated(r.occurred_at(), c, v);
}

void Validate(const v1::ChangeCaseStatusRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  RequiredEnum<v1::CaseStatus>(r.status(), v1::CaseStatus_IsValid, "status", v);
  Text(r.reason(), "reason", kMaxReason, v, false);
}

void Validate(const v1::ChangeCaseStageRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  RequiredEnum<v1::CaseStage>(r.stage(), v1::CaseStage_IsValid, "stage", v);
  Text(r.reason(), "reason", kMaxReason, v, false);
}

void Validate(const v1::ReprioritizeCaseRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  Range(r.priority(), 1, 5, "priority", v);
  Range(r.acuity(), 1, 5, "acuity", v);
  Text(r.reason(), "reason", kMaxReason, v);
}

void Validate(const v1::AssignCaseRequest& r, const ValidationContext& c, grpcx::Violations& v) {
  Envelope(r, v);
  Id(r.case_manager_id(), "case_manager_id", v);
  Id(r.team_id(), "team_id", v, false);
  Text(r.reason(), "reason", kMaxReason, v, false);
  if (r.has_capacity_override()) Override(r.capacity_override(), v);
  if (r.has_occurred_at()) EffectiveAt(r.occurred_at(), c, v);
}

void Validate(const v1::AcceptAssignmentRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
}

void Validate(const v1::DeclineAssignmentRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  Text(r.reason(), "reason", kMaxReason, v);
}

void Validate(const v1::TransferCaseRequest& r, const ValidationContext& c, grpcx::Violations& v) {
  Envelope(r, v);
  Program(r.to_program(), "to_program", c, v, false);
  Id(r.to_team_id(), "to_team_id", v, false);
  if (r.to_program().empty() && r.to_team_id().empty()) {
    v.Add("to_program", "to_program or to_team_id is required");
  }
  Id(r.case_manager_id(), "case_manager_id", v, false);
  Text(r.reason(), "reason", kMaxReason, v);
  if (r.has_capacity_override()) Override(r.capacity_override(), v);
  if (r.has_occurred_at()) EffectiveAt(r.occurred_at(), c, v);
}

void Validate(const v1::BulkReassignCasesRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Id(r.command_id(), "command_id", v);
  Id(r.from_case_manager_id(), "from_case_manager_id", v);
  if (r.to_case_manager_ids().empty()) v.Add("to_case_manager_ids", "at least one is required");
  if (r.to_case_manager_ids_size() > 500) v.Add("to_case_manager_ids", "must be at most 500");
  for (int i = 0; i < r.to_case_manager_ids_size(); ++i) {
    const std::string field = absl::StrCat("to_case_manager_ids[", i, "]");
    if (r.to_case_manager_ids(i).empty() || r.to_case_manager_ids(i).size() > kMaxId ||
        !IsIdText(r.to_case_manager_ids(i))) {
      v.Add(field, "must be a user id");
    } else if (r.to_case_manager_ids(i) == r.from_case_manager_id()) {
      v.Add(field, "must differ from from_case_manager_id");
    }
  }
  RequiredEnum<v1::DistributionStrategy>(r.strategy(), v1::DistributionStrategy_IsValid,
                                         "strategy", v);
  Text(r.reason(), "reason", kMaxReason, v);
}

void Validate(const v1::DelegateTasksRequest& r, const ValidationContext& c, grpcx::Violations& v) {
  Envelope(r, v);
  Id(r.delegate_id(), "delegate_id", v);
  Text(r.scope(), "scope", kMaxReason, v);
  if (r.has_until()) {
    if (!ValidTimestamp(r.until())) {
      v.Add("until", "is not a valid timestamp");
    } else if (ToTime(r.until()) <= c.now) {
      v.Add("until", "must be in the future");
    }
  }
}

void Validate(const v1::AddNoteRequest& r, const ValidationContext& c, grpcx::Violations& v) {
  Envelope(r, v);
  RequiredEnum<v1::NoteKind>(r.kind(), v1::NoteKind_IsValid, "kind", v);
  if (!v1::ContactChannel_IsValid(r.channel())) {
    v.Add("channel", "is not a known value");
  } else if (r.kind() == v1::NOTE_KIND_CONTACT && (r.channel() == v1::CONTACT_CHANNEL_UNSPECIFIED ||
                                                  r.channel() == v1::CONTACT_CHANNEL_NONE)) {
    v.Add("channel", "is required for a contact note");
  }
  if (r.has_occurred_at()) {
    if (!ValidTimestamp(r.occurred_at())) {
      v.Add("occurred_at", "is not a valid timestamp");
    } else if (ToTime(r.occurred_at()) > c.now) {
      v.Add("occurred_at", "must not be in the future");
    }
  }
  Text(r.text(), "text", kMaxText, v);
  Range(r.duration_minutes(), 0, 24 * 60, "duration_minutes", v);
  if (!v1::InformationCategory_IsValid(r.category())) v.Add("category", "is not a known value");
}

void Validate(const v1::AmendNoteRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  Id(r.note_id(), "note_id", v);
  Text(r.text(), "text", kMaxText, v);
  Text(r.reason(), "reason", kMaxReason, v);
}

void Validate(const v1::MarkNoteEnteredInErrorRequest& r, const ValidationContext&,
              grpcx::Violations& v) {
  Envelope(r, v);
  Id(r.note_id(), "note_id", v);
  Text(r.reason(), "reason", kMaxReason, v);
}

void Validate(const v1::PutCaseOnHoldRequest& r, const ValidationContext& c, grpcx::Violations& v) {
  Envelope(r, v);
  Text(r.reason(), "reason", kMaxReason, v);
  if (!r.has_review_at()) {
    v.Add("review_at", "is required");
  } else if (!ValidTimestamp(r.review_at())) {
    v.Add("review_at", "is not a valid timestamp");
  } else if (ToTime(r.review_at()) <= c.now) {
    v.Add("review_at", "must be in the future");
  }
}

void Validate(const v1::EscalateCaseRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  RequiredEnum<v1::EscalationKind>(r.kind(), v1::EscalationKind_IsValid, "kind", v);
  RequiredEnum<v1::EscalationSeverity>(r.severity(), v1::EscalationSeverity_IsValid, "severity", v);
  Text(r.description(), "description", kMaxReason, v);
}

void Validate(const v1::ResolveEscalationRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  Id(r.escalation_id(), "escalation_id", v);
  Text(r.resolution(), "resolution", kMaxReason, v);
}

void Validate(const v1::RequestClosureRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  RequiredEnum<v1::ClosureReason>(r.reason(), v1::ClosureReason_IsValid, "reason", v);
  Text(r.outcome_summary(), "outcome_summary", kMaxText, v);
  if (!v1::Satisfaction_IsValid(r.satisfaction())) v.Add("satisfaction", "is not a known value");
}

void Validate(const v1::ApproveClosureRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  Text(r.comment(), "comment", kMaxReason, v, false);
}

void Validate(const v1::RejectClosureRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  Text(r.reason(), "reason", kMaxReason, v);
}

void Validate(const v1::ReopenCaseRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  Text(r.reason(), "reason", kMaxReason, v);
}

void Validate(const v1::CancelCaseRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  Text(r.reason(), "reason", kMaxReason, v);
}

void Validate(const v1::MarkCaseEnteredInErrorRequest& r, const ValidationContext&,
              grpcx::Violations& v) {
  Envelope(r, v);
  Text(r.reason(), "reason", kMaxReason, v);
}

void Validate(const v1::GetCaseRequest& r, const ValidationContext&, grpcx::Violations& v) {
  CaseId(r.case_id(), v);
}

void Validate(const v1::ListCaseHistoryRequest& r, const ValidationContext&, grpcx::Violations& v) {
  CaseId(r.case_id(), v);
  Range(r.page_size(), 0, 500, "page_size", v);
  if (!r.page_token().empty() && r.page_token().size() > 20) v.Add("page_token", "is not valid");
}

// ---- Clinical content (issue #5) ----

namespace {

constexpr int kMaxItems = 50;

bool DateText(const std::string& date) {
  if (date.size() != 10 || date[4] != '-' || date[7] != '-') return false;
  absl::CivilDay day;
  if (!absl::ParseCivilTime(date, &day)) return false;
  return absl::FormatCivilTime(day) == date && day.year() >= 1900 && day.year() <= 2200;
}

void OptionalEnum(int value, bool (*is_valid)(int), const char* field, grpcx::Violations& v) {
  if (!is_valid(value)) v.Add(field, "is not a known value");
}

template <typename Enums>
void EnumList(const Enums& values, bool (*is_valid)(int), const char* field, grpcx::Violations& v,
              bool required = true) {
  if (values.empty()) {
    if (required) v.Add(field, "must have at least one value");
    return;
  }
  if (values.size() > kMaxItems) v.Add(field, absl::StrCat("must have at most ", kMaxItems, " values"));
  for (int i = 0; i < values.size(); ++i) {
    if (values[i] == 0 || !is_valid(values[i])) {
      v.Add(absl::StrCat(field, "[", i, "]"), "is not a known value");
    }
  }
}

void MemberId(const std::string& value, const char* field, grpcx::Violations& v) { Id(value, field, v); }

void FutureTimestamp(const google::protobuf::Timestamp& t, const char* field, const ValidationContext& c,
                     grpcx::Violations& v) {
  if (!ValidTimestamp(t)) {
    v.Add(field, "is not a valid timestamp");
  } else if (ToTime(t) <= c.now) {
    v.Add(field, "must be in the future");
  }
}

bool IsCurrency(const std::string& code) {
  if (code.size() != 3) return false;
  for (char ch : code) {
    if (ch < 'A' || ch > 'Z') return false;
  }
  return true;
}

void UnitCost(const common::v1::Money& m, const char* field, grpcx::Violations& v) {
  if (!IsCurrency(m.currency_code())) {
    v.Add(absl::StrCat(field, ".currency_code"), "must be an ISO 4217 code (3 capital letters)");
  }
  if (m.minor_units() < 0) v.Add(absl::StrCat(field, ".minor_units"), "must not be negative");
}

void ConsentOverrideReason(const v1::ConsentOverride& o, grpcx::Violations& v) {
  Text(o.reason(), "consent_override.reason", kMaxReason, v);
}

}  // namespace

void Validate(const v1::RecordAssessmentRequest& r, const ValidationContext& c,
              grpcx::Violations& v) {
  Envelope(r, v);
  if (r.has_occurred_at()) Backdated(r.occurred_at(), c, v);
  for (const auto& violation : CheckResponses(r.instrument(), r.responses())) {
    v.Add(violation.field, violation.description);
  }
}

void Validate(const v1::ReviewRiskLevelRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  RequiredEnum<v1::RiskLevel>(r.risk_level(), v1::RiskLevel_IsValid, "risk_level", v);
  Text(r.reason(), "reason", kMaxReason, v);
}

void Validate(const v1::CreateCarePlanRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  Text(r.title(), "title", kMaxReason, v);
  if (r.problems_size() > kMaxItems) v.Add("problems", absl::StrCat("must have at most ", kMaxItems, " entries"));
  for (int i = 0; i < r.problems_size(); ++i) {
    if (r.problems(i).empty() || r.problems(i).size() > kMaxReason) {
      v.Add(absl::StrCat("problems[", i, "]"), absl::StrCat("must have 1 to ", kMaxReason, " bytes"));
    }
  }
  if (r.status() != v1::CARE_PLAN_STATUS_UNSPECIFIED && r.status() != v1::CARE_PLAN_STATUS_DRAFT &&
      r.status() != v1::CARE_PLAN_STATUS_ACTIVE) {
    v.Add("status", "must be DRAFT or ACTIVE");
  }
}

void Validate(const v1::ChangeCarePlanStatusRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  RequiredEnum<v1::CarePlanStatus>(r.status(), v1::CarePlanStatus_IsValid, "status", v);
  Text(r.reason(), "reason", kMaxReason, v, /*required=*/false);
}

void Validate(const v1::AddGoalRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  Text(r.description(), "description", kMaxReason, v);
  Text(r.measure(), "measure", kMaxReason, v);
  Text(r.target_value(), "target_value", kMaxId, v);
  if (r.target_date().empty()) {
    v.Add("target_date", "is required");
  } else if (!DateText(r.target_date())) {
    v.Add("target_date", "must be a date YYYY-MM-DD");
  }
  OptionalEnum(r.priority(), v1::GoalPriority_IsValid, "priority", v);
  Id(r.problem_id(), "problem_id", v, /*required=*/false);
  OptionalEnum(r.lifecycle_status(), v1::GoalLifecycleStatus_IsValid, "lifecycle_status", v);
}

void Validate(const v1::ChangeGoalStatusRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  Id(r.goal_id(), "goal_id", v);
  RequiredEnum<v1::GoalLifecycleStatus>(r.status(), v1::GoalLifecycleStatus_IsValid, "status", v);
  OptionalEnum(r.achievement_status(), v1::GoalAchievementStatus_IsValid, "achievement_status", v);
  Text(r.reason(), "reason", kMaxReason, v, /*required=*/false);
}

void Validate(const v1::RecordGoalProgressRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  Id(r.goal_id(), "goal_id", v);
  RequiredEnum<v1::GoalAchievementStatus>(r.achievement_status(), v1::GoalAchievementStatus_IsValid,
                                          "achievement_status", v);
  Text(r.value(), "value", kMaxId, v, /*required=*/false);
  Text(r.note(), "note", kMaxText, v, /*required=*/false);
}

void Validate(const v1::AddCareTaskRequest& r, const ValidationContext& c, grpcx::Violations& v) {
  Envelope(r, v);
  Text(r.description(), "description", kMaxReason, v);
  Id(r.goal_id(), "goal_id", v, /*required=*/false);
  Id(r.owner_id(), "owner_id", v);
  if (r.has_due_at()) FutureTimestamp(r.due_at(), "due_at", c, v);
  OptionalEnum(r.priority(), v1::TaskPriority_IsValid, "priority", v);
  if (r.status() != v1::TASK_STATUS_UNSPECIFIED && r.status() != v1::TASK_STATUS_DRAFT &&
      r.status() != v1::TASK_STATUS_REQUESTED && r.status() != v1::TASK_STATUS_READY) {
    v.Add("status", "must be DRAFT, REQUESTED or READY");
  }
}

void Validate(const v1::ChangeCareTaskStatusRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  Id(r.task_id(), "task_id", v);
  RequiredEnum<v1::TaskStatus>(r.status(), v1::TaskStatus_IsValid, "status", v);
  Text(r.reason(), "reason", kMaxReason, v, /*required=*/false);
  Id(r.owner_id(), "owner_id", v, /*required=*/false);
}

void Validate(const v1::AddCareTeamMemberRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  RequiredEnum<v1::CareTeamRole>(r.role(), v1::CareTeamRole_IsValid, "role", v);
  Text(r.name(), "name", kMaxId * 2, v);
  Text(r.organization(), "organization", kMaxId * 2, v, /*required=*/false);
  Text(r.specialty(), "specialty", kMaxId, v, /*required=*/false);
  Text(r.relationship(), "relationship", kMaxId, v, /*required=*/false);
  Id(r.staff_user_id(), "staff_user_id", v, /*required=*/false);
  if (r.contact_preferences_size() > 10) v.Add("contact_preferences", "must have at most 10 entries");
  for (int i = 0; i < r.contact_preferences_size(); ++i) {
    const auto& p = r.contact_preferences(i);
    if (p.method() == 0 || !v1::ContactMethod_IsValid(p.method())) {
      v.Add(absl::StrCat("contact_preferences[", i, "].method"), "is required");
    }
    if (p.value().empty() || p.value().size() > 256) {
      v.Add(absl::StrCat("contact_preferences[", i, "].value"), "must have 1 to 256 bytes");
    }
    if (p.when().size() > 256) v.Add(absl::StrCat("contact_preferences[", i, "].when"), "must be at most 256 bytes");
  }
  if (r.has_coverage()) {
    if (r.role() != v1::CARE_TEAM_ROLE_PAYER) v.Add("coverage", "is for payers only");
    Text(r.coverage().plan_name(), "coverage.plan_name", kMaxId * 2, v);
    Id(r.coverage().member_id(), "coverage.member_id", v);
    for (int i = 0; i < r.coverage().authorizations_size(); ++i) {
      const auto& a = r.coverage().authorizations(i);
      const std::string at = absl::StrCat("coverage.authorizations[", i, "]");
      Id(a.authorization_number(), (at + ".authorization_number").c_str(), v);
      OptionalEnum(a.service_type(), v1::ServiceType_IsValid, (at + ".service_type").c_str(), v);
      if (a.units() < 0) v.Add(at + ".units", "must not be negative");
      if (!a.valid_until().empty() && !DateText(a.valid_until())) {
        v.Add(at + ".valid_until", "must be a date YYYY-MM-DD");
      }
    }
  }
}

void Validate(const v1::RemoveCareTeamMemberRequest& r, const ValidationContext& c, grpcx::Violations& v) {
  Envelope(r, v);
  MemberId(r.member_id(), "member_id", v);
  Text(r.reason(), "reason", kMaxReason, v);
  if (r.has_occurred_at()) EffectiveAt(r.occurred_at(), c, v);
}

void Validate(const v1::RecordConsentRequest& r, const ValidationContext& c, grpcx::Violations& v) {
  Envelope(r, v);
  if (r.member_ids().empty()) v.Add("member_ids", "must name at least one care team member");
  for (int i = 0; i < r.member_ids_size(); ++i) {
    Id(r.member_ids(i), absl::StrCat("member_ids[", i, "]").c_str(), v);
  }
  EnumList(r.categories(), v1::InformationCategory_IsValid, "categories", v);
  EnumList(r.purposes(), v1::ConsentPurpose_IsValid, "purposes", v);
  RequiredEnum<v1::ConsentSource>(r.source(), v1::ConsentSource_IsValid, "source", v);
  if (r.has_expires_at()) FutureTimestamp(r.expires_at(), "expires_at", c, v);
}

void Validate(const v1::RevokeConsentRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  Id(r.consent_id(), "consent_id", v);
  Text(r.reason(), "reason", kMaxReason, v);
}

void Validate(const v1::DiscloseInformationRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  MemberId(r.member_id(), "member_id", v);
  EnumList(r.categories(), v1::InformationCategory_IsValid, "categories", v);
  RequiredEnum<v1::ConsentPurpose>(r.purpose(), v1::ConsentPurpose_IsValid, "purpose", v);
  if (r.has_consent_override()) ConsentOverrideReason(r.consent_override(), v);
}

void Validate(const v1::ReferToServiceRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  MemberId(r.member_id(), "member_id", v);
  RequiredEnum<v1::ServiceType>(r.service_type(), v1::ServiceType_IsValid, "service_type", v);
  Text(r.reason(), "reason", kMaxReason, v);
  Range(r.requested_units(), 1, 100000, "requested_units", v);
  if (!r.has_unit_cost()) {
    v.Add("unit_cost", "is required");
  } else {
    UnitCost(r.unit_cost(), "unit_cost", v);
  }
  Id(r.goal_id(), "goal_id", v, /*required=*/false);
  EnumList(r.shared_information(), v1::InformationCategory_IsValid, "shared_information", v);
  if (r.has_consent_override()) ConsentOverrideReason(r.consent_override(), v);
}

void Validate(const v1::AuthorizeServiceReferralRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  Id(r.referral_id(), "referral_id", v);
  Range(r.authorized_units(), 1, 100000, "authorized_units", v);
  Id(r.authorization_number(), "authorization_number", v);
  if (r.has_unit_cost()) UnitCost(r.unit_cost(), "unit_cost", v);
}

void Validate(const v1::RecordServiceDeliveryRequest& r, const ValidationContext& c, grpcx::Violations& v) {
  Envelope(r, v);
  Id(r.referral_id(), "referral_id", v);
  Range(r.units(), 1, 100000, "units", v);
  if (r.delivered_on().empty()) {
    v.Add("delivered_on", "is required");
  } else if (!DateText(r.delivered_on())) {
    v.Add("delivered_on", "must be a date YYYY-MM-DD");
  } else if (!ValidDate(r.delivered_on(), c.now)) {
    v.Add("delivered_on", "must not be in the future");
  }
}

void Validate(const v1::ChangeServiceReferralStatusRequest& r, const ValidationContext&,
              grpcx::Violations& v) {
  Envelope(r, v);
  Id(r.referral_id(), "referral_id", v);
  if (r.status() != v1::SERVICE_REFERRAL_STATUS_COMPLETED &&
      r.status() != v1::SERVICE_REFERRAL_STATUS_DENIED &&
      r.status() != v1::SERVICE_REFERRAL_STATUS_CANCELLED) {
    v.Add("status", "must be COMPLETED, DENIED or CANCELLED");
  }
  Text(r.reason(), "reason", kMaxReason, v, /*required=*/false);
}

// ---- The organisation and emergency access ----

namespace {
constexpr int kMaxPrivacyOfficers = 50;
constexpr int kMaxSupervisors = 50;
constexpr int kMaxMembers = 500;
}  // namespace

void Validate(const v1::ConfigureOrganisationRequest& r, const ValidationContext&, grpcx::Violations& v) {
  OrganisationEnvelope(r, v);
  if (r.privacy_officer_ids().empty()) v.Add("privacy_officer_ids", "at least one is required");
  if (r.privacy_officer_ids_size() > kMaxPrivacyOfficers) {
    v.Add("privacy_officer_ids", absl::StrCat("must have at most ", kMaxPrivacyOfficers, " entries"));
  }
  UserIds(r.privacy_officer_ids(), "privacy_officer_ids", v);
  const int32_t minutes = r.emergency_access_max_minutes();
  if (minutes != 0 && (minutes < 15 || minutes > 24 * 60)) {
    v.Add("emergency_access_max_minutes", "must be 0 (the platform default) or between 15 and 1440");
  }
}

void Validate(const v1::SetTeamRequest& r, const ValidationContext&, grpcx::Violations& v) {
  OrganisationEnvelope(r, v);
  if (!r.has_team()) {
    v.Add("team", "is required");
    return;
  }
  const v1::Team& team = r.team();
  Id(team.team_id(), "team.team_id", v);
  Text(team.name(), "team.name", kMaxId * 2, v);
  if (team.supervisor_ids().empty()) v.Add("team.supervisor_ids", "at least one is required");
  if (team.supervisor_ids_size() > kMaxSupervisors) {
    v.Add("team.supervisor_ids", absl::StrCat("must have at most ", kMaxSupervisors, " entries"));
  }
  if (team.member_ids_size() > kMaxMembers) {
    v.Add("team.member_ids", absl::StrCat("must have at most ", kMaxMembers, " entries"));
  }
  UserIds(team.supervisor_ids(), "team.supervisor_ids", v);
  UserIds(team.member_ids(), "team.member_ids", v);
  // One person, one place in a team: a supervisor listed as a member too is a mistake.
  const std::set<std::string> supervisors(team.supervisor_ids().begin(), team.supervisor_ids().end());
  for (int i = 0; i < team.member_ids_size(); ++i) {
    if (supervisors.count(team.member_ids(i)) > 0) {
      v.Add(absl::StrCat("team.member_ids[", i, "]"), "is a supervisor of the team already");
    }
  }
}

void Validate(const v1::GetOrganisationRequest&, const ValidationContext&, grpcx::Violations&) {}

void Validate(const v1::RequestEmergencyAccessRequest& r, const ValidationContext& c, grpcx::Violations& v) {
  Envelope(r, v);
  Text(r.reason(), "reason", kMaxEmergencyReason, v);
  if (auto problem = CheckEmergencyDuration(r.duration_minutes(), c.emergency_access_max_minutes)) {
    v.Add("duration_minutes", *problem);
  }
}

void Validate(const v1::ReviewEmergencyAccessRequest& r, const ValidationContext&, grpcx::Violations& v) {
  Envelope(r, v);
  Id(r.grant_id(), "grant_id", v);
  // A use found unjustified says why: that note is what follow-up acts on.
  Text(r.note(), "note", kMaxReason, v, /*required=*/!r.justified());
}

void Validate(const v1::ListEmergencyAccessRequest& r, const ValidationContext& c, grpcx::Violations& v) {
  if (r.has_since()) {
    if (!ValidTimestamp(r.since())) {
      v.Add("since", "is not a valid timestamp");
    } else if (ToTime(r.since()) > c.now) {
      v.Add("since", "must not be in the future");
    }
  }
  Range(r.page_size(), 0, 1000, "page_size", v);
  Range(r.repeated_use_threshold(), 0, 1000, "repeated_use_threshold", v);
}

}  // namespace clinical::case_service

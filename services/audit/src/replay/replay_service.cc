#include "replay_service.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "clinical/grpcx/status.h"
#include "google/protobuf/util/time_util.h"

namespace clinical::audit::replay {
namespace {

using google::protobuf::util::TimeUtil;

constexpr size_t kMaxId = 128;
constexpr int32_t kDefaultPageSize = 100;
constexpr int32_t kMaxPageSize = 500;

bool ValidTimestamp(const google::protobuf::Timestamp& t) {
  return t.seconds() >= TimeUtil::kTimestampMinSeconds &&
         t.seconds() <= TimeUtil::kTimestampMaxSeconds && t.nanos() >= 0 &&
         t.nanos() < 1'000'000'000;
}

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

google::protobuf::Timestamp ToProto(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

void Id(const std::string& value, const char* field, grpcx::Violations& v) {
  if (value.empty()) {
    v.Add(field, "is required");
  } else if (value.size() > kMaxId) {
    v.Add(field, absl::StrCat("must be at most ", kMaxId, " characters"));
  }
}

// Where a page ends: the sort key of its last entry (disclosed_at, case id, disclosure id).
// Continuing after a key, rather than at an index, stays right when disclosures are
// recorded between two pages.
using PageKey = std::tuple<int64_t, std::string, size_t, std::string>;

PageKey KeyOf(const v1::DisclosureEntry& e) {
  return {TimeUtil::TimestampToNanoseconds(e.disclosed_at()), e.case_id(), e.disclosure_id().size(),
          e.disclosure_id()};
}

std::string TokenOf(const v1::DisclosureEntry& e) {
  return absl::StrCat(TimeUtil::TimestampToNanoseconds(e.disclosed_at()), ",", e.case_id(), ",",
                      e.disclosure_id());
}

std::optional<PageKey> ParseToken(const std::string& token) {
  std::vector<std::string> parts = absl::StrSplit(token, ',');
  if (parts.size() != 3 || parts[1].empty() || parts[2].empty()) return std::nullopt;
  int64_t nanos = 0;
  const auto [end, error] = std::from_chars(parts[0].data(), parts[0].data() + parts[0].size(), nanos);
  if (error != std::errc() || end != parts[0].data() + parts[0].size()) return std::nullopt;
  return PageKey{nanos, parts[1], parts[2].size(), parts[2]};
}

void ValidateWindowEnd(const google::protobuf::Timestamp& t, const char* field,
                       grpcx::Violations& v) {
  if (!ValidTimestamp(t)) v.Add(field, "is not a valid timestamp");
}

}  // namespace

void Validate(const v1::ReplayCaseRequest& r, absl::Time now, grpcx::Violations& v) {
  Id(r.case_id(), "case_id", v);
  if (!r.has_as_of()) {
    v.Add("as_of", "is required");
  } else if (!ValidTimestamp(r.as_of())) {
    v.Add("as_of", "is not a valid timestamp");
  } else if (ToTime(r.as_of()) > now) {
    v.Add("as_of", "must not be in the future");
  }
  if (r.mode() == v1::REPLAY_MODE_UNSPECIFIED) {
    v.Add("mode", "is required");
  } else if (!v1::ReplayMode_IsValid(r.mode())) {
    v.Add("mode", "is not a known value");
  }
}

void Validate(const v1::ListDisclosuresRequest& r, absl::Time, grpcx::Violations& v) {
  if (r.case_id().empty() == r.patient_mrn().empty()) {
    v.Add(r.case_id().empty() ? "case_id" : "patient_mrn",
          "exactly one of case_id or patient_mrn is required");
  } else if (!r.case_id().empty()) {
    Id(r.case_id(), "case_id", v);
  } else {
    Id(r.patient_mrn(), "patient_mrn", v);
  }
  if (r.has_start_time()) ValidateWindowEnd(r.start_time(), "start_time", v);
  if (r.has_end_time()) ValidateWindowEnd(r.end_time(), "end_time", v);
  if (r.has_start_time() && r.has_end_time() && ValidTimestamp(r.start_time()) &&
      ValidTimestamp(r.end_time()) && ToTime(r.start_time()) > ToTime(r.end_time())) {
    v.Add("start_time", "must not be after end_time");
  }
  if (r.page_size() < 0 || r.page_size() > kMaxPageSize) {
    v.Add("page_size", absl::StrCat("must be between 0 and ", kMaxPageSize));
  }
  if (!r.page_token().empty() && !ParseToken(r.page_token()).has_value()) {
    v.Add("page_token", "is not a token this service issued");
  }
}

// True when a case has events and none of them belongs to `tenant_id`.
bool OnlyOfAnotherTenant(const std::vector<LogEvent>& events, const std::string& tenant_id) {
  if (events.empty()) return false;
  for (const LogEvent& e : events) {
    if (e.envelope.tenant_id() == tenant_id) return false;
  }
  return true;
}

absl::StatusOr<v1::ReplayCaseResponse> ReplayService::Replay(const grpcx::Caller& caller,
                                                             const v1::ReplayCaseRequest& request) {
  // Another tenant's case is NOT_FOUND (a refusal) before anything about the request is
  // judged: its events exist, none of them is this tenant's.
  std::optional<std::vector<LogEvent>> events;
  if (!request.case_id().empty()) {
    auto read = source_.CaseEvents(request.case_id());
    if (!read.ok()) return read.status();
    events = std::move(*read);
    if (OnlyOfAnotherTenant(*events, caller.tenant_id)) return grpcx::NotFoundInTenant("case");
  }
  grpcx::Violations violations;
  Validate(request, clock_(), violations);
  if (!violations.empty()) return violations.ToStatus();

  const absl::Time as_of = ToTime(request.as_of());
  auto folded = replay::ReplayCase(request.case_id(), caller.tenant_id, *events, as_of, request.mode());
  if (!folded.ok()) return folded.status();
  auto appointment_events = source_.AppointmentEvents(request.case_id(), caller.tenant_id);
  if (!appointment_events.ok()) return appointment_events.status();
  auto appointments = ReplayAppointments(*appointment_events, as_of, request.mode());
  if (!appointments.ok()) return appointments.status();

  v1::ReplayCaseResponse response;
  *response.mutable_case_() = std::move(folded->state);
  for (auto& id : folded->overdue_task_ids) response.add_overdue_task_ids(std::move(id));
  for (auto& a : appointments->appointments) *response.add_appointments() = std::move(a);
  response.set_mode(request.mode());
  *response.mutable_as_of() = request.as_of();
  response.set_events_folded(folded->events_folded);
  if (folded->last_folded.has_value()) {
    const common::v1::EventEnvelope& last = folded->last_folded->envelope;
    response.set_last_event_id(last.event_id());
    *response.mutable_last_event_occurred_at() = last.occurred_at();
    *response.mutable_last_event_recorded_at() = last.recorded_at();
    *response.mutable_last_event_position() = folded->last_folded->position;
  }
  response.set_events_left_out(folded->events_left_out);
  response.set_appointment_events_folded(appointments->events_folded);
  for (const auto& late : folded->late_recorded) {
    v1::LateRecordedEvent* out = response.add_late_recorded_events();
    out->set_event_id(late.event_id());
    out->set_event_type(late.event_type());
    *out->mutable_occurred_at() = late.occurred_at();
    *out->mutable_recorded_at() = late.recorded_at();
  }
  return response;
}

absl::StatusOr<v1::ListDisclosuresResponse> ReplayService::Disclosures(
    const grpcx::Caller& caller, const v1::ListDisclosuresRequest& request) {
  const absl::Time now = clock_();
  grpcx::Violations violations;
  Validate(request, now, violations);
  if (!violations.empty()) return violations.ToStatus();

  const absl::Time end = request.has_end_time() ? ToTime(request.end_time()) : now;
  const absl::Time start = request.has_start_time() ? ToTime(request.start_time()) : SixYearsBefore(end);

  std::vector<v1::DisclosureEntry> all;
  if (!request.case_id().empty()) {
    auto events = source_.CaseEvents(request.case_id());
    if (!events.ok()) return events.status();
    if (OnlyOfAnotherTenant(*events, caller.tenant_id)) return grpcx::NotFoundInTenant("case");
    bool visible = false;
    for (const LogEvent& e : *events) visible = visible || e.envelope.tenant_id() == caller.tenant_id;
    if (!visible) return absl::NotFoundError("case not found");
    auto found = DisclosuresOf(request.case_id(), caller.tenant_id, *events);
    if (!found.ok()) return found.status();
    all = std::move(*found);
  } else {
    auto cases = source_.PatientCaseEvents(caller.tenant_id, request.patient_mrn());
    if (!cases.ok()) return cases.status();
    for (const auto& [case_id, events] : *cases) {
      auto found = DisclosuresOf(case_id, caller.tenant_id, events);
      if (!found.ok()) return found.status();
      for (auto& entry : *found) all.push_back(std::move(entry));
    }
  }
  std::vector<v1::DisclosureEntry> window = Window(std::move(all), start, end);

  const int32_t page_size = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  auto it = window.begin();
  if (!request.page_token().empty()) {
    const PageKey after = *ParseToken(request.page_token());
    it = std::find_if(window.begin(), window.end(),
                      [&](const v1::DisclosureEntry& e) { return KeyOf(e) > after; });
  }
  v1::ListDisclosuresResponse response;
  for (; it != window.end() && response.disclosures_size() < page_size; ++it) {
    *response.add_disclosures() = *it;
  }
  if (it != window.end()) {
    response.set_next_page_token(TokenOf(response.disclosures(response.disclosures_size() - 1)));
  }
  *response.mutable_start_time() = ToProto(start);
  *response.mutable_end_time() = ToProto(end);
  return response;
}

grpc::Status ReplayService::ReplayCase(grpc::ServerContext* context,
                                       const v1::ReplayCaseRequest* request,
                                       v1::ReplayCaseResponse* response) {
  // First, before anything is read: the method's policy (auditors and privacy officers).
  auto caller = callers_.Authorize(*context, *request);
  if (!caller.ok()) return grpcx::ToGrpcStatus(caller.status(), *context);
  auto result = Replay(*caller, *request);
  if (!result.ok()) return grpcx::ToGrpcStatus(result.status(), *context);
  *response = std::move(*result);
  return grpc::Status::OK;
}

grpc::Status ReplayService::ListDisclosures(grpc::ServerContext* context,
                                            const v1::ListDisclosuresRequest* request,
                                            v1::ListDisclosuresResponse* response) {
  // First, before anything is read: the method's policy (auditors and privacy officers).
  auto caller = callers_.Authorize(*context, *request);
  if (!caller.ok()) return grpcx::ToGrpcStatus(caller.status(), *context);
  auto result = Disclosures(*caller, *request);
  if (!result.ok()) return grpcx::ToGrpcStatus(result.status(), *context);
  *response = std::move(*result);
  return grpc::Status::OK;
}

}  // namespace clinical::audit::replay

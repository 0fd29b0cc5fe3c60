#include "scheduling_engine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clinical/grpcx/status.h"

namespace clinical::scheduling {
namespace {

constexpr int kMaxParticipants = 20;
constexpr absl::Duration kMaxSlotWindow = absl::Hours(24 * 62);

// Optimistic concurrency: ABORTED when the request names a version the aggregate (a
// "calendar" or an "appointment") is not at; OK when it names none.
template <typename Request>
absl::Status ExpectedVersionHolds(const Request& request, int64_t version, const char* aggregate) {
  if (!request.has_expected_version() || request.expected_version() == version) {
    return absl::OkStatus();
  }
  return absl::AbortedError(absl::StrCat("version conflict: ", aggregate, " is at version ", version,
                                         ", expected ", request.expected_version()));
}

v1::CalendarOwnerKind OwnerKindOf(v1::ParticipantKind kind) {
  switch (kind) {
    case v1::PARTICIPANT_KIND_CASE_MANAGER: return v1::CALENDAR_OWNER_KIND_CASE_MANAGER;
    case v1::PARTICIPANT_KIND_ROOM: return v1::CALENDAR_OWNER_KIND_ROOM;
    case v1::PARTICIPANT_KIND_PROVIDER: return v1::CALENDAR_OWNER_KIND_PROVIDER;
    default: return v1::CALENDAR_OWNER_KIND_UNSPECIFIED;
  }
}

std::string ConflictMessage(const std::vector<Conflict>& conflicts) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < conflicts.size() && i < 10; ++i) {
    const Conflict& c = conflicts[i];
    parts.push_back(absl::StrCat("occurrence ", c.index, " (",
                                 absl::FormatTime(absl::RFC3339_sec, c.start, absl::UTCTimeZone()),
                                 "): ", c.participant, ": ", c.reason));
  }
  if (conflicts.size() > 10) parts.push_back(absl::StrCat(conflicts.size() - 10, " more"));
  return absl::StrCat("booking conflicts: ", absl::StrJoin(parts, "; "));
}

void ConflictToProto(const Conflict& c, v1::OccurrenceConflict* out) {
  out->set_index(c.index);
  *out->mutable_start_time() = ToProto(c.start);
  out->set_participant(c.participant);
  out->set_reason(c.reason);
  out->set_conflicting_appointment_id(c.appointment_id);
  out->set_conflicting_index(c.conflicting_index);
}

void AddOccurrenceTimes(const v1::Appointment& appointment,
                        google::protobuf::RepeatedPtrField<v1::OccurrenceTime>* out) {
  for (const v1::Occurrence& o : appointment.occurrences()) {
    v1::OccurrenceTime* t = out->Add();
    t->set_index(o.index());
    *t->mutable_start_time() = o.start_time();
    *t->mutable_end_time() = o.end_time();
  }
}

void ValidateParticipants(const google::protobuf::RepeatedPtrField<v1::Participant>& participants,
                          grpcx::Violations& violations) {
  if (participants.size() > kMaxParticipants) {
    violations.Add("participants", absl::StrCat("at most ", kMaxParticipants));
  }
  for (int i = 0; i < participants.size(); ++i) {
    const v1::Participant& p = participants[i];
    const std::string field = absl::StrCat("participants[", i, "]");
    if (p.kind() == v1::PARTICIPANT_KIND_UNSPECIFIED || !v1::ParticipantKind_IsValid(p.kind())) {
      violations.Add(field + ".kind", "is required");
    } else if (p.kind() != v1::PARTICIPANT_KIND_PATIENT && p.participant_id().empty()) {
      violations.Add(field + ".participant_id", "is required");
    } else if (p.participant_id().size() > 128) {
      violations.Add(field + ".participant_id", "is too long");
    }
  }
}

// The participants of a booking: as given, plus the patient (unless it is a care-team
// meeting without them) and the case's assigned case manager when none is named.
absl::StatusOr<google::protobuf::RepeatedPtrField<v1::Participant>> ResolveParticipants(
    const google::protobuf::RepeatedPtrField<v1::Participant>& given, v1::AppointmentType type,
    const CaseInfo& info) {
  google::protobuf::RepeatedPtrField<v1::Participant> out = given;
  bool has_patient = false, has_manager = false;
  for (v1::Participant& p : out) {
    if (p.kind() == v1::PARTICIPANT_KIND_PATIENT) {
      has_patient = true;
      p.clear_participant_id();
    }
    if (p.kind() == v1::PARTICIPANT_KIND_CASE_MANAGER) has_manager = true;
  }
  if (!has_patient && type != v1::APPOINTMENT_TYPE_CARE_TEAM_MEETING) {
    out.Add()->set_kind(v1::PARTICIPANT_KIND_PATIENT);
  }
  if (!has_manager) {
    if (info.case_manager_id.empty()) {
      return absl::FailedPreconditionError(
          "the case has no assigned case manager: name a case manager participant");
    }
    v1::Participant* manager = out.Add();
    manager->set_kind(v1::PARTICIPANT_KIND_CASE_MANAGER);
    manager->set_participant_id(info.case_manager_id);
  }
  return out;
}

}  // namespace

std::string ParticipantKey(const v1::Participant& participant, const std::string& case_id) {
  switch (participant.kind()) {
    case v1::PARTICIPANT_KIND_PATIENT: return absl::StrCat("patient:", case_id);
    case v1::PARTICIPANT_KIND_CASE_MANAGER: return absl::StrCat("case_manager:", participant.participant_id());
    case v1::PARTICIPANT_KIND_PROVIDER: return absl::StrCat("provider:", participant.participant_id());
    case v1::PARTICIPANT_KIND_FAMILY: return absl::StrCat("family:", participant.participant_id());
    case v1::PARTICIPANT_KIND_ROOM: return absl::StrCat("room:", participant.participant_id());
    default: return "";
  }
}

SchedulingEngine::SchedulingEngine(EventLog& log, CaseDirectory& cases, std::string topic,
                                   std::function<absl::Time()> clock,
                                   std::function<std::string()> new_id)
    : log_(log),
      cases_(cases),
      topic_(std::move(topic)),
      clock_(std::move(clock)),
      new_id_(std::move(new_id)) {}

// ---- State ---------------------------------------------------------------------------------

void SchedulingEngine::Unindex(const std::string& id, const Aggregate& aggregate) {
  if (aggregate.is_calendar) return;
  const v1::Appointment& a = aggregate.appointment;
  for (const v1::Participant& p : a.participants()) {
    auto it = busy_.find({aggregate.tenant_id, ParticipantKey(p, a.case_id())});
    if (it == busy_.end()) continue;
    for (const v1::Occurrence& o : a.occurrences()) {
      it->second.erase({FromProto(o.start_time()), FromProto(o.end_time()), id, o.index()});
    }
  }
}

void SchedulingEngine::Index(const std::string& id, const Aggregate& aggregate) {
  if (aggregate.is_calendar) {
    if (aggregate.calendar.version() > 0) {
      calendar_by_owner_[{aggregate.tenant_id, aggregate.calendar.owner_kind(),
                          aggregate.calendar.owner_id()}] = id;
    }
    return;
  }
  const v1::Appointment& a = aggregate.appointment;
  if (a.version() == 0) return;
  by_case_[{aggregate.tenant_id, a.case_id()}].insert(id);
  for (const v1::Participant& p : a.participants()) {
    if (p.kind() == v1::PARTICIPANT_KIND_FAMILY) continue;
    auto& set = busy_[{aggregate.tenant_id, ParticipantKey(p, a.case_id())}];
    for (const v1::Occurrence& o : a.occurrences()) {
      if (!IsActive(o.status())) continue;
      set.insert({FromProto(o.start_time()), FromProto(o.end_time()), id, o.index()});
    }
  }
}

void SchedulingEngine::Apply(const std::string& id, const std::string& tenant_id,
                             const v1::SchedulingEvent& event,
                             const common::v1::EventEnvelope& envelope,
                             const common::v1::LogPosition& position) {
  Aggregate& aggregate = aggregates_[id];
  Unindex(id, aggregate);
  if (aggregate.tenant_id.empty()) aggregate.tenant_id = tenant_id;
  aggregate.is_calendar = IsCalendarEvent(event);
  if (aggregate.is_calendar) {
    aggregate.calendar.set_calendar_id(id);
    EvolveCalendar(aggregate.calendar, event);
  } else {
    aggregate.appointment.set_appointment_id(id);
    EvolveAppointment(aggregate.appointment, event, FromProto(envelope.recorded_at()));
  }
  CommandRecord& record = aggregate.commands[envelope.command_id()];
  record.version = envelope.aggregate_version();
  record.position = position;
  if (event.has_calendar_exception_added()) {
    record.detail = event.calendar_exception_added().exception().exception_id();
  }
  if (event.has_calendar_created() || event.has_appointment_booked()) {
    created_by_command_[{tenant_id, envelope.command_id()}] = id;
  }
  Index(id, aggregate);
}

absl::Status SchedulingEngine::Replay(const eventstore::LoggedEvent& logged) {
  const common::v1::EventEnvelope& envelope = logged.envelope;
  auto event = FromEnvelope(envelope);
  if (!event.ok()) {
    return absl::DataLossError(absl::StrCat("partition ", logged.partition, " offset ",
                                            logged.offset, ": ", event.status().message()));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = aggregates_.find(envelope.aggregate_id());
  const int64_t version =
      it == aggregates_.end() ? 0
      : it->second.is_calendar ? it->second.calendar.version()
                               : it->second.appointment.version();
  if (envelope.aggregate_version() != version + 1) {
    return absl::DataLossError(absl::StrCat("partition ", logged.partition, " offset ",
                                            logged.offset, ": version gap"));
  }
  common::v1::LogPosition position;
  position.set_topic(topic_);
  position.set_partition(logged.partition);
  position.set_offset(logged.offset);
  Apply(envelope.aggregate_id(), envelope.tenant_id(), *event, envelope, position);
  return absl::OkStatus();
}

absl::Status SchedulingEngine::Reload(const std::string& id) {
  auto events = log_.Load(id, 1);
  if (!events.ok()) return events.status();
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = aggregates_.find(id); it != aggregates_.end()) {
    Unindex(id, it->second);
    aggregates_.erase(it);
  }
  for (const auto& logged : *events) {
    auto event = FromEnvelope(logged.envelope);
    if (!event.ok()) return absl::DataLossError(std::string(event.status().message()));
    common::v1::LogPosition position;
    position.set_topic(topic_);
    position.set_partition(logged.partition);
    position.set_offset(logged.offset);
    Apply(id, logged.envelope.tenant_id(), *event, logged.envelope, position);
  }
  stale_.erase(id);
  return absl::OkStatus();
}

absl::Status SchedulingEngine::ReloadStale() {
  std::set<std::string> stale;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stale = stale_;
  }
  for (const std::string& id : stale) {
    if (absl::Status s = Reload(id); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<SchedulingEngine::Aggregate> SchedulingEngine::Find(const std::string& tenant_id,
                                                                   const std::string& id,
                                                                   bool calendar) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = aggregates_.find(id);
  if (it != aggregates_.end() && it->second.tenant_id != tenant_id) {
    return grpcx::NotFoundInTenant(calendar ? "calendar" : "appointment");
  }
  if (it == aggregates_.end() || it->second.is_calendar != calendar) {
    return absl::NotFoundError(calendar ? "calendar not found" : "appointment not found");
  }
  return it->second;
}

std::optional<SchedulingEngine::Belonging> SchedulingEngine::AppointmentCase(
    const std::string& appointment_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = aggregates_.find(appointment_id);
  if (it == aggregates_.end() || it->second.is_calendar) return std::nullopt;
  return Belonging{it->second.tenant_id, it->second.appointment.case_id()};
}

std::optional<SchedulingEngine::Belonging> SchedulingEngine::CalendarOwner(const std::string& calendar_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = aggregates_.find(calendar_id);
  if (it == aggregates_.end() || !it->second.is_calendar) return std::nullopt;
  const v1::Calendar& calendar = it->second.calendar;
  const bool personal = calendar.owner_kind() == v1::CALENDAR_OWNER_KIND_CASE_MANAGER;
  return Belonging{it->second.tenant_id, personal ? calendar.owner_id() : ""};
}

bool SchedulingEngine::InAnotherTenant(const std::string& tenant_id, const std::string& id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = aggregates_.find(id);
  return it != aggregates_.end() && it->second.tenant_id != tenant_id;
}

absl::StatusOr<Outcome> SchedulingEngine::Commit(const grpcx::Caller& caller, const std::string& id,
                                                 int64_t current_version,
                                                 const std::string& command_id,
                                                 const std::vector<v1::SchedulingEvent>& events,
                                                 eventstore::ExpectedVersion expected) {
  eventstore::AppendRequest append;
  append.aggregate_id = id;
  append.expected_version = expected;
  append.command_id = command_id;
  const absl::Time now = clock_();
  for (const v1::SchedulingEvent& event : events) {
    common::v1::EventEnvelope& envelope = append.events.emplace_back();
    ToEnvelope(event, &envelope);
    *envelope.mutable_occurred_at() = ToProto(now);
    *envelope.mutable_actor() = caller.actor;
    envelope.set_tenant_id(caller.tenant_id);
    *envelope.mutable_trace() = caller.trace;
    envelope.set_correlation_id(command_id);
  }
  auto appended = log_.Append(append);
  if (!appended.ok() || appended->duplicate) {
    // Unknown outcome, or the log knew the command when memory did not: rebuild this
    // aggregate from the log before the next command.
    std::lock_guard<std::mutex> lock(mutex_);
    stale_.insert(id);
  }
  if (!appended.ok()) return appended.status();
  if (appended->duplicate) {
    return Outcome{id, appended->last_version, appended->position, true, ""};
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < events.size(); ++i) {
    common::v1::EventEnvelope& envelope = append.events[i];
    envelope.set_aggregate_version(appended->first_version + static_cast<int64_t>(i));
    envelope.set_command_id(command_id);
    // The time the store stamped on the log, so this state equals a replay of the log's (an
    // appointment's created_at did differ by the few ms between deciding and appending).
    *envelope.mutable_recorded_at() =
        appended->recorded_at.seconds() > 0 ? appended->recorded_at : ToProto(now);
    Apply(id, caller.tenant_id, events[i], envelope, appended->position);
  }
  (void)current_version;
  return Outcome{id, appended->last_version, appended->position, false, ""};
}

absl::StatusOr<CaseInfo> SchedulingEngine::BookableCase(const std::string& tenant_id,
                                                        const std::string& case_id,
                                                        bool must_accept_bookings) {
  auto info = cases_.Lookup(case_id);
  if (!info.ok()) {
    if (info.status().code() == absl::StatusCode::kNotFound) return absl::NotFoundError("case not found");
    return info.status();
  }
  if (info->tenant_id != tenant_id) return grpcx::NotFoundInTenant("case");
  if (must_accept_bookings && !CaseAcceptsBookings(info->status)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the case is ", case_::v1::CaseStatus_Name(info->status),
                     ": no appointments can be booked or moved for it"));
  }
  return info;
}

absl::StatusOr<SchedulingEngine::Schedules> SchedulingEngine::BuildSchedules(
    const std::string& tenant_id, const std::string& case_id,
    const google::protobuf::RepeatedPtrField<v1::Participant>& participants, bool skip_patient,
    absl::Time from, absl::Time to) const {
  Schedules out;
  bool zone_set = false;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const v1::Participant& p : participants) {
    if (p.kind() == v1::PARTICIPANT_KIND_FAMILY) continue;
    if (p.kind() == v1::PARTICIPANT_KIND_PATIENT && skip_patient) continue;
    ParticipantSchedule schedule;
    schedule.label = ParticipantKey(p, case_id);
    const v1::CalendarOwnerKind owner_kind = OwnerKindOf(p.kind());
    if (owner_kind != v1::CALENDAR_OWNER_KIND_UNSPECIFIED) {
      auto c = calendar_by_owner_.find({tenant_id, owner_kind, p.participant_id()});
      if (c != calendar_by_owner_.end()) {
        out.calendars.push_back(std::make_unique<v1::Calendar>(aggregates_.at(c->second).calendar));
        schedule.calendar = out.calendars.back().get();
        if (!zone_set) {
          zone_set = absl::LoadTimeZone(schedule.calendar->time_zone(), &out.zone);
        }
      } else if (p.kind() != v1::PARTICIPANT_KIND_PROVIDER) {
        return absl::FailedPreconditionError(
            absl::StrCat(schedule.label, " has no calendar: create one first"));
      }
    }
    // Bookings that may be in the way: anything starting within two days of the range
    // (covers the longest appointment, the largest buffer and the local day's limit).
    if (auto b = busy_.find({tenant_id, schedule.label}); b != busy_.end()) {
      auto it = b->second.lower_bound({from - absl::Hours(48), {}, "", 0});
      for (; it != b->second.end() && it->start <= to + absl::Hours(48); ++it) {
        schedule.busy.push_back({{it->start, it->end}, it->appointment_id, it->index});
      }
    }
    out.list.push_back(std::move(schedule));
  }
  return out;
}

// ---- Calendars -----------------------------------------------------------------------------

absl::StatusOr<Outcome> SchedulingEngine::CreateCalendar(const grpcx::Caller& caller,
                                                         const v1::CreateCalendarRequest& request) {
  grpcx::Violations violations;
  if (request.command_id().empty()) violations.Add("command_id", "is required");
  if (request.owner_kind() == v1::CALENDAR_OWNER_KIND_UNSPECIFIED ||
      !v1::CalendarOwnerKind_IsValid(request.owner_kind())) {
    violations.Add("owner_kind", "is required");
  }
  if (request.owner_id().empty() || request.owner_id().size() > 128) {
    violations.Add("owner_id", "is required (at most 128 characters)");
  }
  for (auto& [field, why] : CalendarRuleViolations(request.time_zone(), request.working_hours(),
                                                   request.buffer_minutes(),
                                                   request.max_appointments_per_day())) {
    violations.Add(field, why);
  }
  if (!violations.empty()) return violations.ToStatus();

  std::lock_guard<std::mutex> command_lock(command_mutex_);
  if (absl::Status s = ReloadStale(); !s.ok()) return s;
  std::string id;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = created_by_command_.find({caller.tenant_id, request.command_id()});
        it != created_by_command_.end()) {
      const Aggregate& a = aggregates_.at(it->second);
      const CommandRecord& r = a.commands.at(request.command_id());
      return Outcome{it->second, r.version, r.position, true, ""};
    }
    if (calendar_by_owner_.count({caller.tenant_id, request.owner_kind(), request.owner_id()})) {
      return absl::AlreadyExistsError("this owner already has a calendar");
    }
  }
  id = new_id_();
  v1::SchedulingEvent event;
  v1::CalendarCreated* created = event.mutable_calendar_created();
  created->set_owner_kind(request.owner_kind());
  created->set_owner_id(request.owner_id());
  created->set_time_zone(request.time_zone());
  *created->mutable_working_hours() = request.working_hours();
  created->set_buffer_minutes(request.buffer_minutes());
  created->set_max_appointments_per_day(request.max_appointments_per_day());
  return Commit(caller, id, 0, request.command_id(), {event}, eventstore::ExpectedVersion::NoStream());
}

absl::StatusOr<Outcome> SchedulingEngine::UpdateCalendarRules(
    const grpcx::Caller& caller, const v1::UpdateCalendarRulesRequest& request) {
  grpcx::Violations violations;
  if (request.command_id().empty()) violations.Add("command_id", "is required");
  if (request.calendar_id().empty()) violations.Add("calendar_id", "is required");
  for (auto& [field, why] : CalendarRuleViolations(request.time_zone(), request.working_hours(),
                                                   request.buffer_minutes(),
                                                   request.max_appointments_per_day())) {
    violations.Add(field, why);
  }
  if (!violations.empty()) return violations.ToStatus();
  std::lock_guard<std::mutex> command_lock(command_mutex_);
  if (absl::Status s = ReloadStale(); !s.ok()) return s;
  auto found = Find(caller.tenant_id, request.calendar_id(), true);
  if (!found.ok()) return found.status();
  if (auto c = found->commands.find(request.command_id()); c != found->commands.end()) {
    return Outcome{request.calendar_id(), c->second.version, c->second.position, true, ""};
  }
  const int64_t version = found->calendar.version();
  if (absl::Status s = ExpectedVersionHolds(request, version, "calendar"); !s.ok()) return s;
  v1::SchedulingEvent event;
  v1::CalendarRulesChanged* changed = event.mutable_calendar_rules_changed();
  changed->set_time_zone(request.time_zone());
  *changed->mutable_working_hours() = request.working_hours();
  changed->set_buffer_minutes(request.buffer_minutes());
  changed->set_max_appointments_per_day(request.max_appointments_per_day());
  return Commit(caller, request.calendar_id(), version, request.command_id(), {event},
                eventstore::ExpectedVersion::Exactly(version));
}

absl::StatusOr<Outcome> SchedulingEngine::AddCalendarException(
    const grpcx::Caller& caller, const v1::AddCalendarExceptionRequest& request) {
  grpcx::Violations violations;
  if (request.command_id().empty()) violations.Add("command_id", "is required");
  if (request.calendar_id().empty()) violations.Add("calendar_id", "is required");
  if (request.kind() == v1::CALENDAR_EXCEPTION_KIND_UNSPECIFIED ||
      !v1::CalendarExceptionKind_IsValid(request.kind())) {
    violations.Add("kind", "is required");
  }
  if (!request.has_start_time()) violations.Add("start_time", "is required");
  if (!request.has_end_time()) violations.Add("end_time", "is required");
  if (request.has_start_time() && request.has_end_time() &&
      FromProto(request.end_time()) <= FromProto(request.start_time())) {
    violations.Add("end_time", "must be after start_time");
  }
  if (!violations.empty()) return violations.ToStatus();
  std::lock_guard<std::mutex> command_lock(command_mutex_);
  if (absl::Status s = ReloadStale(); !s.ok()) return s;
  auto found = Find(caller.tenant_id, request.calendar_id(), true);
  if (!found.ok()) return found.status();
  if (auto c = found->commands.find(request.command_id()); c != found->commands.end()) {
    return Outcome{request.calendar_id(), c->second.version, c->second.position, true,
                   c->second.detail};
  }
  const int64_t version = found->calendar.version();
  if (absl::Status s = ExpectedVersionHolds(request, version, "calendar"); !s.ok()) return s;
  v1::SchedulingEvent event;
  v1::CalendarException* exception = event.mutable_calendar_exception_added()->mutable_exception();
  const std::string exception_id = new_id_();
  exception->set_exception_id(exception_id);
  exception->set_kind(request.kind());
  *exception->mutable_start_time() = request.start_time();
  *exception->mutable_end_time() = request.end_time();
  auto outcome = Commit(caller, request.calendar_id(), version, request.command_id(), {event},
                        eventstore::ExpectedVersion::Exactly(version));
  if (outcome.ok() && !outcome->duplicate) outcome->detail = exception_id;
  return outcome;
}

absl::StatusOr<v1::Calendar> SchedulingEngine::GetCalendar(
    const std::string& tenant_id, const v1::GetCalendarRequest& request) const {
  std::string id = request.calendar_id();
  if (id.empty()) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = calendar_by_owner_.find({tenant_id, request.owner_kind(), request.owner_id()});
    if (it == calendar_by_owner_.end()) return absl::NotFoundError("calendar not found");
    id = it->second;
  }
  auto found = Find(tenant_id, id, true);
  if (!found.ok()) return found.status();
  return found->calendar;
}

// ---- Appointments --------------------------------------------------------------------------

absl::StatusOr<v1::FindAvailableSlotsResponse> SchedulingEngine::FindAvailableSlots(
    const grpcx::Caller& caller, const v1::FindAvailableSlotsRequest& request) {
  grpcx::Violations violations;
  if (request.case_id().empty()) violations.Add("case_id", "is required");
  ValidateParticipants(request.participants(), violations);
  const absl::Duration duration = FromProto(request.duration());
  if (duration <= absl::ZeroDuration() || duration > kMaxDuration) {
    violations.Add("duration", "must be positive and at most 12 hours");
  }
  const Interval window{FromProto(request.window_start_time()), FromProto(request.window_end_time())};
  if (!request.has_window_start_time()) violations.Add("window_start_time", "is required");
  if (!request.has_window_end_time()) violations.Add("window_end_time", "is required");
  if (window.end <= window.start || window.end - window.start > kMaxSlotWindow) {
    violations.Add("window_end_time", "must be after the start and within 62 days of it");
  }
  if (request.max_slots() < 0 || request.max_slots() > 200) {
    violations.Add("max_slots", "must be between 0 and 200");
  }
  const absl::Duration step = request.has_step() ? FromProto(request.step()) : absl::Minutes(15);
  if (step < absl::Minutes(5) || step > absl::Hours(24)) {
    violations.Add("step", "must be between 5 minutes and 24 hours");
  }
  if (!violations.empty()) return violations.ToStatus();
  auto info = BookableCase(caller.tenant_id, request.case_id(), true);
  if (!info.ok()) return info.status();
  auto participants = ResolveParticipants(request.participants(), request.type(), *info);
  if (!participants.ok()) return participants.status();
  auto schedules = BuildSchedules(caller.tenant_id, request.case_id(), *participants, false,
                                  window.start, window.end);
  if (!schedules.ok()) return schedules.status();
  SlotQuery query;
  query.window = window;
  query.duration = duration;
  query.step = step;
  query.max_slots = request.max_slots() == 0 ? 20 : request.max_slots();
  query.not_before = clock_();
  v1::FindAvailableSlotsResponse response;
  for (const Interval& slot : FindSlots(query, schedules->list)) {
    v1::Slot* s = response.add_slots();
    *s->mutable_start_time() = ToProto(slot.start);
    *s->mutable_end_time() = ToProto(slot.end);
  }
  return response;
}

absl::StatusOr<v1::BookAppointmentResponse> SchedulingEngine::Book(
    const grpcx::Caller& caller, const v1::BookAppointmentRequest& request) {
  grpcx::Violations violations;
  if (request.command_id().empty()) violations.Add("command_id", "is required");
  if (request.appointment_id().size() > 64) violations.Add("appointment_id", "is too long");
  if (request.case_id().empty()) violations.Add("case_id", "is required");
  if (request.type() == v1::APPOINTMENT_TYPE_UNSPECIFIED ||
      !v1::AppointmentType_IsValid(request.type())) {
    violations.Add("type", "is required");
  }
  ValidateParticipants(request.participants(), violations);
  if (!request.has_start_time()) violations.Add("start_time", "is required");
  const absl::Duration duration = FromProto(request.duration());
  if (duration <= absl::ZeroDuration() || duration > kMaxDuration) {
    violations.Add("duration", "must be positive and at most 12 hours");
  }
  if ((request.type() == v1::APPOINTMENT_TYPE_HOME_VISIT ||
       request.type() == v1::APPOINTMENT_TYPE_OFFICE_VISIT) &&
      request.location().empty()) {
    violations.Add("location", "is required for visits");
  }
  if (request.type() == v1::APPOINTMENT_TYPE_TELEHEALTH && request.virtual_link().empty()) {
    violations.Add("virtual_link", "is required for telehealth");
  }
  absl::TimeZone zone = absl::UTCTimeZone();
  if (!request.time_zone().empty() && !absl::LoadTimeZone(request.time_zone(), &zone)) {
    violations.Add("time_zone", "is not a known IANA time zone");
  }
  const bool recurring = request.has_recurrence() &&
                         request.recurrence().frequency() != v1::FREQUENCY_UNSPECIFIED;
  if (recurring && request.time_zone().empty()) {
    violations.Add("time_zone", "is required with a recurrence");
  }
  if (request.status() != v1::APPOINTMENT_STATUS_UNSPECIFIED &&
      request.status() != v1::APPOINTMENT_STATUS_PROPOSED &&
      request.status() != v1::APPOINTMENT_STATUS_PENDING &&
      request.status() != v1::APPOINTMENT_STATUS_BOOKED &&
      request.status() != v1::APPOINTMENT_STATUS_WAITLIST) {
    violations.Add("status", "must be PROPOSED, PENDING, BOOKED or WAITLIST");
  }
  absl::StatusOr<std::vector<Interval>> series = std::vector<Interval>{};
  if (violations.empty()) {
    series = ExpandSeries(FromProto(request.start_time()), duration, zone,
                          recurring ? &request.recurrence() : nullptr);
    if (!series.ok()) violations.Add("recurrence", std::string(series.status().message()));
  }
  if (!violations.empty()) return violations.ToStatus();
  const v1::AppointmentStatus status = request.status() == v1::APPOINTMENT_STATUS_UNSPECIFIED
                                           ? v1::APPOINTMENT_STATUS_BOOKED
                                           : request.status();

  auto info = BookableCase(caller.tenant_id, request.case_id(), true);
  if (!info.ok()) return info.status();
  auto participants = ResolveParticipants(request.participants(), request.type(), *info);
  if (!participants.ok()) return participants.status();

  std::lock_guard<std::mutex> command_lock(command_mutex_);
  if (absl::Status s = ReloadStale(); !s.ok()) return s;
  std::string id = request.appointment_id();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (id.empty()) {
      auto it = created_by_command_.find({caller.tenant_id, request.command_id()});
      if (it != created_by_command_.end()) id = it->second;
    }
    if (!id.empty()) {
      if (auto it = aggregates_.find(id); it != aggregates_.end()) {
        const Aggregate& a = it->second;
        if (a.tenant_id == caller.tenant_id && !a.is_calendar) {
          if (auto c = a.commands.find(request.command_id()); c != a.commands.end()) {
            v1::BookAppointmentResponse response;
            response.set_appointment_id(id);
            response.set_version(c->second.version);
            *response.mutable_position() = c->second.position;
            AddOccurrenceTimes(a.appointment, response.mutable_occurrences());
            return response;
          }
        }
        return absl::AlreadyExistsError("appointment id is already in use");
      }
    }
  }
  if (id.empty()) id = new_id_();

  const absl::Time now = clock_();
  std::vector<Candidate> candidates;
  for (size_t i = 0; i < series->size(); ++i) {
    candidates.push_back({static_cast<int32_t>(i), (*series)[i]});
  }
  if (series->front().start <= now) {
    return grpcx::InvalidArgument("invalid request", {{"start_time", "must be in the future"}});
  }
  v1::BookAppointmentResponse response;
  response.set_appointment_id(id);
  // A waitlisted request holds no time, so it is not checked now (it is when it is booked).
  if (status != v1::APPOINTMENT_STATUS_WAITLIST) {
    auto schedules = BuildSchedules(caller.tenant_id, request.case_id(), *participants,
                                    request.allow_patient_overlap(), series->front().start,
                                    series->back().end);
    if (!schedules.ok()) return schedules.status();
    const std::vector<Conflict> conflicts = CheckCandidates(candidates, schedules->list);
    if (request.validate_only()) {
      for (const Conflict& c : conflicts) ConflictToProto(c, response.add_conflicts());
    } else if (!conflicts.empty()) {
      return absl::FailedPreconditionError(ConflictMessage(conflicts));
    }
  }
  v1::SchedulingEvent event;
  v1::AppointmentBooked* booked = event.mutable_appointment_booked();
  booked->set_case_id(request.case_id());
  booked->set_type(request.type());
  *booked->mutable_participants() = *participants;
  booked->set_location(request.location());
  booked->set_virtual_link(request.virtual_link());
  booked->set_time_zone(request.time_zone().empty() ? "UTC" : request.time_zone());
  if (recurring) *booked->mutable_recurrence() = request.recurrence();
  for (const Candidate& c : candidates) {
    v1::OccurrenceTime* t = booked->add_occurrences();
    t->set_index(c.index);
    *t->mutable_start_time() = ToProto(c.when.start);
    *t->mutable_end_time() = ToProto(c.when.end);
  }
  booked->set_status(status);
  booked->set_patient_overlap_overridden(request.allow_patient_overlap());
  if (request.validate_only()) {
    *response.mutable_occurrences() = booked->occurrences();
    return response;
  }
  auto outcome = Commit(caller, id, 0, request.command_id(), {event},
                        eventstore::ExpectedVersion::NoStream());
  if (!outcome.ok()) return outcome.status();
  response.set_version(outcome->version);
  *response.mutable_position() = outcome->position;
  *response.mutable_occurrences() = booked->occurrences();
  return response;
}

absl::StatusOr<v1::RescheduleAppointmentResponse> SchedulingEngine::Reschedule(
    const grpcx::Caller& caller, const v1::RescheduleAppointmentRequest& request) {
  grpcx::Violations violations;
  if (request.command_id().empty()) violations.Add("command_id", "is required");
  if (request.appointment_id().empty()) violations.Add("appointment_id", "is required");
  if (request.scope() == v1::CHANGE_SCOPE_UNSPECIFIED || !v1::ChangeScope_IsValid(request.scope())) {
    violations.Add("scope", "is required");
  }
  if (!request.has_start_time()) violations.Add("start_time", "is required");
  std::optional<absl::Duration> duration;
  if (request.has_duration()) {
    duration = FromProto(request.duration());
    if (*duration <= absl::ZeroDuration() || *duration > kMaxDuration) {
      violations.Add("duration", "must be positive and at most 12 hours");
    }
  }
  if (!violations.empty()) return violations.ToStatus();
  auto current = Find(caller.tenant_id, request.appointment_id(), false);
  if (!current.ok()) return current.status();
  auto info = BookableCase(caller.tenant_id, current->appointment.case_id(), true);
  if (!info.ok()) return info.status();

  std::lock_guard<std::mutex> command_lock(command_mutex_);
  if (absl::Status s = ReloadStale(); !s.ok()) return s;
  auto found = Find(caller.tenant_id, request.appointment_id(), false);
  if (!found.ok()) return found.status();
  const v1::Appointment& appointment = found->appointment;
  v1::RescheduleAppointmentResponse response;
  if (auto c = found->commands.find(request.command_id()); c != found->commands.end()) {
    response.set_version(c->second.version);
    *response.mutable_position() = c->second.position;
    AddOccurrenceTimes(appointment, response.mutable_occurrences());
    return response;
  }
  if (absl::Status s = ExpectedVersionHolds(request, appointment.version(), "appointment"); !s.ok()) {
    return s;
  }
  absl::TimeZone zone;
  if (!absl::LoadTimeZone(appointment.time_zone(), &zone)) zone = absl::UTCTimeZone();
  auto plan = PlanReschedule(appointment, request.index(), request.scope(),
                             FromProto(request.start_time()), duration, zone);
  if (!plan.ok()) return plan.status();
  const absl::Time now = clock_();
  std::vector<Candidate> candidates;
  std::set<std::pair<std::string, int32_t>> ignore;
  for (const auto& change : *plan) {
    candidates.push_back({change.index(), {FromProto(change.start_time()), FromProto(change.end_time())}});
    ignore.insert({appointment.appointment_id(), change.index()});
    if (FromProto(change.start_time()) <= now) {
      return grpcx::InvalidArgument("invalid request",
                                    {{"start_time", "moves an occurrence into the past"}});
    }
  }
  auto schedules = BuildSchedules(caller.tenant_id, appointment.case_id(), appointment.participants(),
                                  request.allow_patient_overlap() || appointment.patient_overlap_overridden(),
                                  candidates.front().when.start, candidates.back().when.end);
  if (!schedules.ok()) return schedules.status();
  std::vector<Candidate> active;
  for (const Candidate& c : candidates) {
    if (appointment.occurrences(c.index).status() != v1::APPOINTMENT_STATUS_WAITLIST) active.push_back(c);
  }
  if (auto conflicts = CheckCandidates(active, schedules->list, ignore); !conflicts.empty()) {
    return absl::FailedPreconditionError(ConflictMessage(conflicts));
  }
  v1::SchedulingEvent event;
  for (auto& change : *plan) *event.mutable_appointment_rescheduled()->add_changes() = change;
  event.mutable_appointment_rescheduled()->set_reason(request.reason());
  auto outcome = Commit(caller, appointment.appointment_id(), appointment.version(),
                        request.command_id(), {event},
                        eventstore::ExpectedVersion::Exactly(appointment.version()));
  if (!outcome.ok()) return outcome.status();
  response.set_version(outcome->version);
  *response.mutable_position() = outcome->position;
  auto after = Find(caller.tenant_id, appointment.appointment_id(), false);
  if (after.ok()) AddOccurrenceTimes(after->appointment, response.mutable_occurrences());
  return response;
}

absl::StatusOr<v1::CancelAppointmentResponse> SchedulingEngine::Cancel(
    const grpcx::Caller& caller, const v1::CancelAppointmentRequest& request) {
  grpcx::Violations violations;
  if (request.command_id().empty()) violations.Add("command_id", "is required");
  if (request.appointment_id().empty()) violations.Add("appointment_id", "is required");
  if (request.scope() == v1::CHANGE_SCOPE_UNSPECIFIED || !v1::ChangeScope_IsValid(request.scope())) {
    violations.Add("scope", "is required");
  }
  if (request.reason() == v1::CANCELLATION_REASON_UNSPECIFIED ||
      !v1::CancellationReason_IsValid(request.reason())) {
    violations.Add("reason", "is required");
  }
  if (request.comment().size() > 2000) violations.Add("comment", "is too long");
  if (!violations.empty()) return violations.ToStatus();
  std::lock_guard<std::mutex> command_lock(command_mutex_);
  if (absl::Status s = ReloadStale(); !s.ok()) return s;
  auto found = Find(caller.tenant_id, request.appointment_id(), false);
  if (!found.ok()) return found.status();
  const v1::Appointment& appointment = found->appointment;
  v1::CancelAppointmentResponse response;
  if (auto c = found->commands.find(request.command_id()); c != found->commands.end()) {
    response.set_version(c->second.version);
    *response.mutable_position() = c->second.position;
    return response;
  }
  if (absl::Status s = ExpectedVersionHolds(request, appointment.version(), "appointment"); !s.ok()) {
    return s;
  }
  auto affected = AffectedOccurrences(appointment, request.index(), request.scope());
  if (!affected.ok()) return affected.status();
  for (int32_t index : *affected) {
    // A cancellation is only possible where FHIR allows it (not once the visit is under way).
    const v1::Occurrence& o = appointment.occurrences(index);
    if (absl::Status s = CheckTransition(o.status(), v1::APPOINTMENT_STATUS_CANCELLED,
                                         {FromProto(o.start_time()), FromProto(o.end_time())}, clock_());
        !s.ok()) {
      return s;
    }
  }
  v1::SchedulingEvent event;
  v1::AppointmentCancelled* cancelled = event.mutable_appointment_cancelled();
  for (int32_t index : *affected) cancelled->add_indexes(index);
  cancelled->set_reason(request.reason());
  cancelled->set_comment(request.comment());
  auto outcome = Commit(caller, appointment.appointment_id(), appointment.version(),
                        request.command_id(), {event},
                        eventstore::ExpectedVersion::Exactly(appointment.version()));
  if (!outcome.ok()) return outcome.status();
  response.set_version(outcome->version);
  *response.mutable_position() = outcome->position;
  *response.mutable_cancelled_indexes() = cancelled->indexes();
  return response;
}

absl::StatusOr<v1::UpdateAppointmentStatusResponse> SchedulingEngine::UpdateStatus(
    const grpcx::Caller& caller, const v1::UpdateAppointmentStatusRequest& request) {
  grpcx::Violations violations;
  if (request.command_id().empty()) violations.Add("command_id", "is required");
  if (request.appointment_id().empty()) violations.Add("appointment_id", "is required");
  if (request.status() == v1::APPOINTMENT_STATUS_UNSPECIFIED ||
      !v1::AppointmentStatus_IsValid(request.status())) {
    violations.Add("status", "is required");
  } else if (request.status() == v1::APPOINTMENT_STATUS_CANCELLED) {
    violations.Add("status", "use CancelAppointment (it takes a reason and a scope)");
  }
  if ((request.status() == v1::APPOINTMENT_STATUS_NOSHOW ||
       request.status() == v1::APPOINTMENT_STATUS_ENTERED_IN_ERROR) &&
      request.reason().empty()) {
    violations.Add("reason", "is required for a no-show or entered-in-error");
  }
  if (request.reason().size() > 2000) violations.Add("reason", "is too long");
  if (!violations.empty()) return violations.ToStatus();
  std::lock_guard<std::mutex> command_lock(command_mutex_);
  if (absl::Status s = ReloadStale(); !s.ok()) return s;
  auto found = Find(caller.tenant_id, request.appointment_id(), false);
  if (!found.ok()) return found.status();
  const v1::Appointment& appointment = found->appointment;
  v1::UpdateAppointmentStatusResponse response;
  if (auto c = found->commands.find(request.command_id()); c != found->commands.end()) {
    response.set_version(c->second.version);
    *response.mutable_position() = c->second.position;
    return response;
  }
  if (absl::Status s = ExpectedVersionHolds(request, appointment.version(), "appointment"); !s.ok()) {
    return s;
  }
  if (request.index() < 0 || request.index() >= appointment.occurrences_size()) {
    return absl::NotFoundError("no such occurrence");
  }
  const v1::Occurrence& o = appointment.occurrences(request.index());
  const Interval when{FromProto(o.start_time()), FromProto(o.end_time())};
  if (absl::Status s = CheckTransition(o.status(), request.status(), when, clock_()); !s.ok()) {
    return s;
  }
  // Leaving the waitlist takes time on the calendars again: check it like a booking.
  if (!IsActive(o.status()) && IsActive(request.status())) {
    auto schedules = BuildSchedules(caller.tenant_id, appointment.case_id(), appointment.participants(),
                                    appointment.patient_overlap_overridden(), when.start, when.end);
    if (!schedules.ok()) return schedules.status();
    if (auto conflicts = CheckCandidates({{o.index(), when}}, schedules->list); !conflicts.empty()) {
      return absl::FailedPreconditionError(ConflictMessage(conflicts));
    }
  }
  v1::SchedulingEvent event;
  v1::AppointmentStatusChanged* changed = event.mutable_appointment_status_changed();
  changed->set_index(request.index());
  changed->set_from(o.status());
  changed->set_to(request.status());
  changed->set_reason(request.reason());
  auto outcome = Commit(caller, appointment.appointment_id(), appointment.version(),
                        request.command_id(), {event},
                        eventstore::ExpectedVersion::Exactly(appointment.version()));
  if (!outcome.ok()) return outcome.status();
  response.set_version(outcome->version);
  *response.mutable_position() = outcome->position;
  return response;
}

absl::StatusOr<v1::Appointment> SchedulingEngine::GetAppointment(
    const std::string& tenant_id, const std::string& appointment_id) const {
  auto found = Find(tenant_id, appointment_id, false);
  if (!found.ok()) return found.status();
  return found->appointment;
}

absl::StatusOr<v1::ListCaseAppointmentsResponse> SchedulingEngine::ListCaseAppointments(
    const std::string& tenant_id, const std::string& case_id) const {
  const absl::Time now = clock_();
  v1::ListCaseAppointmentsResponse response;
  std::lock_guard<std::mutex> lock(mutex_);
  auto ids = by_case_.find({tenant_id, case_id});
  if (ids == by_case_.end()) return response;
  std::optional<absl::Time> next_start, last_start;
  for (const std::string& id : ids->second) {
    const v1::Appointment& a = aggregates_.at(id).appointment;
    *response.add_appointments() = a;
    for (const v1::Occurrence& o : a.occurrences()) {
      const absl::Time start = FromProto(o.start_time());
      if (o.status() == v1::APPOINTMENT_STATUS_BOOKED && start > now &&
          (!next_start || start < *next_start)) {
        next_start = start;
        response.mutable_next()->set_appointment_id(id);
        response.mutable_next()->set_type(a.type());
        *response.mutable_next()->mutable_occurrence() = o;
      }
      const bool took_place = o.status() == v1::APPOINTMENT_STATUS_ARRIVED ||
                              o.status() == v1::APPOINTMENT_STATUS_CHECKED_IN ||
                              o.status() == v1::APPOINTMENT_STATUS_FULFILLED;
      if (took_place && (!last_start || start > *last_start)) {
        last_start = start;
        response.mutable_last()->set_appointment_id(id);
        response.mutable_last()->set_type(a.type());
        *response.mutable_last()->mutable_occurrence() = o;
      }
    }
  }
  return response;
}

absl::StatusOr<int> SchedulingEngine::EmitDueReminders(const std::vector<absl::Duration>& offsets) {
  struct Due {
    std::string id;
    std::string tenant_id;
    int32_t index;
  };
  std::vector<Due> due;
  const absl::Time now = clock_();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [id, aggregate] : aggregates_) {
      if (aggregate.is_calendar) continue;
      for (const v1::Occurrence& o : aggregate.appointment.occurrences()) {
        if (!RemindersDue(o, offsets, now).empty()) due.push_back({id, aggregate.tenant_id, o.index()});
      }
    }
  }
  grpcx::Caller service;
  service.actor.set_user_id("scheduling-service");
  service.actor.set_role(common::v1::ROLE_SERVICE);
  int emitted = 0;
  for (const Due& d : due) {
    std::lock_guard<std::mutex> command_lock(command_mutex_);
    if (absl::Status s = ReloadStale(); !s.ok()) return s;
    auto found = Find(d.tenant_id, d.id, false);
    if (!found.ok()) continue;
    const v1::Occurrence& o = found->appointment.occurrences(d.index);
    const std::vector<absl::Duration> offsets_now = RemindersDue(o, offsets, clock_());
    if (offsets_now.empty()) continue;  // changed meanwhile
    const absl::Time start = FromProto(o.start_time());
    v1::SchedulingEvent event;
    v1::ReminderDue* reminder = event.mutable_reminder_due();
    reminder->set_index(d.index);
    *reminder->mutable_offset() = ToProto(offsets_now[0]);
    *reminder->mutable_due_time() = ToProto(start - offsets_now[0]);
    *reminder->mutable_start_time() = o.start_time();
    service.tenant_id = d.tenant_id;
    auto outcome = Commit(service, d.id, found->appointment.version(),
                          ReminderCommandId(d.index, start, offsets_now[0]), {event},
                          eventstore::ExpectedVersion::Any());
    if (!outcome.ok()) return outcome.status();
    if (!outcome->duplicate) ++emitted;
  }
  return emitted;
}

size_t SchedulingEngine::calendar_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<size_t>(std::count_if(aggregates_.begin(), aggregates_.end(),
                                           [](const auto& a) { return a.second.is_calendar; }));
}

size_t SchedulingEngine::appointment_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<size_t>(std::count_if(aggregates_.begin(), aggregates_.end(),
                                           [](const auto& a) { return !a.second.is_calendar; }));
}

}  // namespace clinical::scheduling

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "clinical/case/v1/events.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/time_util.h"
#include "scheduling_domain.h"

namespace clinical::scheduling {

using google::protobuf::util::TimeUtil;

absl::Time FromProto(const google::protobuf::Timestamp& timestamp) {
  return absl::FromUnixSeconds(timestamp.seconds()) + absl::Nanoseconds(timestamp.nanos());
}
google::protobuf::Timestamp ToProto(absl::Time time) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(time));
}
absl::Duration FromProto(const google::protobuf::Duration& duration) {
  return absl::Seconds(duration.seconds()) + absl::Nanoseconds(duration.nanos());
}
google::protobuf::Duration ToProto(absl::Duration duration) {
  return TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(duration));
}

bool IsActive(v1::AppointmentStatus status) {
  switch (status) {
    case v1::APPOINTMENT_STATUS_PROPOSED:
    case v1::APPOINTMENT_STATUS_PENDING:
    case v1::APPOINTMENT_STATUS_BOOKED:
    case v1::APPOINTMENT_STATUS_ARRIVED:
    case v1::APPOINTMENT_STATUS_CHECKED_IN:
    case v1::APPOINTMENT_STATUS_FULFILLED:
      return true;
    default:
      return false;
  }
}

absl::Status CheckTransition(v1::AppointmentStatus from, v1::AppointmentStatus to,
                             const Interval& when, absl::Time now) {
  using S = v1::AppointmentStatus;
  static const std::map<S, std::set<S>> kAllowed = {
      {v1::APPOINTMENT_STATUS_PROPOSED,
       {v1::APPOINTMENT_STATUS_PENDING, v1::APPOINTMENT_STATUS_BOOKED,
        v1::APPOINTMENT_STATUS_WAITLIST, v1::APPOINTMENT_STATUS_CANCELLED,
        v1::APPOINTMENT_STATUS_ENTERED_IN_ERROR}},
      {v1::APPOINTMENT_STATUS_PENDING,
       {v1::APPOINTMENT_STATUS_BOOKED, v1::APPOINTMENT_STATUS_WAITLIST,
        v1::APPOINTMENT_STATUS_CANCELLED, v1::APPOINTMENT_STATUS_ENTERED_IN_ERROR}},
      {v1::APPOINTMENT_STATUS_WAITLIST,
       {v1::APPOINTMENT_STATUS_PENDING, v1::APPOINTMENT_STATUS_BOOKED,
        v1::APPOINTMENT_STATUS_CANCELLED, v1::APPOINTMENT_STATUS_ENTERED_IN_ERROR}},
      {v1::APPOINTMENT_STATUS_BOOKED,
       {v1::APPOINTMENT_STATUS_ARRIVED, v1::APPOINTMENT_STATUS_CHECKED_IN,
        v1::APPOINTMENT_STATUS_FULFILLED, v1::APPOINTMENT_STATUS_NOSHOW,
        v1::APPOINTMENT_STATUS_CANCELLED, v1::APPOINTMENT_STATUS_ENTERED_IN_ERROR}},
      {v1::APPOINTMENT_STATUS_ARRIVED,
       {v1::APPOINTMENT_STATUS_CHECKED_IN, v1::APPOINTMENT_STATUS_FULFILLED,
        v1::APPOINTMENT_STATUS_ENTERED_IN_ERROR}},
      {v1::APPOINTMENT_STATUS_CHECKED_IN,
       {v1::APPOINTMENT_STATUS_FULFILLED, v1::APPOINTMENT_STATUS_ENTERED_IN_ERROR}},
      {v1::APPOINTMENT_STATUS_FULFILLED, {v1::APPOINTMENT_STATUS_ENTERED_IN_ERROR}},
      {v1::APPOINTMENT_STATUS_NOSHOW, {v1::APPOINTMENT_STATUS_ENTERED_IN_ERROR}},
      {v1::APPOINTMENT_STATUS_CANCELLED, {v1::APPOINTMENT_STATUS_ENTERED_IN_ERROR}},
  };
  auto it = kAllowed.find(from);
  if (it == kAllowed.end() || it->second.count(to) == 0) {
    return absl::FailedPreconditionError(absl::StrCat("an occurrence cannot go from ",
                                                      v1::AppointmentStatus_Name(from), " to ",
                                                      v1::AppointmentStatus_Name(to)));
  }
  if (to == v1::APPOINTMENT_STATUS_NOSHOW && now < when.start) {
    return absl::FailedPreconditionError("a no-show can only be recorded after the start time");
  }
  if ((to == v1::APPOINTMENT_STATUS_ARRIVED || to == v1::APPOINTMENT_STATUS_CHECKED_IN ||
       to == v1::APPOINTMENT_STATUS_FULFILLED) &&
      now < when.start - absl::Hours(1)) {
    return absl::FailedPreconditionError(
        absl::StrCat(v1::AppointmentStatus_Name(to), " is only possible from an hour before the start"));
  }
  return absl::OkStatus();
}

bool CaseAcceptsBookings(case_::v1::CaseStatus status) {
  switch (status) {
    case case_::v1::CASE_STATUS_PLANNED:
    case case_::v1::CASE_STATUS_WAITLIST:
    case case_::v1::CASE_STATUS_ACTIVE:
    case case_::v1::CASE_STATUS_ONHOLD:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<std::vector<int32_t>> AffectedOccurrences(const v1::Appointment& appointment,
                                                         int32_t index, v1::ChangeScope scope) {
  if (index < 0 || index >= appointment.occurrences_size()) {
    return absl::NotFoundError("no such occurrence");
  }
  const v1::Occurrence& first = appointment.occurrences(index);
  if (!IsActive(first.status()) && first.status() != v1::APPOINTMENT_STATUS_WAITLIST) {
    return absl::FailedPreconditionError(absl::StrCat(
        "occurrence ", index, " is ", v1::AppointmentStatus_Name(first.status())));
  }
  std::vector<int32_t> out = {index};
  if (scope == v1::CHANGE_SCOPE_THIS_AND_FOLLOWING) {
    for (int32_t i = index + 1; i < appointment.occurrences_size(); ++i) {
      const v1::AppointmentStatus s = appointment.occurrences(i).status();
      // Only those not yet under way: a later occurrence already attended stays as it is.
      if (s == v1::APPOINTMENT_STATUS_PROPOSED || s == v1::APPOINTMENT_STATUS_PENDING ||
          s == v1::APPOINTMENT_STATUS_BOOKED || s == v1::APPOINTMENT_STATUS_WAITLIST) {
        out.push_back(i);
      }
    }
  }
  return out;
}

absl::StatusOr<std::vector<v1::OccurrenceRescheduled>> PlanReschedule(
    const v1::Appointment& appointment, int32_t index, v1::ChangeScope scope, absl::Time new_start,
    std::optional<absl::Duration> duration, const absl::TimeZone& zone) {
  auto affected = AffectedOccurrences(appointment, index, scope);
  if (!affected.ok()) return affected.status();
  const v1::Occurrence& anchor = appointment.occurrences(index);
  const absl::Time old_start = FromProto(anchor.start_time());
  const absl::Duration length =
      duration ? *duration : FromProto(anchor.end_time()) - old_start;
  const absl::CivilSecond old_local = zone.At(old_start).cs;
  const absl::CivilSecond new_local = zone.At(new_start).cs;
  const int64_t day_shift = absl::CivilDay(new_local) - absl::CivilDay(old_local);
  std::vector<v1::OccurrenceRescheduled> out;
  for (int32_t i : *affected) {
    const v1::Occurrence& occurrence = appointment.occurrences(i);
    absl::Time start = new_start;
    if (i != index) {
      const absl::CivilDay day = absl::CivilDay(zone.At(FromProto(occurrence.start_time())).cs) + day_shift;
      start = LocalToAbsolute(absl::CivilSecond(day.year(), day.month(), day.day(), new_local.hour(),
                                                new_local.minute(), new_local.second()),
                              zone);
    }
    v1::OccurrenceRescheduled& change = out.emplace_back();
    change.set_index(i);
    *change.mutable_previous_start_time() = occurrence.start_time();
    *change.mutable_previous_end_time() = occurrence.end_time();
    *change.mutable_start_time() = ToProto(start);
    *change.mutable_end_time() = ToProto(start + length);
  }
  return out;
}

std::vector<absl::Duration> RemindersDue(const v1::Occurrence& occurrence,
                                         const std::vector<absl::Duration>& offsets,
                                         absl::Time now) {
  if (occurrence.status() != v1::APPOINTMENT_STATUS_BOOKED) return {};
  const absl::Time start = FromProto(occurrence.start_time());
  if (now >= start) return {};
  std::optional<absl::Duration> closest;
  for (absl::Duration offset : offsets) {
    if (offset <= absl::ZeroDuration() || now < start - offset) continue;
    if (!closest || offset < *closest) closest = offset;
  }
  if (!closest) return {};
  for (const auto& sent : occurrence.reminders_sent()) {
    if (FromProto(sent) == *closest) return {};
  }
  return {*closest};
}

std::string ReminderCommandId(int32_t index, absl::Time start, absl::Duration offset) {
  return absl::StrCat("reminder/", index, "/", absl::ToUnixSeconds(start), "/",
                      absl::ToInt64Seconds(offset));
}

bool IsCalendarEvent(const v1::SchedulingEvent& event) {
  return event.has_calendar_created() || event.has_calendar_rules_changed() ||
         event.has_calendar_exception_added();
}

void EvolveCalendar(v1::Calendar& calendar, const v1::SchedulingEvent& event) {
  switch (event.event_case()) {
    case v1::SchedulingEvent::kCalendarCreated: {
      const auto& e = event.calendar_created();
      calendar.set_owner_kind(e.owner_kind());
      calendar.set_owner_id(e.owner_id());
      calendar.set_time_zone(e.time_zone());
      *calendar.mutable_working_hours() = e.working_hours();
      calendar.set_buffer_minutes(e.buffer_minutes());
      calendar.set_max_appointments_per_day(e.max_appointments_per_day());
      break;
    }
    case v1::SchedulingEvent::kCalendarRulesChanged: {
      const auto& e = event.calendar_rules_changed();
      calendar.set_time_zone(e.time_zone());
      *calendar.mutable_working_hours() = e.working_hours();
      calendar.set_buffer_minutes(e.buffer_minutes());
      calendar.set_max_appointments_per_day(e.max_appointments_per_day());
      break;
    }
    case v1::SchedulingEvent::kCalendarExceptionAdded:
      *calendar.add_exceptions() = event.calendar_exception_added().exception();
      break;
    default:
      return;
  }
  calendar.set_version(calendar.version() + 1);
}

void EvolveAppointment(v1::Appointment& appointment, const v1::SchedulingEvent& event,
                       absl::Time recorded_at) {
  switch (event.event_case()) {
    case v1::SchedulingEvent::kAppointmentBooked: {
      const auto& e = event.appointment_booked();
      appointment.set_case_id(e.case_id());
      appointment.set_type(e.type());
      *appointment.mutable_participants() = e.participants();
      appointment.set_location(e.location());
      appointment.set_virtual_link(e.virtual_link());
      appointment.set_time_zone(e.time_zone());
      if (e.has_recurrence()) *appointment.mutable_recurrence() = e.recurrence();
      appointment.set_patient_overlap_overridden(e.patient_overlap_overridden());
      *appointment.mutable_created_at() = ToProto(recorded_at);
      appointment.clear_occurrences();
      for (const v1::OccurrenceTime& t : e.occurrences()) {
        v1::Occurrence* o = appointment.add_occurrences();
        o->set_index(t.index());
        *o->mutable_start_time() = t.start_time();
        *o->mutable_end_time() = t.end_time();
        o->set_status(e.status());
      }
      break;
    }
    case v1::SchedulingEvent::kAppointmentRescheduled:
      for (const auto& change : event.appointment_rescheduled().changes()) {
        if (change.index() < 0 || change.index() >= appointment.occurrences_size()) continue;
        v1::Occurrence* o = appointment.mutable_occurrences(change.index());
        v1::RescheduleRecord* record = o->add_reschedules();
        *record->mutable_previous_start_time() = change.previous_start_time();
        *record->mutable_previous_end_time() = change.previous_end_time();
        *record->mutable_start_time() = change.start_time();
        *record->mutable_end_time() = change.end_time();
        record->set_reason(event.appointment_rescheduled().reason());
        *record->mutable_rescheduled_at() = ToProto(recorded_at);
        *o->mutable_start_time() = change.start_time();
        *o->mutable_end_time() = change.end_time();
        // Reminders belong to a start time: a moved occurrence is reminded again.
        o->clear_reminders_sent();
      }
      break;
    case v1::SchedulingEvent::kAppointmentCancelled:
      for (int32_t index : event.appointment_cancelled().indexes()) {
        if (index < 0 || index >= appointment.occurrences_size()) continue;
        v1::Occurrence* o = appointment.mutable_occurrences(index);
        o->set_status(v1::APPOINTMENT_STATUS_CANCELLED);
        o->set_cancellation_reason(event.appointment_cancelled().reason());
        o->set_status_reason(event.appointment_cancelled().comment());
      }
      break;
    case v1::SchedulingEvent::kAppointmentStatusChanged: {
      const auto& e = event.appointment_status_changed();
      if (e.index() < 0 || e.index() >= appointment.occurrences_size()) break;
      v1::Occurrence* o = appointment.mutable_occurrences(e.index());
      o->set_status(e.to());
      o->set_status_reason(e.reason());
      break;
    }
    case v1::SchedulingEvent::kReminderDue: {
      const auto& e = event.reminder_due();
      if (e.index() < 0 || e.index() >= appointment.occurrences_size()) break;
      *appointment.mutable_occurrences(e.index())->add_reminders_sent() = e.offset();
      break;
    }
    default:
      return;
  }
  appointment.set_version(appointment.version() + 1);
}

void ToEnvelope(const v1::SchedulingEvent& event, common::v1::EventEnvelope* envelope) {
  const google::protobuf::Reflection* reflection = event.GetReflection();
  const google::protobuf::OneofDescriptor* oneof = event.GetDescriptor()->FindOneofByName("event");
  const google::protobuf::FieldDescriptor* field = reflection->GetOneofFieldDescriptor(event, oneof);
  if (field == nullptr) return;
  const google::protobuf::Message& payload = reflection->GetMessage(event, field);
  envelope->set_event_type(field->message_type()->full_name());
  envelope->mutable_payload()->PackFrom(payload);
  envelope->set_schema_version(1);
}

absl::StatusOr<v1::SchedulingEvent> FromEnvelope(const common::v1::EventEnvelope& envelope) {
  v1::SchedulingEvent event;
  const google::protobuf::Descriptor* descriptor = event.GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    if (field->message_type()->full_name() != envelope.event_type()) continue;
    google::protobuf::Message* payload = event.GetReflection()->MutableMessage(&event, field);
    if (!envelope.payload().UnpackTo(payload)) {
      return absl::InvalidArgumentError(absl::StrCat("payload of ", envelope.event_type(),
                                                     " does not decode"));
    }
    return event;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown event type ", envelope.event_type()));
}

}  // namespace clinical::scheduling

#pragma once

// The scheduling service's pure domain: recurrence expansion, calendar rules, conflicts,
// slot search, FHIR status transitions, reminder timing, and the fold of events into
// calendars and appointments. No I/O, no clock, no randomness: "now" and every piece of
// state come in as arguments, so every rule is a plain unit test.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/case/v1/case.pb.h"
#include "clinical/common/v1/envelope.pb.h"
#include "clinical/scheduling/v1/events.pb.h"
#include "clinical/scheduling/v1/scheduling.pb.h"

namespace clinical::scheduling {

namespace v1 = ::clinical::scheduling::v1;

inline constexpr int kMaxOccurrences = 104;
inline constexpr absl::Duration kMaxDuration = absl::Hours(12);

struct Interval {
  absl::Time start;
  absl::Time end;
  bool Overlaps(const Interval& other) const { return start < other.end && other.start < end; }
};

// ---- Recurrence --------------------------------------------------------------------------

// The occurrences of a series: the first at `first_start`, the others at the same local
// wall-clock time in `zone` (so a DST change between two occurrences keeps 09:00 at 09:00).
// A local time that does not exist (spring-forward gap) moves forward by the gap; an
// ambiguous one (fall-back) takes the earlier instant. `rule` null: one occurrence.
// INVALID_ARGUMENT for a rule without count or until, or one giving more than
// kMaxOccurrences.
absl::StatusOr<std::vector<Interval>> ExpandSeries(absl::Time first_start, absl::Duration duration,
                                                   const absl::TimeZone& zone,
                                                   const v1::RecurrenceRule* rule);

// The instant of a local civil time in `zone` with the gap/overlap policy above.
absl::Time LocalToAbsolute(const absl::CivilSecond& local, const absl::TimeZone& zone);

// ---- Calendars, conflicts, slots -----------------------------------------------------------

// An existing booking of a participant.
struct Busy {
  Interval when;
  std::string appointment_id;
  int32_t index = 0;
};

// Everything known about one participant for a check: its calendar (null when it has none:
// the patient, family, a provider without a calendar) and its bookings near the time.
struct ParticipantSchedule {
  std::string label;  // "case_manager:cm-1", "patient", "room:r-2" (ids only, never PHI)
  const v1::Calendar* calendar = nullptr;
  std::vector<Busy> busy;
};

struct Candidate {
  int32_t index = 0;
  Interval when;
};

struct Conflict {
  int32_t index = 0;
  absl::Time start;
  std::string participant;
  std::string reason;
  std::string appointment_id;  // set when another appointment is in the way
  int32_t conflicting_index = 0;
};

// Every reason each candidate cannot be booked: outside the calendar's working hours, in
// one of its exceptions, closer than its buffer to another booking, over its daily limit
// (counting earlier candidates of the same request), or overlapping another booking of a
// participant without a calendar. Candidates are checked in order; bookings of
// `ignore` (appointment id, index) pairs are not in the way (an occurrence being moved).
std::vector<Conflict> CheckCandidates(const std::vector<Candidate>& candidates,
                                      const std::vector<ParticipantSchedule>& schedules,
                                      const std::set<std::pair<std::string, int32_t>>& ignore = {});

struct SlotQuery {
  Interval window;
  absl::Duration duration;
  absl::Duration step = absl::Minutes(15);
  int max_slots = 20;
  absl::Time not_before;  // slots never start before this (now)
};
// Free slots for all participants at once, earliest first, starts aligned to `step`.
std::vector<Interval> FindSlots(const SlotQuery& query,
                                const std::vector<ParticipantSchedule>& schedules);

// Validates calendar rules: a loadable time zone, working hours within a day and not
// overlapping on the same weekday, non-negative buffer and limit. Field violations as
// (field, description) pairs.
std::vector<std::pair<std::string, std::string>> CalendarRuleViolations(
    const std::string& time_zone, const google::protobuf::RepeatedPtrField<v1::WorkingHours>& hours,
    int32_t buffer_minutes, int32_t max_per_day);

// ---- Appointments --------------------------------------------------------------------------

// Statuses an occurrence occupies its participants' time in.
bool IsActive(v1::AppointmentStatus status);
// FHIR Appointment transitions. FAILED_PRECONDITION naming both statuses otherwise; also
// refuses arrived/checked-in/fulfilled more than an hour before the start and a no-show
// before the start.
absl::Status CheckTransition(v1::AppointmentStatus from, v1::AppointmentStatus to,
                             const Interval& when, absl::Time now);

// Bookings are refused for a case in these statuses.
bool CaseAcceptsBookings(case_::v1::CaseStatus status);

// The occurrences a change of occurrence `index` with `scope` affects: that one, or it and
// every later one still active. FAILED_PRECONDITION when `index` is not active.
absl::StatusOr<std::vector<int32_t>> AffectedOccurrences(const v1::Appointment& appointment,
                                                         int32_t index, v1::ChangeScope scope);

// New times for a reschedule: occurrence `index` to `new_start` (+ `duration`), later ones
// (scope THIS_AND_FOLLOWING) moved by the same number of local days to the same local time
// of day in the series' zone.
absl::StatusOr<std::vector<v1::OccurrenceRescheduled>> PlanReschedule(
    const v1::Appointment& appointment, int32_t index, v1::ChangeScope scope, absl::Time new_start,
    std::optional<absl::Duration> duration, const absl::TimeZone& zone);

// Reminder offsets (e.g. 24h, 1h) to emit now for one occurrence: an offset is due from
// start - offset until the start, once; when several are due at once only the closest to
// the start is emitted (a 24h reminder for a visit booked 30 minutes ahead is pointless)
// and the others are superseded for good. Only booked occurrences get reminders.
std::vector<absl::Duration> RemindersDue(const v1::Occurrence& occurrence,
                                         const std::vector<absl::Duration>& offsets,
                                         absl::Time now);

// The command id of a reminder: its identity (occurrence, its start, offset), so emitting
// it twice appends once.
std::string ReminderCommandId(int32_t index, absl::Time start, absl::Duration offset);

// ---- Events --------------------------------------------------------------------------------

void EvolveCalendar(v1::Calendar& calendar, const v1::SchedulingEvent& event);
void EvolveAppointment(v1::Appointment& appointment, const v1::SchedulingEvent& event,
                       absl::Time recorded_at);

bool IsCalendarEvent(const v1::SchedulingEvent& event);

// Packs the event's payload (its full name as event_type) into an envelope.
void ToEnvelope(const v1::SchedulingEvent& event, common::v1::EventEnvelope* envelope);
// INVALID_ARGUMENT for a payload that is not a scheduling event.
absl::StatusOr<v1::SchedulingEvent> FromEnvelope(const common::v1::EventEnvelope& envelope);

// ---- Cases (read from the case topic) ------------------------------------------------------

// What booking needs of a case; folded from the case topic by the shared follower
// (libs/relations, CaseFacts).
struct CaseInfo {
  std::string tenant_id;
  case_::v1::CaseStatus status = case_::v1::CASE_STATUS_UNSPECIFIED;
  std::string case_manager_id;
};

// Helpers for google.protobuf time types.
absl::Time FromProto(const google::protobuf::Timestamp& timestamp);
google::protobuf::Timestamp ToProto(absl::Time time);
absl::Duration FromProto(const google::protobuf::Duration& duration);
google::protobuf::Duration ToProto(absl::Duration duration);

}  // namespace clinical::scheduling

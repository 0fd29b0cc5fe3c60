// The pure rules of scheduling: recurrence across DST, calendar rules and conflicts, slot
// search, FHIR status transitions, reminder timing, reschedule planning and the case fold.
#include "scheduling_domain.h"

#include "clinical/case/v1/events.pb.h"
#include "gtest/gtest.h"

namespace clinical::scheduling {
namespace {

absl::TimeZone Zone(const std::string& name) {
  absl::TimeZone zone;
  EXPECT_TRUE(absl::LoadTimeZone(name, &zone)) << name;
  return zone;
}

absl::Time Local(const absl::TimeZone& zone, int y, int m, int d, int hh, int mm) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, 0), zone);
}

v1::Calendar WeekdayCalendar(int buffer = 0, int max_per_day = 0) {
  v1::Calendar calendar;
  calendar.set_calendar_id("cal-1");
  calendar.set_owner_id("cm-1");
  calendar.set_time_zone("America/New_York");
  for (int day = v1::WEEKDAY_MONDAY; day <= v1::WEEKDAY_FRIDAY; ++day) {
    v1::WorkingHours* hours = calendar.add_working_hours();
    hours->set_weekday(static_cast<v1::Weekday>(day));
    hours->set_start_minute(9 * 60);
    hours->set_end_minute(17 * 60);
  }
  calendar.set_buffer_minutes(buffer);
  calendar.set_max_appointments_per_day(max_per_day);
  return calendar;
}

TEST(RecurrenceTest, WeeklySeriesKeepsLocalTimeAcrossSpringForward) {
  const absl::TimeZone ny = Zone("America/New_York");
  // DST starts in the US on Sunday 2026-03-08.
  v1::RecurrenceRule rule;
  rule.set_frequency(v1::FREQUENCY_WEEKLY);
  rule.set_count(3);
  auto series = ExpandSeries(Local(ny, 2026, 3, 2, 9, 0), absl::Minutes(45), ny, &rule);
  ASSERT_TRUE(series.ok()) << series.status();
  ASSERT_EQ(series->size(), 3u);
  for (const Interval& occurrence : *series) {
    const absl::CivilSecond local = ny.At(occurrence.start).cs;
    EXPECT_EQ(local.hour(), 9);
    EXPECT_EQ(local.minute(), 0);
    EXPECT_EQ(occurrence.end - occurrence.start, absl::Minutes(45));
  }
  // In absolute terms the gap between the first two is a week minus the lost hour.
  EXPECT_EQ((*series)[1].start - (*series)[0].start, absl::Hours(7 * 24 - 1));
  EXPECT_EQ((*series)[2].start - (*series)[1].start, absl::Hours(7 * 24));
}

TEST(RecurrenceTest, EveryTwoWeeksAcrossFallBackUntilEndDate) {
  const absl::TimeZone berlin = Zone("Europe/Berlin");
  // DST ends in the EU on Sunday 2026-10-25.
  v1::RecurrenceRule rule;
  rule.set_frequency(v1::FREQUENCY_WEEKLY);
  rule.set_interval(2);
  *rule.mutable_until() = ToProto(Local(berlin, 2026, 11, 12, 23, 0));
  auto series = ExpandSeries(Local(berlin, 2026, 10, 15, 14, 30), absl::Hours(1), berlin, &rule);
  ASSERT_TRUE(series.ok()) << series.status();
  ASSERT_EQ(series->size(), 3u);  // Oct 15, Oct 29, Nov 12
  EXPECT_EQ(absl::CivilDay(berlin.At((*series)[2].start).cs), absl::CivilDay(2026, 11, 12));
  for (const Interval& occurrence : *series) EXPECT_EQ(berlin.At(occurrence.start).cs.hour(), 14);
  EXPECT_EQ((*series)[1].start - (*series)[0].start, absl::Hours(14 * 24 + 1));
}

TEST(RecurrenceTest, MonthlyByDateSkipsMonthsWithoutTheDay) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  v1::RecurrenceRule rule;
  rule.set_frequency(v1::FREQUENCY_MONTHLY_BY_DATE);
  rule.set_count(3);
  auto series = ExpandSeries(Local(utc, 2027, 1, 31, 10, 0), absl::Hours(1), utc, &rule);
  ASSERT_TRUE(series.ok());
  ASSERT_EQ(series->size(), 3u);
  EXPECT_EQ(absl::CivilDay(utc.At((*series)[1].start).cs), absl::CivilDay(2027, 3, 31));
  EXPECT_EQ(absl::CivilDay(utc.At((*series)[2].start).cs), absl::CivilDay(2027, 5, 31));
}

TEST(RecurrenceTest, MonthlyByWeekdayTakesTheNthWeekday) {
  const absl::TimeZone ny = Zone("America/New_York");
  v1::RecurrenceRule rule;
  rule.set_frequency(v1::FREQUENCY_MONTHLY_BY_WEEKDAY);
  rule.set_count(3);
  // 2026-02-10 is the 2nd Tuesday of February; DST starts in between (March 8).
  auto series = ExpandSeries(Local(ny, 2026, 2, 10, 9, 0), absl::Hours(1), ny, &rule);
  ASSERT_TRUE(series.ok());
  EXPECT_EQ(absl::CivilDay(ny.At((*series)[1].start).cs), absl::CivilDay(2026, 3, 10));
  EXPECT_EQ(absl::CivilDay(ny.At((*series)[2].start).cs), absl::CivilDay(2026, 4, 14));
  EXPECT_EQ(ny.At((*series)[2].start).cs.hour(), 9);
}

TEST(RecurrenceTest, FifthWeekdayMeansLastOfTheMonth) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  v1::RecurrenceRule rule;
  rule.set_frequency(v1::FREQUENCY_MONTHLY_BY_WEEKDAY);
  rule.set_count(2);
  // 2026-01-29 is the 5th Thursday; February 2026 has four: the last is Feb 26.
  auto series = ExpandSeries(Local(utc, 2026, 1, 29, 9, 0), absl::Hours(1), utc, &rule);
  ASSERT_TRUE(series.ok());
  EXPECT_EQ(absl::CivilDay(utc.At((*series)[1].start).cs), absl::CivilDay(2026, 2, 26));
}

TEST(RecurrenceTest, RejectsUnboundedAndTooLongSeries) {
  v1::RecurrenceRule rule;
  rule.set_frequency(v1::FREQUENCY_WEEKLY);
  EXPECT_EQ(ExpandSeries(absl::UnixEpoch(), absl::Hours(1), absl::UTCTimeZone(), &rule).status().code(),
            absl::StatusCode::kInvalidArgument);
  rule.set_count(kMaxOccurrences + 1);
  EXPECT_EQ(ExpandSeries(absl::UnixEpoch(), absl::Hours(1), absl::UTCTimeZone(), &rule).status().code(),
            absl::StatusCode::kInvalidArgument);
  rule.clear_count();
  *rule.mutable_until() = ToProto(absl::UnixEpoch() + absl::Hours(24 * 7 * 200));
  EXPECT_EQ(ExpandSeries(absl::UnixEpoch(), absl::Hours(1), absl::UTCTimeZone(), &rule).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RecurrenceTest, NonexistentLocalTimeMovesForward) {
  const absl::TimeZone ny = Zone("America/New_York");
  const absl::Time t = LocalToAbsolute(absl::CivilSecond(2026, 3, 8, 2, 30, 0), ny);
  EXPECT_EQ(ny.At(t).cs, absl::CivilSecond(2026, 3, 8, 3, 30, 0));
}

TEST(ConflictTest, CaseManagerDoubleBookingNamesTheOtherAppointment) {
  const v1::Calendar calendar = WeekdayCalendar();
  const absl::TimeZone ny = Zone("America/New_York");
  ParticipantSchedule cm{"case_manager:cm-1", &calendar,
                         {{{Local(ny, 2026, 6, 1, 10, 0), Local(ny, 2026, 6, 1, 11, 0)}, "appt-9", 2}}};
  auto conflicts = CheckCandidates(
      {{0, {Local(ny, 2026, 6, 1, 10, 30), Local(ny, 2026, 6, 1, 11, 30)}}}, {cm});
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].appointment_id, "appt-9");
  EXPECT_EQ(conflicts[0].conflicting_index, 2);
  EXPECT_EQ(conflicts[0].participant, "case_manager:cm-1");
  // Back to back is fine without a buffer.
  EXPECT_TRUE(CheckCandidates({{0, {Local(ny, 2026, 6, 1, 11, 0), Local(ny, 2026, 6, 1, 12, 0)}}}, {cm})
                  .empty());
  // Ignoring the occurrence being moved.
  EXPECT_TRUE(CheckCandidates({{0, {Local(ny, 2026, 6, 1, 10, 30), Local(ny, 2026, 6, 1, 11, 30)}}},
                              {cm}, {{"appt-9", 2}})
                  .empty());
}

TEST(ConflictTest, BufferKeepsTimeBetweenAppointments) {
  const v1::Calendar calendar = WeekdayCalendar(/*buffer=*/15);
  const absl::TimeZone ny = Zone("America/New_York");
  ParticipantSchedule cm{"case_manager:cm-1", &calendar,
                         {{{Local(ny, 2026, 6, 1, 10, 0), Local(ny, 2026, 6, 1, 11, 0)}, "a", 0}}};
  EXPECT_EQ(CheckCandidates({{0, {Local(ny, 2026, 6, 1, 11, 10), Local(ny, 2026, 6, 1, 12, 0)}}}, {cm})
                .size(),
            1u);
  EXPECT_TRUE(CheckCandidates({{0, {Local(ny, 2026, 6, 1, 11, 15), Local(ny, 2026, 6, 1, 12, 0)}}}, {cm})
                  .empty());
}

TEST(ConflictTest, WorkingHoursExceptionsAndDailyLimit) {
  v1::Calendar calendar = WeekdayCalendar(0, /*max_per_day=*/2);
  const absl::TimeZone ny = Zone("America/New_York");
  v1::CalendarException* off = calendar.add_exceptions();
  off->set_exception_id("x-1");
  *off->mutable_start_time() = ToProto(Local(ny, 2026, 6, 2, 0, 0));
  *off->mutable_end_time() = ToProto(Local(ny, 2026, 6, 3, 0, 0));
  ParticipantSchedule cm{"case_manager:cm-1", &calendar,
                         {{{Local(ny, 2026, 6, 1, 9, 0), Local(ny, 2026, 6, 1, 10, 0)}, "a", 0}}};
  // Saturday, before opening, in the exception.
  auto reasons = [&](absl::Time start) {
    auto c = CheckCandidates({{0, {start, start + absl::Hours(1)}}}, {cm});
    return c.empty() ? std::string() : c[0].reason;
  };
  EXPECT_EQ(reasons(Local(ny, 2026, 6, 6, 10, 0)), "outside working hours");
  EXPECT_EQ(reasons(Local(ny, 2026, 6, 1, 8, 30)), "outside working hours");
  EXPECT_EQ(reasons(Local(ny, 2026, 6, 1, 16, 30)), "outside working hours");
  EXPECT_EQ(reasons(Local(ny, 2026, 6, 2, 10, 0)), "calendar exception x-1");
  // One booked on June 1 plus two candidates: the second candidate passes the limit of 2.
  auto conflicts = CheckCandidates({{0, {Local(ny, 2026, 6, 1, 11, 0), Local(ny, 2026, 6, 1, 12, 0)}},
                                    {1, {Local(ny, 2026, 6, 1, 13, 0), Local(ny, 2026, 6, 1, 14, 0)}}},
                                   {cm});
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].index, 1);
  EXPECT_EQ(conflicts[0].reason, "daily limit reached");
}

// A night shift (Sunday 22:00-24:00, Monday 00:00-06:00) and a calendar open around the
// clock: an appointment may run past local midnight when the blocks meet there, not when
// the next day's block starts later.
TEST(ConflictTest, WorkingHoursContinueAcrossMidnightOnlyWhenBlocksMeet) {
  const absl::TimeZone ny = Zone("America/New_York");
  v1::Calendar night;
  night.set_time_zone("America/New_York");
  auto block = [&](v1::Weekday day, int from, int to) {
    v1::WorkingHours* hours = night.add_working_hours();
    hours->set_weekday(day);
    hours->set_start_minute(from);
    hours->set_end_minute(to);
  };
  block(v1::WEEKDAY_SUNDAY, 22 * 60, 24 * 60);
  block(v1::WEEKDAY_MONDAY, 0, 6 * 60);
  block(v1::WEEKDAY_TUESDAY, 1 * 60, 6 * 60);
  ParticipantSchedule cm{"case_manager:cm-1", &night, {}};
  auto reasons = [&](absl::Time start, absl::Duration length) {
    auto c = CheckCandidates({{0, {start, start + length}}}, {cm});
    return c.empty() ? std::string() : c[0].reason;
  };
  // 2026-06-07 is a Sunday.
  EXPECT_EQ(reasons(Local(ny, 2026, 6, 7, 23, 30), absl::Hours(1)), "");
  EXPECT_EQ(reasons(Local(ny, 2026, 6, 7, 22, 0), absl::Hours(8)), "");
  EXPECT_EQ(reasons(Local(ny, 2026, 6, 7, 22, 0), absl::Hours(9)), "outside working hours");
  // Monday's block ends at 06:00, Tuesday's starts at 01:00: no continuity over that midnight.
  EXPECT_EQ(reasons(Local(ny, 2026, 6, 8, 23, 30), absl::Hours(1)), "outside working hours");
  EXPECT_EQ(reasons(Local(ny, 2026, 6, 7, 21, 30), absl::Hours(1)), "outside working hours");

  v1::Calendar always;
  always.set_time_zone("America/New_York");
  for (int d = v1::WEEKDAY_MONDAY; d <= v1::WEEKDAY_SUNDAY; ++d) {
    v1::WorkingHours* hours = always.add_working_hours();
    hours->set_weekday(static_cast<v1::Weekday>(d));
    hours->set_start_minute(0);
    hours->set_end_minute(1440);
  }
  ParticipantSchedule open{"case_manager:cm-2", &always, {}};
  EXPECT_TRUE(CheckCandidates({{0, {Local(ny, 2026, 6, 7, 23, 30), Local(ny, 2026, 6, 8, 0, 30)}}}, {open}).empty());
  // Across the fall-back night (2026-11-01) as well.
  EXPECT_TRUE(CheckCandidates({{0, {Local(ny, 2026, 10, 31, 23, 0), Local(ny, 2026, 11, 1, 3, 0)}}}, {open}).empty());
}

TEST(ConflictTest, PatientOverlapWithoutCalendar) {
  ParticipantSchedule patient{"patient", nullptr,
                              {{{absl::FromUnixSeconds(3600), absl::FromUnixSeconds(7200)}, "p", 0}}};
  auto conflicts = CheckCandidates(
      {{0, {absl::FromUnixSeconds(5400), absl::FromUnixSeconds(9000)}},
       {1, {absl::FromUnixSeconds(7200), absl::FromUnixSeconds(9000)}}},
      {patient});
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].index, 0);
  EXPECT_EQ(conflicts[0].appointment_id, "p");
}

TEST(SlotSearchTest, FindsCommonFreeTimeRespectingEverything) {
  const absl::TimeZone ny = Zone("America/New_York");
  const v1::Calendar calendar = WeekdayCalendar(/*buffer=*/15);
  v1::Calendar room = WeekdayCalendar();
  room.set_owner_id("room-1");
  ParticipantSchedule cm{"case_manager:cm-1", &calendar,
                         {{{Local(ny, 2026, 6, 1, 9, 0), Local(ny, 2026, 6, 1, 10, 0)}, "a", 0}}};
  ParticipantSchedule r{"room:room-1", &room,
                        {{{Local(ny, 2026, 6, 1, 10, 15), Local(ny, 2026, 6, 1, 11, 0)}, "b", 0}}};
  SlotQuery query;
  query.window = {Local(ny, 2026, 5, 31, 0, 0), Local(ny, 2026, 6, 2, 0, 0)};  // Sunday + Monday
  query.duration = absl::Minutes(30);
  query.max_slots = 3;
  query.not_before = Local(ny, 2026, 5, 1, 0, 0);
  auto slots = FindSlots(query, {cm, r});
  ASSERT_EQ(slots.size(), 3u);
  // 10:00-10:15 is the case manager's buffer, 10:15-11:00 the room's booking.
  EXPECT_EQ(slots[0].start, Local(ny, 2026, 6, 1, 11, 0));
  EXPECT_EQ(slots[1].start, Local(ny, 2026, 6, 1, 11, 15));
  EXPECT_EQ(slots[2].start, Local(ny, 2026, 6, 1, 11, 30));
}

TEST(SlotSearchTest, NeverOffersThePast) {
  const v1::Calendar calendar = WeekdayCalendar();
  const absl::TimeZone ny = Zone("America/New_York");
  ParticipantSchedule cm{"case_manager:cm-1", &calendar, {}};
  SlotQuery query;
  query.window = {Local(ny, 2026, 6, 1, 0, 0), Local(ny, 2026, 6, 2, 0, 0)};
  query.duration = absl::Minutes(60);
  query.not_before = Local(ny, 2026, 6, 1, 16, 1);
  EXPECT_TRUE(FindSlots(query, {cm}).empty());
}

TEST(StatusTest, FhirTransitions) {
  const Interval when{absl::FromUnixSeconds(10000), absl::FromUnixSeconds(13600)};
  const absl::Time after = absl::FromUnixSeconds(11000);
  EXPECT_TRUE(CheckTransition(v1::APPOINTMENT_STATUS_BOOKED, v1::APPOINTMENT_STATUS_ARRIVED, when, after).ok());
  EXPECT_TRUE(CheckTransition(v1::APPOINTMENT_STATUS_ARRIVED, v1::APPOINTMENT_STATUS_CHECKED_IN, when, after).ok());
  EXPECT_TRUE(CheckTransition(v1::APPOINTMENT_STATUS_CHECKED_IN, v1::APPOINTMENT_STATUS_FULFILLED, when, after).ok());
  EXPECT_TRUE(CheckTransition(v1::APPOINTMENT_STATUS_PROPOSED, v1::APPOINTMENT_STATUS_BOOKED, when, after).ok());
  EXPECT_TRUE(CheckTransition(v1::APPOINTMENT_STATUS_FULFILLED, v1::APPOINTMENT_STATUS_ENTERED_IN_ERROR, when, after).ok());
  EXPECT_EQ(CheckTransition(v1::APPOINTMENT_STATUS_FULFILLED, v1::APPOINTMENT_STATUS_BOOKED, when, after).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckTransition(v1::APPOINTMENT_STATUS_CANCELLED, v1::APPOINTMENT_STATUS_BOOKED, when, after).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckTransition(v1::APPOINTMENT_STATUS_ENTERED_IN_ERROR, v1::APPOINTMENT_STATUS_BOOKED, when, after).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckTransition(v1::APPOINTMENT_STATUS_NOSHOW, v1::APPOINTMENT_STATUS_FULFILLED, when, after).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(StatusTest, NoShowOnlyAfterStartArrivalOnlyCloseToIt) {
  const Interval when{absl::FromUnixSeconds(10000), absl::FromUnixSeconds(13600)};
  EXPECT_EQ(CheckTransition(v1::APPOINTMENT_STATUS_BOOKED, v1::APPOINTMENT_STATUS_NOSHOW, when,
                            absl::FromUnixSeconds(9999)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(CheckTransition(v1::APPOINTMENT_STATUS_BOOKED, v1::APPOINTMENT_STATUS_NOSHOW, when,
                              absl::FromUnixSeconds(10000)).ok());
  EXPECT_EQ(CheckTransition(v1::APPOINTMENT_STATUS_BOOKED, v1::APPOINTMENT_STATUS_ARRIVED, when,
                            absl::FromUnixSeconds(10000 - 3601)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(CheckTransition(v1::APPOINTMENT_STATUS_BOOKED, v1::APPOINTMENT_STATUS_ARRIVED, when,
                              absl::FromUnixSeconds(10000 - 3600)).ok());
}

v1::Occurrence BookedAt(absl::Time start) {
  v1::Occurrence o;
  o.set_status(v1::APPOINTMENT_STATUS_BOOKED);
  *o.mutable_start_time() = ToProto(start);
  *o.mutable_end_time() = ToProto(start + absl::Hours(1));
  return o;
}

TEST(ReminderTest, EachOffsetFiresFromItsDueTimeUntilTheStartOnce) {
  const absl::Time start = absl::FromUnixSeconds(1'000'000);
  const std::vector<absl::Duration> offsets = {absl::Hours(24), absl::Hours(1)};
  v1::Occurrence o = BookedAt(start);
  EXPECT_TRUE(RemindersDue(o, offsets, start - absl::Hours(25)).empty());
  auto due = RemindersDue(o, offsets, start - absl::Hours(24));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0], absl::Hours(24));
  *o.add_reminders_sent() = ToProto(absl::Hours(24));
  EXPECT_TRUE(RemindersDue(o, offsets, start - absl::Hours(2)).empty());
  due = RemindersDue(o, offsets, start - absl::Minutes(59));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0], absl::Hours(1));
  *o.add_reminders_sent() = ToProto(absl::Hours(1));
  EXPECT_TRUE(RemindersDue(o, offsets, start - absl::Minutes(1)).empty());
  EXPECT_TRUE(RemindersDue(BookedAt(start), offsets, start).empty());  // too late
}

TEST(ReminderTest, LateBookingGetsOnlyTheClosestReminder) {
  const absl::Time start = absl::FromUnixSeconds(1'000'000);
  v1::Occurrence o = BookedAt(start);
  auto due = RemindersDue(o, {absl::Hours(24), absl::Hours(1)}, start - absl::Minutes(30));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0], absl::Hours(1));
  o.set_status(v1::APPOINTMENT_STATUS_CANCELLED);
  EXPECT_TRUE(RemindersDue(o, {absl::Hours(1)}, start - absl::Minutes(30)).empty());
}

TEST(ReminderTest, IdentityIncludesStartSoAMovedVisitIsRemindedAgain) {
  const absl::Time start = absl::FromUnixSeconds(1'000'000);
  EXPECT_EQ(ReminderCommandId(2, start, absl::Hours(1)), "reminder/2/1000000/3600");
  EXPECT_NE(ReminderCommandId(2, start, absl::Hours(1)),
            ReminderCommandId(2, start + absl::Hours(1), absl::Hours(1)));
  v1::Appointment appointment;
  v1::SchedulingEvent booked;
  booked.mutable_appointment_booked()->add_occurrences()->set_index(0);
  booked.mutable_appointment_booked()->set_status(v1::APPOINTMENT_STATUS_BOOKED);
  EvolveAppointment(appointment, booked, start);
  v1::SchedulingEvent reminder;
  *reminder.mutable_reminder_due()->mutable_offset() = ToProto(absl::Hours(1));
  EvolveAppointment(appointment, reminder, start);
  EXPECT_EQ(appointment.occurrences(0).reminders_sent_size(), 1);
  v1::SchedulingEvent moved;
  moved.mutable_appointment_rescheduled()->add_changes()->set_index(0);
  EvolveAppointment(appointment, moved, start);
  EXPECT_EQ(appointment.occurrences(0).reminders_sent_size(), 0);
  EXPECT_EQ(appointment.occurrences(0).reschedules_size(), 1);
  EXPECT_EQ(appointment.version(), 3);
}

v1::Appointment WeeklySeries(const absl::TimeZone& zone, int count) {
  v1::Appointment appointment;
  appointment.set_appointment_id("s-1");
  v1::RecurrenceRule rule;
  rule.set_frequency(v1::FREQUENCY_WEEKLY);
  rule.set_count(count);
  auto series = ExpandSeries(Local(zone, 2026, 3, 2, 9, 0), absl::Hours(1), zone, &rule);
  EXPECT_TRUE(series.ok());
  for (size_t i = 0; i < series->size(); ++i) {
    v1::Occurrence* o = appointment.add_occurrences();
    o->set_index(static_cast<int32_t>(i));
    o->set_status(v1::APPOINTMENT_STATUS_BOOKED);
    *o->mutable_start_time() = ToProto((*series)[i].start);
    *o->mutable_end_time() = ToProto((*series)[i].end);
  }
  return appointment;
}

TEST(RescheduleTest, RestOfSeriesMovesBySameLocalDaysAndTimeAcrossDst) {
  const absl::TimeZone ny = Zone("America/New_York");
  v1::Appointment appointment = WeeklySeries(ny, 4);
  appointment.mutable_occurrences(2)->set_status(v1::APPOINTMENT_STATUS_CANCELLED);
  // Occurrence 1 (Mon Mar 9, after the DST change) moves to Tue Mar 10 at 14:00.
  auto plan = PlanReschedule(appointment, 1, v1::CHANGE_SCOPE_THIS_AND_FOLLOWING,
                             Local(ny, 2026, 3, 10, 14, 0), std::nullopt, ny);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->size(), 2u);  // 1 and 3; the cancelled 2 stays
  EXPECT_EQ((*plan)[1].index(), 3);
  EXPECT_EQ(ny.At(FromProto((*plan)[1].start_time())).cs, absl::CivilSecond(2026, 3, 24, 14, 0, 0));
  EXPECT_EQ(FromProto((*plan)[1].end_time()) - FromProto((*plan)[1].start_time()), absl::Hours(1));
  EXPECT_EQ(FromProto((*plan)[1].previous_start_time()), FromProto(appointment.occurrences(3).start_time()));
  // Only this one.
  plan = PlanReschedule(appointment, 0, v1::CHANGE_SCOPE_THIS_OCCURRENCE,
                        Local(ny, 2026, 3, 3, 9, 0), absl::Minutes(30), ny);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->size(), 1u);
  // A cancelled occurrence cannot be moved.
  EXPECT_EQ(PlanReschedule(appointment, 2, v1::CHANGE_SCOPE_THIS_OCCURRENCE,
                           Local(ny, 2026, 3, 3, 9, 0), std::nullopt, ny).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(EnvelopeTest, RoundTripAndUnknownType) {
  v1::SchedulingEvent event;
  event.mutable_appointment_cancelled()->add_indexes(3);
  common::v1::EventEnvelope envelope;
  ToEnvelope(event, &envelope);
  EXPECT_EQ(envelope.event_type(), "clinical.scheduling.v1.AppointmentCancelled");
  auto back = FromEnvelope(envelope);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->appointment_cancelled().indexes(0), 3);
  envelope.set_event_type("clinical.scheduling.v1.Nope");
  EXPECT_FALSE(FromEnvelope(envelope).ok());
}

TEST(CalendarRulesTest, ViolationsNamedByField) {
  google::protobuf::RepeatedPtrField<v1::WorkingHours> hours;
  v1::WorkingHours* a = hours.Add();
  a->set_weekday(v1::WEEKDAY_MONDAY);
  a->set_start_minute(540);
  a->set_end_minute(720);
  v1::WorkingHours* b = hours.Add();
  b->set_weekday(v1::WEEKDAY_MONDAY);
  b->set_start_minute(700);
  b->set_end_minute(900);
  auto violations = CalendarRuleViolations("Mars/Olympus", hours, -1, 0);
  ASSERT_EQ(violations.size(), 3u);
  EXPECT_EQ(violations[0].first, "time_zone");
  EXPECT_EQ(violations[1].first, "working_hours[1]");
  EXPECT_EQ(violations[2].first, "buffer_minutes");
  EXPECT_TRUE(CalendarRuleViolations("Europe/Paris", {}, 10, 8).empty());
}

}  // namespace
}  // namespace clinical::scheduling

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "scheduling_domain.h"

namespace clinical::scheduling {
namespace {

v1::Weekday ToWeekday(absl::Weekday weekday) {
  switch (weekday) {
    case absl::Weekday::monday: return v1::WEEKDAY_MONDAY;
    case absl::Weekday::tuesday: return v1::WEEKDAY_TUESDAY;
    case absl::Weekday::wednesday: return v1::WEEKDAY_WEDNESDAY;
    case absl::Weekday::thursday: return v1::WEEKDAY_THURSDAY;
    case absl::Weekday::friday: return v1::WEEKDAY_FRIDAY;
    case absl::Weekday::saturday: return v1::WEEKDAY_SATURDAY;
    case absl::Weekday::sunday: return v1::WEEKDAY_SUNDAY;
  }
  return v1::WEEKDAY_UNSPECIFIED;
}

absl::TimeZone ZoneOf(const v1::Calendar& calendar) {
  absl::TimeZone zone;
  if (!absl::LoadTimeZone(calendar.time_zone(), &zone)) zone = absl::UTCTimeZone();
  return zone;
}

// Whether [start, end) lies inside working hours. Each local day's part must lie inside one
// block of that weekday; an appointment may run past midnight when a block reaching the end
// of one day (end_minute 1440) continues into a block starting at 0 on the next (night
// shifts, calendars open around the clock).
bool WithinWorkingHours(const v1::Calendar& calendar, const absl::TimeZone& zone,
                        const Interval& when) {
  const absl::CivilSecond end = zone.At(when.end).cs;
  absl::CivilSecond cursor = zone.At(when.start).cs;
  constexpr int64_t kDaySeconds = 24 * 60 * 60;
  while (true) {
    const absl::CivilDay day(cursor);
    const int64_t from_s = cursor - absl::CivilSecond(day);
    const int64_t to_s = end - absl::CivilSecond(day);  // beyond kDaySeconds: continues tomorrow
    const v1::Weekday weekday = ToWeekday(absl::GetWeekday(day));
    const v1::WorkingHours* covering = nullptr;
    for (const v1::WorkingHours& block : calendar.working_hours()) {
      if (block.weekday() != weekday) continue;
      if (from_s < block.start_minute() * 60 || from_s >= block.end_minute() * 60) continue;
      if (to_s <= block.end_minute() * 60) return true;
      if (covering == nullptr || block.end_minute() > covering->end_minute()) covering = &block;
    }
    if (covering == nullptr || covering->end_minute() * 60 < kDaySeconds) return false;
    cursor = absl::CivilSecond(day + 1);
  }
}

bool Ignored(const std::set<std::pair<std::string, int32_t>>& ignore, const Busy& busy) {
  return ignore.count({busy.appointment_id, busy.index}) > 0;
}

}  // namespace

std::vector<Conflict> CheckCandidates(const std::vector<Candidate>& candidates,
                                      const std::vector<ParticipantSchedule>& schedules,
                                      const std::set<std::pair<std::string, int32_t>>& ignore) {
  std::vector<Conflict> conflicts;
  for (const ParticipantSchedule& schedule : schedules) {
    const v1::Calendar* calendar = schedule.calendar;
    const absl::TimeZone zone = calendar ? ZoneOf(*calendar) : absl::UTCTimeZone();
    const absl::Duration buffer =
        calendar ? absl::Minutes(calendar->buffer_minutes()) : absl::ZeroDuration();
    // Candidates accepted so far per local day, for the daily limit.
    std::map<absl::CivilDay, int> accepted_per_day;
    for (const Candidate& candidate : candidates) {
      auto add = [&](std::string reason, const Busy* busy) {
        Conflict& c = conflicts.emplace_back();
        c.index = candidate.index;
        c.start = candidate.when.start;
        c.participant = schedule.label;
        c.reason = std::move(reason);
        if (busy) {
          c.appointment_id = busy->appointment_id;
          c.conflicting_index = busy->index;
        }
      };
      bool ok = true;
      if (calendar) {
        if (!WithinWorkingHours(*calendar, zone, candidate.when)) {
          add("outside working hours", nullptr);
          ok = false;
        }
        for (const v1::CalendarException& exception : calendar->exceptions()) {
          const Interval off{FromProto(exception.start_time()), FromProto(exception.end_time())};
          if (off.Overlaps(candidate.when)) {
            add(absl::StrCat("calendar exception ", exception.exception_id()), nullptr);
            ok = false;
          }
        }
      }
      const Interval padded{candidate.when.start - buffer, candidate.when.end + buffer};
      const absl::CivilDay day(zone.At(candidate.when.start).cs);
      int same_day = 0;
      for (const Busy& busy : schedule.busy) {
        if (Ignored(ignore, busy)) continue;
        if (padded.Overlaps(busy.when)) {
          add(absl::StrCat("appointment ", busy.appointment_id, " occurrence ", busy.index),
              &busy);
          ok = false;
        }
        if (absl::CivilDay(zone.At(busy.when.start).cs) == day) ++same_day;
      }
      if (calendar && calendar->max_appointments_per_day() > 0 &&
          same_day + accepted_per_day[day] >= calendar->max_appointments_per_day()) {
        add("daily limit reached", nullptr);
        ok = false;
      }
      if (ok) ++accepted_per_day[day];
    }
  }
  std::stable_sort(conflicts.begin(), conflicts.end(),
                   [](const Conflict& a, const Conflict& b) { return a.index < b.index; });
  return conflicts;
}

std::vector<Interval> FindSlots(const SlotQuery& query,
                                const std::vector<ParticipantSchedule>& schedules) {
  std::vector<Interval> slots;
  if (query.duration <= absl::ZeroDuration() || query.step <= absl::ZeroDuration()) return slots;
  const absl::Time from = std::max(query.window.start, query.not_before);
  // Align to the step on the Unix epoch (every real zone offset is a multiple of 15 min).
  absl::Time t = absl::UnixEpoch() + absl::Ceil(from - absl::UnixEpoch(), query.step);
  for (int guard = 0; t + query.duration <= query.window.end &&
                      static_cast<int>(slots.size()) < query.max_slots && guard < 100000;
       t += query.step, ++guard) {
    const Interval slot{t, t + query.duration};
    if (CheckCandidates({{0, slot}}, schedules).empty()) slots.push_back(slot);
  }
  return slots;
}

std::vector<std::pair<std::string, std::string>> CalendarRuleViolations(
    const std::string& time_zone, const google::protobuf::RepeatedPtrField<v1::WorkingHours>& hours,
    int32_t buffer_minutes, int32_t max_per_day) {
  std::vector<std::pair<std::string, std::string>> out;
  absl::TimeZone zone;
  if (time_zone.empty()) {
    out.emplace_back("time_zone", "is required");
  } else if (!absl::LoadTimeZone(time_zone, &zone)) {
    out.emplace_back("time_zone", "is not a known IANA time zone");
  }
  for (int i = 0; i < hours.size(); ++i) {
    const v1::WorkingHours& h = hours[i];
    const std::string field = absl::StrCat("working_hours[", i, "]");
    if (h.weekday() == v1::WEEKDAY_UNSPECIFIED || !v1::Weekday_IsValid(h.weekday())) {
      out.emplace_back(field + ".weekday", "is required");
    }
    if (h.start_minute() < 0 || h.end_minute() > 1440 || h.start_minute() >= h.end_minute()) {
      out.emplace_back(field, "needs 0 <= start_minute < end_minute <= 1440");
      continue;
    }
    for (int j = 0; j < i; ++j) {
      const v1::WorkingHours& o = hours[j];
      if (o.weekday() == h.weekday() && o.start_minute() < h.end_minute() &&
          h.start_minute() < o.end_minute()) {
        out.emplace_back(field, absl::StrCat("overlaps working_hours[", j, "]"));
      }
    }
  }
  if (buffer_minutes < 0 || buffer_minutes > 240) {
    out.emplace_back("buffer_minutes", "must be between 0 and 240");
  }
  if (max_per_day < 0 || max_per_day > 100) {
    out.emplace_back("max_appointments_per_day", "must be between 0 and 100");
  }
  return out;
}

}  // namespace clinical::scheduling

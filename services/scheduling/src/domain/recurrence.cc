#include "absl/strings/str_cat.h"
#include "scheduling_domain.h"

namespace clinical::scheduling {
namespace {

// The n-th (1-based) `weekday` of a month; n == 5 means the last one.
absl::CivilDay NthWeekdayOf(absl::CivilMonth month, absl::Weekday weekday, int n) {
  if (n >= 5) {
    absl::CivilDay last = absl::CivilDay(month + 1) - 1;
    while (absl::GetWeekday(last) != weekday) --last;
    return last;
  }
  absl::CivilDay day = absl::CivilDay(month);
  while (absl::GetWeekday(day) != weekday) ++day;
  return day + 7 * (n - 1);
}

}  // namespace

absl::Time LocalToAbsolute(const absl::CivilSecond& local, const absl::TimeZone& zone) {
  // UNIQUE: pre == trans == post. SKIPPED (a spring-forward gap): `pre` applies the offset
  // in force before the gap, which lands after it, i.e. the local time moves forward by the
  // gap. REPEATED (fall-back): `pre` is the earlier of the two instants.
  return zone.At(local).pre;
}

absl::StatusOr<std::vector<Interval>> ExpandSeries(absl::Time first_start, absl::Duration duration,
                                                   const absl::TimeZone& zone,
                                                   const v1::RecurrenceRule* rule) {
  std::vector<Interval> out;
  out.push_back({first_start, first_start + duration});
  if (rule == nullptr || rule->frequency() == v1::FREQUENCY_UNSPECIFIED) return out;
  const bool has_until = rule->has_until();
  if (rule->count() <= 0 && !has_until) {
    return absl::InvalidArgumentError("a recurrence needs a count or an end date");
  }
  if (rule->count() > kMaxOccurrences) {
    return absl::InvalidArgumentError(absl::StrCat("at most ", kMaxOccurrences, " occurrences"));
  }
  const absl::Time until = has_until ? FromProto(rule->until()) : absl::InfiniteFuture();
  const int count = rule->count() > 0 ? rule->count() : kMaxOccurrences + 1;
  const int interval = rule->interval() <= 0 ? 1 : rule->interval();
  const absl::CivilSecond first = zone.At(first_start).cs;
  const absl::CivilDay first_day(first);
  const int nth = (first.day() - 1) / 7 + 1;
  const absl::Weekday weekday = absl::GetWeekday(first_day);
  // Bounded: months without the date are skipped, so allow some extra steps.
  for (int step = 1; static_cast<int>(out.size()) < count && step <= 4 * kMaxOccurrences; ++step) {
    absl::CivilDay day;
    switch (rule->frequency()) {
      case v1::FREQUENCY_WEEKLY:
        day = first_day + 7 * interval * step;
        break;
      case v1::FREQUENCY_MONTHLY_BY_DATE: {
        const absl::CivilMonth month = absl::CivilMonth(first_day) + interval * step;
        day = absl::CivilDay(month.year(), month.month(), first.day());
        if (absl::CivilMonth(day) != month) continue;  // e.g. the 31st in a 30-day month
        break;
      }
      case v1::FREQUENCY_MONTHLY_BY_WEEKDAY:
        day = NthWeekdayOf(absl::CivilMonth(first_day) + interval * step, weekday, nth);
        break;
      default:
        return absl::InvalidArgumentError("unknown recurrence frequency");
    }
    const absl::CivilSecond local(day.year(), day.month(), day.day(), first.hour(), first.minute(),
                                  first.second());
    const absl::Time start = LocalToAbsolute(local, zone);
    if (start > until) break;
    if (static_cast<int>(out.size()) >= kMaxOccurrences) {
      return absl::InvalidArgumentError(
          absl::StrCat("the recurrence gives more than ", kMaxOccurrences, " occurrences"));
    }
    out.push_back({start, start + duration});
  }
  return out;
}

}  // namespace clinical::scheduling

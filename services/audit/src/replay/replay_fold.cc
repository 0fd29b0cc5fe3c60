#include "replay_fold.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "care_rules.h"
#include "case_domain.h"
#include "google/protobuf/util/time_util.h"
#include "scheduling_domain.h"

namespace clinical::audit::replay {
namespace {

namespace casev1 = ::clinical::case_::v1;
namespace schedv1 = ::clinical::scheduling::v1;
using google::protobuf::util::TimeUtil;

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(t));
}

absl::Status Undecodable(const LogEvent& event, const absl::Status& status) {
  return absl::DataLossError(absl::StrCat("cannot decode the event at ", event.position.topic(),
                                          " partition ", event.position.partition(), " offset ",
                                          event.position.offset(), ": ",
                                          absl::StatusCodeToString(status.code())));
}

}  // namespace

bool Selected(const common::v1::EventEnvelope& envelope, absl::Time as_of, v1::ReplayMode mode) {
  const auto& at = mode == v1::REPLAY_MODE_OCCURRED_AT ? envelope.occurred_at()
                                                       : envelope.recorded_at();
  return ToTime(at) <= as_of;
}

absl::StatusOr<CaseAtInstant> ReplayCase(const std::string& case_id, const std::string& tenant_id,
                                         const std::vector<LogEvent>& events, absl::Time as_of,
                                         v1::ReplayMode mode) {
  CaseAtInstant out;
  bool opened = false;
  bool any = false;
  for (const LogEvent& logged : events) {
    const common::v1::EventEnvelope& envelope = logged.envelope;
    if (envelope.aggregate_id() != case_id) continue;
    // The case belongs to the tenant of its events; another tenant's case does not exist
    // for this caller (the same answer as for an unknown id).
    if (envelope.tenant_id() != tenant_id) return absl::NotFoundError("case not found");
    any = true;
    if (!Selected(envelope, as_of, mode)) {
      ++out.events_left_out;
      continue;
    }
    auto event = case_service::FromEnvelope(envelope);
    if (!event.ok()) return Undecodable(logged, event.status());
    if (out.events_folded == 0) out.state = case_service::NewCase(case_id, envelope.tenant_id());
    opened = opened || event->body.has_case_opened();
    out.state = case_service::Evolve(std::move(out.state), *event);
    ++out.events_folded;
    out.last_folded = logged;
    if (ToTime(envelope.recorded_at()) > as_of) out.late_recorded.push_back(envelope);
  }
  if (!any) return absl::NotFoundError("case not found");
  if (!opened) return absl::NotFoundError("the case was not open at that instant");
  out.overdue_task_ids = case_service::OverdueTaskIds(out.state, as_of);
  return out;
}

bool AppointmentFilter::Take(const common::v1::EventEnvelope& envelope) {
  const std::string& id = envelope.aggregate_id();
  if (std::find(appointment_ids_.begin(), appointment_ids_.end(), id) != appointment_ids_.end()) {
    return true;
  }
  if (envelope.tenant_id() != tenant_id_ ||
      envelope.event_type() != schedv1::AppointmentBooked::descriptor()->full_name()) {
    return false;
  }
  schedv1::AppointmentBooked booked;
  if (!envelope.payload().UnpackTo(&booked) || booked.case_id() != case_id_) return false;
  appointment_ids_.push_back(id);
  return true;
}

absl::StatusOr<AppointmentsAtInstant> ReplayAppointments(const std::vector<LogEvent>& events,
                                                         absl::Time as_of, v1::ReplayMode mode) {
  AppointmentsAtInstant out;
  std::vector<std::string> order;
  std::map<std::string, schedv1::Appointment> by_id;
  for (const LogEvent& logged : events) {
    const common::v1::EventEnvelope& envelope = logged.envelope;
    if (!Selected(envelope, as_of, mode)) continue;
    auto event = scheduling::FromEnvelope(envelope);
    if (!event.ok()) return Undecodable(logged, event.status());
    if (scheduling::IsCalendarEvent(*event)) continue;
    const std::string& id = envelope.aggregate_id();
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      if (!event->has_appointment_booked()) continue;  // booked after the instant
      order.push_back(id);
      it = by_id.emplace(id, schedv1::Appointment()).first;
      it->second.set_appointment_id(id);
    }
    scheduling::EvolveAppointment(it->second, *event, ToTime(envelope.recorded_at()));
    ++out.events_folded;
  }
  for (const std::string& id : order) out.appointments.push_back(std::move(by_id[id]));
  return out;
}

absl::StatusOr<std::vector<v1::DisclosureEntry>> DisclosuresOf(const std::string& case_id,
                                                               const std::string& tenant_id,
                                                               const std::vector<LogEvent>& events) {
  std::vector<v1::DisclosureEntry> out;
  casev1::Case state;
  bool started = false;
  for (const LogEvent& logged : events) {
    const common::v1::EventEnvelope& envelope = logged.envelope;
    if (envelope.aggregate_id() != case_id || envelope.tenant_id() != tenant_id) continue;
    auto event = case_service::FromEnvelope(envelope);
    if (!event.ok()) return Undecodable(logged, event.status());
    if (!started) {
      state = case_service::NewCase(case_id, tenant_id);
      started = true;
    }
    if (event->body.has_information_disclosed()) {
      const casev1::InformationDisclosed& d = event->body.information_disclosed();
      v1::DisclosureEntry& entry = out.emplace_back();
      entry.set_case_id(case_id);
      entry.set_disclosure_id(d.disclosure_id());
      *entry.mutable_disclosed_at() = envelope.occurred_at();
      *entry.mutable_recorded_at() = envelope.recorded_at();
      entry.set_recipient_member_id(d.member_id());
      for (const casev1::CareTeamMember& member : state.care_team()) {
        if (member.member_id() != d.member_id()) continue;
        entry.set_recipient_name(member.name());
        entry.set_recipient_organization(member.organization());
        entry.set_recipient_role(member.role());
      }
      *entry.mutable_categories() = d.categories();
      entry.set_purpose(d.purpose());
      entry.set_consent_id(d.consent_id());
      entry.set_consent_override_reason(d.consent_override().reason());
      entry.set_referral_id(d.referral_id());
      entry.set_disclosed_by(envelope.actor().user_id());
      entry.set_event_id(envelope.event_id());
      entry.set_description(DescribeDisclosure(entry));
    }
    state = case_service::Evolve(std::move(state), *event);
  }
  return out;
}

std::vector<v1::DisclosureEntry> Window(std::vector<v1::DisclosureEntry> entries, absl::Time start,
                                        absl::Time end) {
  std::erase_if(entries, [&](const v1::DisclosureEntry& e) {
    const absl::Time at = ToTime(e.disclosed_at());
    return at < start || at > end;
  });
  auto key = [](const v1::DisclosureEntry& e) {
    return std::make_tuple(TimeUtil::TimestampToNanoseconds(e.disclosed_at()), e.case_id(),
                           e.disclosure_id().size(), e.disclosure_id());
  };
  std::sort(entries.begin(), entries.end(),
            [&](const auto& a, const auto& b) { return key(a) < key(b); });
  return entries;
}

absl::Time SixYearsBefore(absl::Time end) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilSecond at = absl::ToCivilSecond(end, utc);
  // 29 February six years back does not exist: CivilSecond normalises it to 1 March, which
  // would shorten the window by a day; take 28 February instead.
  absl::CivilSecond back(at.year() - 6, at.month(), at.day(), at.hour(), at.minute(), at.second());
  if (back.month() != at.month()) {
    back = absl::CivilSecond(at.year() - 6, at.month(), 28, at.hour(), at.minute(), at.second());
  }
  return absl::FromCivil(back, utc) + (end - absl::FromCivil(at, utc));
}

std::string DescribeDisclosure(const v1::DisclosureEntry& entry) {
  // "INFORMATION_CATEGORY_CARE_PLAN" -> "care plan"; a value this build does not know stays
  // visible as its number rather than vanishing from the report.
  auto readable = [](const std::string& name, const std::string& prefix, int value) {
    if (name.size() <= prefix.size()) return absl::StrCat("unknown (", value, ")");
    std::string text = name.substr(prefix.size());
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) {
      return c == '_' ? ' ' : static_cast<char>(std::tolower(c));
    });
    return text;
  };
  std::vector<std::string> what;
  for (int category : entry.categories()) {
    what.push_back(readable(
        casev1::InformationCategory_Name(static_cast<casev1::InformationCategory>(category)),
        "INFORMATION_CATEGORY_", category));
  }
  std::string text = absl::StrCat(
      "Disclosed ", absl::StrJoin(what, ", "), " information for ",
      readable(casev1::ConsentPurpose_Name(entry.purpose()), "CONSENT_PURPOSE_", entry.purpose()));
  if (!entry.referral_id().empty()) {
    absl::StrAppend(&text, " with service referral ", entry.referral_id());
  }
  absl::StrAppend(&text, entry.consent_id().empty()
                             ? std::string("; consent rule overridden with a recorded reason")
                             : absl::StrCat("; under consent ", entry.consent_id()));
  return text;
}

}  // namespace clinical::audit::replay

// The replay's pure parts: instant selection, the fold through the case and scheduling
// services' own Evolve, the appointment filter, disclosures and their window.
#include "replay_fold.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

#include "case_domain.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "scheduling_domain.h"

namespace clinical::audit::replay {
namespace {

namespace casev1 = ::clinical::case_::v1;
namespace schedv1 = ::clinical::scheduling::v1;
using google::protobuf::util::MessageDifferencer;
using google::protobuf::util::TimeUtil;

constexpr char kCase[] = "7d0c5a8e-1111-4c2a-9a57-000000000001";
constexpr char kTenant[] = "tenant-a";

google::protobuf::Timestamp Ts(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

const absl::Time kT0 = absl::FromUnixSeconds(1'780'000'000);
absl::Time Day(int n) { return kT0 + absl::Hours(24 * n); }

// A case event as the case service writes it: its own ToEnvelope, then what the store sets.
class CaseLog {
 public:
  void Add(casev1::CaseEvent body, absl::Time occurred, absl::Time recorded,
           const std::string& tenant = kTenant) {
    case_service::Event event;
    event.body = std::move(body);
    event.occurred_at = occurred;
    event.actor.set_user_id("cm-1");
    LogEvent logged;
    case_service::ToEnvelope(event, &logged.envelope);
    logged.envelope.set_aggregate_id(kCase);
    logged.envelope.set_aggregate_type("case");
    logged.envelope.set_tenant_id(tenant);
    logged.envelope.set_aggregate_version(static_cast<int64_t>(events_.size()) + 1);
    logged.envelope.set_event_id(absl::StrCat("event-", events_.size() + 1));
    *logged.envelope.mutable_recorded_at() = Ts(recorded);
    logged.position.set_topic("case-topic");
    logged.position.set_offset(static_cast<int64_t>(events_.size()));
    events_.push_back(std::move(logged));
  }
  const std::vector<LogEvent>& events() const { return events_; }

  // The reference: the case service's own fold (engine: NewCase + Evolve per event).
  casev1::Case FoldFirst(size_t n) const {
    casev1::Case state = case_service::NewCase(kCase, kTenant);
    for (size_t i = 0; i < n; ++i) state = case_service::Evolve(state, *case_service::FromEnvelope(events_[i].envelope));
    return state;
  }

 private:
  std::vector<LogEvent> events_;
};

casev1::CaseEvent Opened() {
  casev1::CaseEvent e;
  auto* o = e.mutable_case_opened();
  o->mutable_patient()->set_mrn("MRN-1");
  o->set_program("care-coordination");
  o->set_priority(2);
  o->set_acuity(3);
  o->set_status(casev1::CASE_STATUS_ACTIVE);
  o->set_stage(casev1::CASE_STAGE_INTAKE);
  return e;
}

casev1::CaseEvent Assessment(const std::string& id, casev1::RiskLevel risk) {
  casev1::CaseEvent e;
  auto* a = e.mutable_assessment_recorded();
  a->set_assessment_id(id);
  a->set_instrument(casev1::ASSESSMENT_INSTRUMENT_PHQ9);
  a->set_score(risk == casev1::RISK_LEVEL_HIGH ? 22 : 4);
  a->set_risk_level(risk);
  return e;
}

casev1::CaseEvent Note(const std::string& text, absl::Time at) {
  casev1::CaseEvent e;
  auto* n = e.mutable_note_added();
  n->set_note_id("note-1");
  n->set_kind(casev1::NOTE_KIND_CONTACT);
  n->set_channel(casev1::CONTACT_CHANNEL_PHONE);
  *n->mutable_occurred_at() = Ts(at);
  n->set_text(text);
  return e;
}

// Open on day 0, a note on day 7, an assessment administered on day 10 but recorded on
// day 20 (late), a second assessment on day 14.
CaseLog WeeksWithLateAssessment() {
  CaseLog log;
  log.Add(Opened(), Day(0), Day(0));
  log.Add(Note("called", Day(7)), Day(7), Day(7));
  log.Add(Assessment("assessment-1", casev1::RISK_LEVEL_LOW), Day(14), Day(14));
  log.Add(Assessment("assessment-2", casev1::RISK_LEVEL_HIGH), Day(10), Day(20));
  return log;
}

TEST(ReplaySelectionTest, InstantIsInclusiveAndModePicksTheClock) {
  common::v1::EventEnvelope e;
  *e.mutable_occurred_at() = Ts(Day(1));
  *e.mutable_recorded_at() = Ts(Day(3));
  EXPECT_TRUE(Selected(e, Day(1), v1::REPLAY_MODE_OCCURRED_AT));
  EXPECT_FALSE(Selected(e, Day(1) - absl::Nanoseconds(1), v1::REPLAY_MODE_OCCURRED_AT));
  EXPECT_FALSE(Selected(e, Day(2), v1::REPLAY_MODE_RECORDED_AT));
  EXPECT_TRUE(Selected(e, Day(3), v1::REPLAY_MODE_RECORDED_AT));
}

TEST(ReplayCaseTest, RecordedAtEqualsTheCaseServiceFoldOfWhatWasRecorded) {
  const CaseLog log = WeeksWithLateAssessment();
  // Each instant between two recordings equals the case service's fold of the prefix.
  const std::vector<std::pair<absl::Time, size_t>> instants = {
      {Day(0), 1}, {Day(8), 2}, {Day(15), 3}, {Day(19), 3}, {Day(21), 4}};
  for (const auto& [at, n] : instants) {
    auto replay = ReplayCase(kCase, kTenant, log.events(), at, v1::REPLAY_MODE_RECORDED_AT);
    ASSERT_TRUE(replay.ok()) << replay.status();
    EXPECT_TRUE(MessageDifferencer::Equals(replay->state, log.FoldFirst(n))) << absl::FormatTime(at);
    EXPECT_EQ(replay->events_folded, static_cast<int64_t>(n));
    EXPECT_EQ(replay->events_left_out, static_cast<int64_t>(4 - n));
    EXPECT_EQ(replay->state.version(), static_cast<int64_t>(n));
    EXPECT_EQ(replay->last_folded->envelope.event_id(), absl::StrCat("event-", n));
    EXPECT_TRUE(replay->late_recorded.empty());
  }
}

TEST(ReplayCaseTest, OccurredAtIncludesTheLateAssessmentFromItsAdministrationOn) {
  const CaseLog log = WeeksWithLateAssessment();
  // Day 12: the high-risk assessment had happened (day 10) but was not recorded (day 20).
  auto as_it_was = ReplayCase(kCase, kTenant, log.events(), Day(12), v1::REPLAY_MODE_OCCURRED_AT);
  auto as_known = ReplayCase(kCase, kTenant, log.events(), Day(12), v1::REPLAY_MODE_RECORDED_AT);
  ASSERT_TRUE(as_it_was.ok() && as_known.ok());
  ASSERT_EQ(as_it_was->state.assessments_size(), 1);
  EXPECT_EQ(as_it_was->state.assessments(0).assessment_id(), "assessment-2");
  EXPECT_EQ(as_it_was->state.risk_level(), casev1::RISK_LEVEL_HIGH);
  EXPECT_EQ(as_known->state.assessments_size(), 0);
  EXPECT_NE(as_known->state.risk_level(), casev1::RISK_LEVEL_HIGH);
  ASSERT_EQ(as_it_was->late_recorded.size(), 1u);
  EXPECT_EQ(as_it_was->late_recorded[0].event_id(), "event-4");
  EXPECT_EQ(as_it_was->events_folded, 3);
  EXPECT_EQ(as_known->events_folded, 2);
  // Administered_at is the day it happened, not the day it was typed in.
  EXPECT_EQ(as_it_was->state.assessments(0).administered_at().seconds(), absl::ToUnixSeconds(Day(10)));
  // Once everything is recorded, both modes agree with the case service's state.
  auto all_occurred = ReplayCase(kCase, kTenant, log.events(), Day(21), v1::REPLAY_MODE_OCCURRED_AT);
  ASSERT_TRUE(all_occurred.ok());
  EXPECT_TRUE(MessageDifferencer::Equals(all_occurred->state, log.FoldFirst(4)));
}

TEST(ReplayCaseTest, OverdueTasksAreReadAtTheInstant) {
  CaseLog log;
  log.Add(Opened(), Day(0), Day(0));
  casev1::CaseEvent plan;
  plan.mutable_care_plan_created()->set_status(casev1::CARE_PLAN_STATUS_ACTIVE);
  log.Add(plan, Day(1), Day(1));
  casev1::CaseEvent task;
  task.mutable_care_task_added()->set_task_id("task-1");
  task.mutable_care_task_added()->set_status(casev1::TASK_STATUS_REQUESTED);
  *task.mutable_care_task_added()->mutable_due_at() = Ts(Day(5));
  log.Add(task, Day(2), Day(2));
  auto before = ReplayCase(kCase, kTenant, log.events(), Day(4), v1::REPLAY_MODE_RECORDED_AT);
  auto after = ReplayCase(kCase, kTenant, log.events(), Day(6), v1::REPLAY_MODE_RECORDED_AT);
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_TRUE(before->overdue_task_ids.empty());
  EXPECT_EQ(after->overdue_task_ids, std::vector<std::string>{"task-1"});
}

TEST(ReplayCaseTest, NotFoundForUnknownOtherTenantOrNotYetOpened) {
  const CaseLog log = WeeksWithLateAssessment();
  EXPECT_EQ(ReplayCase(kCase, kTenant, {}, Day(30), v1::REPLAY_MODE_RECORDED_AT).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ReplayCase(kCase, "tenant-b", log.events(), Day(30), v1::REPLAY_MODE_RECORDED_AT)
                .status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ReplayCase(kCase, kTenant, log.events(), Day(0) - absl::Seconds(1),
                       v1::REPLAY_MODE_OCCURRED_AT).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ReplayCase("other-case", kTenant, log.events(), Day(30), v1::REPLAY_MODE_RECORDED_AT)
                .status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ReplayCaseTest, UndecodableEventIsDataLossNamingItsPosition) {
  CaseLog log = WeeksWithLateAssessment();
  std::vector<LogEvent> events = log.events();
  events[1].envelope.mutable_payload()->set_type_url("type.googleapis.com/clinical.case.v1.Nope");
  auto replay = ReplayCase(kCase, kTenant, events, Day(30), v1::REPLAY_MODE_RECORDED_AT);
  ASSERT_EQ(replay.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(replay.status().message().find("offset 1"), std::string::npos);
  EXPECT_EQ(replay.status().message().find("called"), std::string::npos);  // no content
}

// ---- Appointments ----

LogEvent Scheduling(const std::string& appointment_id, const schedv1::SchedulingEvent& event,
                    absl::Time at, const std::string& tenant = kTenant) {
  LogEvent logged;
  scheduling::ToEnvelope(event, &logged.envelope);
  logged.envelope.set_aggregate_id(appointment_id);
  logged.envelope.set_tenant_id(tenant);
  *logged.envelope.mutable_occurred_at() = Ts(at);
  *logged.envelope.mutable_recorded_at() = Ts(at);
  return logged;
}

schedv1::SchedulingEvent Booked(const std::string& case_id) {
  schedv1::SchedulingEvent e;
  auto* b = e.mutable_appointment_booked();
  b->set_case_id(case_id);
  b->set_type(schedv1::APPOINTMENT_TYPE_HOME_VISIT);
  b->set_status(schedv1::APPOINTMENT_STATUS_BOOKED);
  auto* o = b->add_occurrences();
  o->set_index(0);
  *o->mutable_start_time() = Ts(Day(40));
  *o->mutable_end_time() = Ts(Day(40) + absl::Hours(1));
  return e;
}

schedv1::SchedulingEvent Cancelled() {
  schedv1::SchedulingEvent e;
  e.mutable_appointment_cancelled()->add_indexes(0);
  e.mutable_appointment_cancelled()->set_reason(schedv1::CANCELLATION_REASON_PATIENT_REQUEST);
  return e;
}

TEST(ReplayAppointmentsTest, FilterTakesTheCasesBookingsAndTheirLaterEventsOnly) {
  AppointmentFilter filter(kCase, kTenant);
  EXPECT_FALSE(filter.Take(Scheduling("appt-x", Cancelled(), Day(1)).envelope));  // unknown yet
  EXPECT_TRUE(filter.Take(Scheduling("appt-1", Booked(kCase), Day(1)).envelope));
  EXPECT_FALSE(filter.Take(Scheduling("appt-2", Booked("another-case"), Day(1)).envelope));
  EXPECT_FALSE(filter.Take(Scheduling("appt-3", Booked(kCase), Day(1), "tenant-b").envelope));
  EXPECT_TRUE(filter.Take(Scheduling("appt-1", Cancelled(), Day(2)).envelope));
  EXPECT_FALSE(filter.Take(Scheduling("appt-2", Cancelled(), Day(2)).envelope));
}

TEST(ReplayAppointmentsTest, FoldsWithTheSchedulingServicesEvolveAtTheInstant) {
  const std::vector<LogEvent> events = {Scheduling("appt-1", Booked(kCase), Day(1)),
                                        Scheduling("appt-2", Booked(kCase), Day(3)),
                                        Scheduling("appt-1", Cancelled(), Day(5))};
  auto day2 = ReplayAppointments(events, Day(2), v1::REPLAY_MODE_RECORDED_AT);
  auto day4 = ReplayAppointments(events, Day(4), v1::REPLAY_MODE_RECORDED_AT);
  auto day6 = ReplayAppointments(events, Day(6), v1::REPLAY_MODE_OCCURRED_AT);
  ASSERT_TRUE(day2.ok() && day4.ok() && day6.ok());
  ASSERT_EQ(day2->appointments.size(), 1u);
  EXPECT_EQ(day2->appointments[0].appointment_id(), "appt-1");
  EXPECT_EQ(day2->appointments[0].occurrences(0).status(), schedv1::APPOINTMENT_STATUS_BOOKED);
  ASSERT_EQ(day4->appointments.size(), 2u);
  ASSERT_EQ(day6->appointments.size(), 2u);
  EXPECT_EQ(day6->appointments[0].occurrences(0).status(), schedv1::APPOINTMENT_STATUS_CANCELLED);
  EXPECT_EQ(day6->events_folded, 3);
  // The reference: the scheduling service's own fold.
  schedv1::Appointment expected;
  expected.set_appointment_id("appt-1");
  scheduling::EvolveAppointment(expected, Booked(kCase), Day(1));
  scheduling::EvolveAppointment(expected, Cancelled(), Day(5));
  EXPECT_TRUE(MessageDifferencer::Equals(day6->appointments[0], expected));
}

// ---- Disclosures ----

casev1::CaseEvent Member(const std::string& id, const std::string& name) {
  casev1::CaseEvent e;
  auto* m = e.mutable_care_team_member_added()->mutable_member();
  m->set_member_id(id);
  m->set_role(casev1::CARE_TEAM_ROLE_PROVIDER);
  m->set_name(name);
  m->set_organization("Riverside Clinic");
  m->set_active(true);
  return e;
}

casev1::CaseEvent Disclosed(const std::string& id, const std::string& member, bool overridden) {
  casev1::CaseEvent e;
  auto* d = e.mutable_information_disclosed();
  d->set_disclosure_id(id);
  d->set_member_id(member);
  d->add_categories(casev1::INFORMATION_CATEGORY_CLINICAL);
  d->add_categories(casev1::INFORMATION_CATEGORY_CARE_PLAN);
  d->set_purpose(casev1::CONSENT_PURPOSE_CARE_COORDINATION);
  if (overridden) {
    d->mutable_consent_override()->set_reason("emergency");
  } else {
    d->set_consent_id("consent-1");
  }
  return e;
}

TEST(DisclosuresTest, RecipientIsTheCareTeamMemberAsTheCaseStoodThen) {
  CaseLog log;
  log.Add(Opened(), Day(0), Day(0));
  log.Add(Member("member-1", "Dr Ada Stone"), Day(1), Day(1));
  log.Add(Disclosed("disclosure-1", "member-1", false), Day(2), Day(2));
  casev1::CaseEvent removed;
  removed.mutable_care_team_member_removed()->set_member_id("member-1");
  log.Add(removed, Day(3), Day(3));
  log.Add(Disclosed("disclosure-2", "member-1", true), Day(4), Day(4));
  log.Add(Opened(), Day(5), Day(5), "tenant-b");  // not this tenant's: skipped
  auto found = DisclosuresOf(kCase, kTenant, log.events());
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->size(), 2u);
  const v1::DisclosureEntry& first = (*found)[0];
  EXPECT_EQ(first.case_id(), kCase);
  EXPECT_EQ(first.disclosure_id(), "disclosure-1");
  EXPECT_EQ(first.disclosed_at().seconds(), absl::ToUnixSeconds(Day(2)));
  EXPECT_EQ(first.recipient_name(), "Dr Ada Stone");
  EXPECT_EQ(first.recipient_organization(), "Riverside Clinic");
  EXPECT_EQ(first.recipient_role(), casev1::CARE_TEAM_ROLE_PROVIDER);
  EXPECT_EQ(first.purpose(), casev1::CONSENT_PURPOSE_CARE_COORDINATION);
  EXPECT_EQ(first.consent_id(), "consent-1");
  EXPECT_EQ(first.disclosed_by(), "cm-1");
  EXPECT_EQ(first.event_id(), "event-3");
  EXPECT_EQ(first.description(),
            "Disclosed clinical, care plan information for care coordination; under consent consent-1");
  const v1::DisclosureEntry& second = (*found)[1];
  EXPECT_EQ(second.recipient_name(), "Dr Ada Stone");  // removed later, still the recipient
  EXPECT_EQ(second.consent_override_reason(), "emergency");
  EXPECT_NE(second.description().find("overridden"), std::string::npos);
}

TEST(DisclosuresTest, WindowKeepsBothEndsAndSortsByDateCaseAndNumber) {
  auto entry = [](absl::Time at, const std::string& case_id, const std::string& id) {
    v1::DisclosureEntry e;
    *e.mutable_disclosed_at() = Ts(at);
    e.set_case_id(case_id);
    e.set_disclosure_id(id);
    return e;
  };
  const std::vector<v1::DisclosureEntry> all = {
      entry(Day(5), "b", "disclosure-10"), entry(Day(5), "b", "disclosure-9"),
      entry(Day(5), "a", "disclosure-3"),  entry(Day(1), "z", "disclosure-1"),
      entry(Day(9), "a", "disclosure-4"),  entry(Day(0), "a", "disclosure-0")};
  const auto window = Window(all, Day(1), Day(5));
  std::vector<std::string> ids;
  for (const auto& e : window) ids.push_back(absl::StrCat(e.case_id(), "/", e.disclosure_id()));
  EXPECT_EQ(ids, (std::vector<std::string>{"z/disclosure-1", "a/disclosure-3", "b/disclosure-9",
                                           "b/disclosure-10"}));
}

TEST(DisclosuresTest, SixYearsBackOnTheCalendarIncludingLeapDays) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  EXPECT_EQ(SixYearsBefore(absl::FromCivil(absl::CivilSecond(2026, 11, 27, 12, 30, 5), utc)),
            absl::FromCivil(absl::CivilSecond(2020, 11, 27, 12, 30, 5), utc));
  EXPECT_EQ(SixYearsBefore(absl::FromCivil(absl::CivilSecond(2028, 2, 29, 8, 0, 0), utc)),
            absl::FromCivil(absl::CivilSecond(2022, 2, 28, 8, 0, 0), utc));
  const absl::Time with_nanos = absl::FromCivil(absl::CivilSecond(2026, 1, 1, 0, 0, 0), utc) +
                                absl::Nanoseconds(7);
  EXPECT_EQ(SixYearsBefore(with_nanos),
            absl::FromCivil(absl::CivilSecond(2020, 1, 1, 0, 0, 0), utc) + absl::Nanoseconds(7));
}

}  // namespace
}  // namespace clinical::audit::replay

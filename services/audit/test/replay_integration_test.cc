// Time travel and disclosures against real processes: the case service, the scheduling
// service and the replay (audit_replay_test_server, wired like the audit service) on the
// test run's real Kafka, driven over real gRPC.
//
// A case changes over five weeks — an intake entered late, a contact note and an assessment
// back-dated to when they happened, then assignment, care plan, goal, task, care team,
// consent, a disclosure and an appointment — and at last a late-recorded correction: a
// high-risk PHQ-9 administered two weeks ago, entered today. After every step the test
// records what GetCase (and GetAppointment) answered and when; ReplayCase at those instants
// must return exactly that state (RECORDED_AT), at instants weeks back the states the case
// had then (OCCURRED_AT), and the two modes must differ exactly by the late correction.
#include <signal.h>

#include <cstdlib>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clinical/audit/v1/replay_service.grpc.pb.h"
#include "clinical/case/v1/case_service.grpc.pb.h"
#include "clinical/scheduling/v1/scheduling_service.grpc.pb.h"
#include "clinical/testing/identity.h"
#include "clinical/testing/organisation.h"
#include "clinical/testing/grpc_status.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/service_process.h"
#include "clinical/testing/subprocess.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"

namespace clinical::audit::replay {
namespace {

namespace av1 = ::clinical::audit::v1;
namespace cv1 = ::clinical::case_::v1;
namespace sv1 = ::clinical::scheduling::v1;
using ::clinical::testing::Subprocess;
using ::clinical::testing::FieldsOf;
using ::clinical::testing::UniqueName;
using google::protobuf::util::MessageDifferencer;
using google::protobuf::util::TimeUtil;

constexpr char kTenant[] = "tenant-replay";
constexpr char kManager[] = "cm-replay";

google::protobuf::Timestamp Ts(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}
absl::Duration Days(int n) { return absl::Hours(24) * n; }

std::unique_ptr<grpc::ClientContext> As(const std::string& user, const std::string& role,
                                        const std::string& tenant = kTenant) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  testing::Authenticate(*context, {user, role, tenant});
  return context;
}

std::string Diff(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  std::string report;
  MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&report);
  differencer.Compare(a, b);
  return report;
}

// What the services reported after one step, and when.
struct Reported {
  std::string step;
  absl::Time at;
  cv1::Case state;
  std::vector<std::string> overdue_task_ids;
  std::vector<sv1::Appointment> appointments;
};

class ReplayIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string case_topic = UniqueName("clinical.case.replay-test");
    const std::string scheduling_topic = UniqueName("clinical.scheduling.replay-test");
    const std::string access_topic = "--access-topic=" + UniqueName("clinical.access.replay-test");
    const std::string organisation_topic =
        "--organisation-topic=" + UniqueName("clinical.case.organisation.replay-test");
    testing::ServiceLaunch case_launch;
    case_launch.service = "case";
    case_launch.args = {"--case-topic=" + case_topic, "--case-topic-partitions=3",
                        "--writer-id=" + UniqueName("case-service.replay-test"), access_topic, organisation_topic};
    auto cases = testing::ServiceProcess::Start(case_launch);
    ASSERT_TRUE(cases.ok()) << cases.status();
    cases_ = cases->release();
    // sup-1 supervises the case's team (assignments, disclosures); the manager is a member.
    auto organisation = cv1::CaseService::NewStub(cases_->NewChannel());
    const absl::Status configured = testing::ConfigureOrganisationThroughApi(
        *organisation, {.tenant = kTenant,
                        .administrator = "admin-replay",
                        .privacy_officer_ids = {"privacy-replay"},
                        .emergency_access_max_minutes = 0,
                        .teams = {{.team_id = "team-north", .name = "North", .supervisor_ids = {"sup-1"},
                                   .member_ids = {kManager}}}});
    ASSERT_TRUE(configured.ok()) << configured;
    testing::ServiceLaunch scheduling_launch;
    scheduling_launch.service = "scheduling";
    scheduling_launch.args = {"--scheduling-topic=" + scheduling_topic,
                              "--scheduling-topic-partitions=3", "--case-topic=" + case_topic,
                              "--writer-id=" + UniqueName("scheduling-service.replay-test"),
                              access_topic, organisation_topic};
    auto scheduling = testing::ServiceProcess::Start(scheduling_launch);
    ASSERT_TRUE(scheduling.ok()) << scheduling.status();
    scheduling_ = scheduling->release();
    // The replay alone, wired as in the audit service (audit_replay_test_server), as the
    // audit service's principal.
    auto replay = Subprocess::Start(
        {testing::BinaryPath("services/audit/src/replay/audit_replay_test_server"), "--grpc-port=0",
         "--shutdown-grace=5s", "--case-topic=" + case_topic,
         "--scheduling-topic=" + scheduling_topic, access_topic},
        testing::ServiceEnvironment("audit"));
    ASSERT_TRUE(replay.ok()) << replay.status();
    replay_ = replay->release();
    auto line = replay_->WaitForLine(
        [](const std::string& l) { return testing::AnnouncedPort(l, "listening") > 0; },
        absl::Seconds(90));
    ASSERT_TRUE(line.has_value()) << absl::StrJoin(replay_->Lines(), "\n");
    replay_address_ = new std::string(
        absl::StrCat("127.0.0.1:", testing::AnnouncedPort(*line, "listening")));
  }
  static void TearDownTestSuite() {
    if (replay_ != nullptr) {
      replay_->Signal(SIGTERM);
      const auto status = replay_->Wait(absl::Seconds(30));
      EXPECT_TRUE(status.has_value() && WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
    }
    for (testing::ServiceProcess* service : {scheduling_, cases_}) {
      if (service == nullptr) continue;
      const auto status = service->Terminate(absl::Seconds(30));
      EXPECT_TRUE(status.has_value() && WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
    }
    delete replay_;
    delete scheduling_;
    delete cases_;
    delete replay_address_;
  }

  void SetUp() override {
    ASSERT_NE(replay_address_, nullptr);
    case_stub_ = cv1::CaseService::NewStub(cases_->NewChannel());
    scheduling_stub_ = sv1::SchedulingService::NewStub(scheduling_->NewChannel());
    replay_stub_ = av1::AuditReplayService::NewStub(testing::SecureChannel(*replay_address_));
  }

  // Runs one case command as the case manager (or `role`), expecting success.
  template <typename Request, typename Response>
  Response Do(grpc::Status (cv1::CaseService::Stub::*rpc)(grpc::ClientContext*, const Request&,
                                                          Response*),
              Request request, const std::string& role = "case_manager") {
    request.set_case_id(case_id_);
    request.set_command_id(UniqueName("cmd"));
    Response response;
    const grpc::Status status =
        (case_stub_.get()->*rpc)(As(role == "case_manager" ? kManager : "sup-1", role).get(),
                                 request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message() << " " << absl::StrJoin(FieldsOf(status), ",");
    return response;
  }

  std::string Open(const std::string& mrn, std::optional<absl::Time> occurred_at) {
    cv1::OpenCaseRequest open;
    open.set_command_id(UniqueName("open"));
    open.mutable_patient()->set_mrn(mrn);
    open.mutable_patient()->set_given_name("Maria");
    open.mutable_patient()->set_family_name("Example");
    open.mutable_patient()->set_birth_date("1950-03-14");
    open.mutable_patient()->set_gender(cv1::ADMINISTRATIVE_GENDER_FEMALE);
    open.set_program("elder_care");
    open.set_priority(2);
    open.set_acuity(3);
    open.mutable_referral()->set_source(cv1::REFERRAL_SOURCE_HOSPITAL);
    open.mutable_referral()->set_reason("discharge after CHF admission");
    open.set_initial_status(cv1::CASE_STATUS_ACTIVE);
    open.set_team_id("team-north");
    if (occurred_at.has_value()) *open.mutable_occurred_at() = Ts(*occurred_at);
    cv1::OpenCaseResponse opened;
    const grpc::Status status = case_stub_->OpenCase(As("sup-1", "supervisor").get(), open, &opened);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return opened.case_id();
  }

  // What GetCase and GetAppointment answer now, stamped with the instant after the answers.
  void Record(const std::string& step) {
    Reported reported;
    reported.step = step;
    cv1::GetCaseRequest get;
    get.set_case_id(case_id_);
    cv1::GetCaseResponse got;
    // Read as the team's supervisor, who may read the case at every step (before it is assigned too).
    const grpc::Status status = case_stub_->GetCase(As("sup-1", "supervisor").get(), get, &got);
    ASSERT_TRUE(status.ok()) << status.error_message();
    reported.state = got.case_();
    reported.overdue_task_ids.assign(got.overdue_task_ids().begin(), got.overdue_task_ids().end());
    for (const std::string& id : appointment_ids_) {
      sv1::GetAppointmentRequest request;
      request.set_appointment_id(id);
      sv1::GetAppointmentResponse response;
      const grpc::Status s = scheduling_stub_->GetAppointment(As("sup-1", "supervisor").get(),
                                                              request, &response);
      ASSERT_TRUE(s.ok()) << s.error_message();
      reported.appointments.push_back(response.appointment());
    }
    reported.at = absl::Now();
    history_.push_back(std::move(reported));
  }

  grpc::Status Replay(absl::Time at, av1::ReplayMode mode, av1::ReplayCaseResponse* response,
                      const std::string& role = "auditor", const std::string& tenant = kTenant) {
    av1::ReplayCaseRequest request;
    request.set_case_id(case_id_);
    *request.mutable_as_of() = Ts(at);
    request.set_mode(mode);
    return replay_stub_->ReplayCase(As("auditor-1", role, tenant).get(), request, response);
  }

  av1::ReplayCaseResponse MustReplay(absl::Time at, av1::ReplayMode mode) {
    av1::ReplayCaseResponse response;
    const grpc::Status status = Replay(at, mode, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  static void ExpectSameAs(const av1::ReplayCaseResponse& replayed, const Reported& reported,
                           const std::string& what) {
    EXPECT_TRUE(MessageDifferencer::Equals(replayed.case_(), reported.state))
        << what << " after step '" << reported.step << "':\n" << Diff(replayed.case_(), reported.state);
    EXPECT_EQ(std::vector<std::string>(replayed.overdue_task_ids().begin(),
                                       replayed.overdue_task_ids().end()),
              reported.overdue_task_ids)
        << what << " " << reported.step;
    ASSERT_EQ(replayed.appointments_size(), static_cast<int>(reported.appointments.size()))
        << what << " " << reported.step;
    for (size_t i = 0; i < reported.appointments.size(); ++i) {
      EXPECT_TRUE(MessageDifferencer::Equals(replayed.appointments(static_cast<int>(i)),
                                             reported.appointments[i]))
          << what << " " << reported.step << ":\n"
          << Diff(replayed.appointments(static_cast<int>(i)), reported.appointments[i]);
    }
  }

  static testing::ServiceProcess* cases_;
  static testing::ServiceProcess* scheduling_;
  static Subprocess* replay_;
  static std::string* replay_address_;
  std::unique_ptr<cv1::CaseService::Stub> case_stub_;
  std::unique_ptr<sv1::SchedulingService::Stub> scheduling_stub_;
  std::unique_ptr<av1::AuditReplayService::Stub> replay_stub_;
  std::string case_id_;
  std::vector<std::string> appointment_ids_;
  std::vector<Reported> history_;
};

testing::ServiceProcess* ReplayIntegrationTest::cases_ = nullptr;
testing::ServiceProcess* ReplayIntegrationTest::scheduling_ = nullptr;
Subprocess* ReplayIntegrationTest::replay_ = nullptr;
std::string* ReplayIntegrationTest::replay_address_ = nullptr;

cv1::RecordAssessmentRequest Phq9(std::vector<int32_t> answers, absl::Time administered) {
  cv1::RecordAssessmentRequest r;
  r.set_instrument(cv1::ASSESSMENT_INSTRUMENT_PHQ9);
  for (int32_t a : answers) r.add_responses(a);
  *r.mutable_occurred_at() = Ts(administered);
  return r;
}

TEST_F(ReplayIntegrationTest, CaseOverWeeksWithLateCorrectionEqualsWhatTheServicesReported) {
  using S = cv1::CaseService::Stub;
  const absl::Time start = absl::Now();
  const absl::Time opened_at = start - Days(35);

  // Week 0: the intake, entered late (paper intake during a downtime).
  case_id_ = Open(UniqueName("MRN"), opened_at);
  ASSERT_FALSE(case_id_.empty());
  ASSERT_NO_FATAL_FAILURE(Record("intake, occurred 35 days ago"));
  // Week 1: a home visit documented as it happened.
  cv1::AddNoteRequest note;
  note.set_kind(cv1::NOTE_KIND_CONTACT);
  note.set_channel(cv1::CONTACT_CHANNEL_HOME_VISIT);
  *note.mutable_occurred_at() = Ts(start - Days(28));
  note.set_text("home visit: lives alone, walking with frame");
  // Before the case is assigned, its team's supervisor works it.
  Do(&S::AddNote, note, "supervisor");
  ASSERT_NO_FATAL_FAILURE(Record("contact note, occurred 28 days ago"));
  // Week 2: a PHQ-9 with no symptoms.
  Do(&S::RecordAssessment, Phq9({0, 0, 0, 0, 0, 0, 0, 0, 0}, start - Days(21)), "supervisor");
  ASSERT_NO_FATAL_FAILURE(Record("PHQ-9 low, occurred 21 days ago"));
  // Today: assignment, care plan, goal, task, care team, consent, disclosure, appointment.
  cv1::AssignCaseRequest assign;
  assign.set_case_manager_id(kManager);
  Do(&S::AssignCase, assign, "supervisor");
  ASSERT_NO_FATAL_FAILURE(Record("assigned"));
  cv1::CreateCarePlanRequest plan;
  plan.set_title("Post-discharge stabilisation");
  plan.add_problems("heart failure self-management");
  plan.set_status(cv1::CARE_PLAN_STATUS_ACTIVE);
  Do(&S::CreateCarePlan, plan);
  ASSERT_NO_FATAL_FAILURE(Record("care plan"));
  cv1::AddGoalRequest goal;
  goal.set_description("daily weight log");
  goal.set_measure("days logged per week");
  goal.set_target_value("7");
  goal.set_target_date("2027-06-30");
  goal.set_priority(cv1::GOAL_PRIORITY_HIGH);
  goal.set_problem_id("problem-1");
  goal.set_lifecycle_status(cv1::GOAL_LIFECYCLE_STATUS_ACTIVE);
  const std::string goal_id = Do(&S::AddGoal, goal).goal_id();
  ASSERT_NO_FATAL_FAILURE(Record("goal"));
  cv1::AddCareTaskRequest task;
  task.set_description("deliver scales");
  task.set_goal_id(goal_id);
  task.set_owner_id(kManager);
  *task.mutable_due_at() = Ts(start + Days(3));
  task.set_priority(cv1::TASK_PRIORITY_URGENT);
  Do(&S::AddCareTask, task);
  ASSERT_NO_FATAL_FAILURE(Record("task"));
  cv1::AddCareTeamMemberRequest member;
  member.set_role(cv1::CARE_TEAM_ROLE_PROVIDER);
  member.set_name("Northside Home Health");
  member.set_organization("Northside Health System");
  const std::string member_id = Do(&S::AddCareTeamMember, member).member_id();
  cv1::RecordConsentRequest consent;
  consent.add_member_ids(member_id);
  consent.add_categories(cv1::INFORMATION_CATEGORY_CARE_PLAN);
  consent.add_purposes(cv1::CONSENT_PURPOSE_CARE_COORDINATION);
  consent.set_source(cv1::CONSENT_SOURCE_SIGNED_FORM);
  Do(&S::RecordConsent, consent);
  ASSERT_NO_FATAL_FAILURE(Record("care team and consent"));
  cv1::DiscloseInformationRequest disclose;
  disclose.set_member_id(member_id);
  disclose.add_categories(cv1::INFORMATION_CATEGORY_CARE_PLAN);
  disclose.set_purpose(cv1::CONSENT_PURPOSE_CARE_COORDINATION);
  Do(&S::DiscloseInformation, disclose);
  ASSERT_NO_FATAL_FAILURE(Record("disclosure"));
  {
    // The case manager's calendar, open around the clock (the test does not depend on the hour).
    sv1::CreateCalendarRequest calendar;
    calendar.set_command_id(UniqueName("cal"));
    calendar.set_owner_kind(sv1::CALENDAR_OWNER_KIND_CASE_MANAGER);
    calendar.set_owner_id(kManager);
    calendar.set_time_zone("America/New_York");
    for (int d = sv1::WEEKDAY_MONDAY; d <= sv1::WEEKDAY_SUNDAY; ++d) {
      sv1::WorkingHours* h = calendar.add_working_hours();
      h->set_weekday(static_cast<sv1::Weekday>(d));
      h->set_start_minute(0);
      h->set_end_minute(1440);
    }
    sv1::CreateCalendarResponse created;
    const grpc::Status status =
        scheduling_stub_->CreateCalendar(As(kManager, "case_manager").get(), calendar, &created);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  {
    // A phone follow-up a little over a day ahead (no reminder due yet), booked in scheduling,
    // which learns about the case from the case topic.
    sv1::BookAppointmentRequest book;
    book.set_command_id(UniqueName("book"));
    book.set_case_id(case_id_);
    book.set_type(sv1::APPOINTMENT_TYPE_PHONE_FOLLOW_UP);
    *book.mutable_start_time() =
        Ts(absl::FromUnixSeconds((absl::ToUnixSeconds(start) / 3600 + 30) * 3600));
    book.mutable_duration()->set_seconds(3600);
    book.set_time_zone("America/New_York");
    sv1::BookAppointmentResponse booked;
    const grpc::Status status =
        scheduling_stub_->BookAppointment(As(kManager, "case_manager").get(), book, &booked);
    ASSERT_TRUE(status.ok()) << status.error_message();
    appointment_ids_.push_back(booked.appointment_id());
  }
  ASSERT_NO_FATAL_FAILURE(Record("appointment booked"));
  // The late-recorded correction: a PHQ-9 administered 14 days ago at a home visit (item 9
  // positive: high risk), entered only now.
  Do(&S::RecordAssessment, Phq9({2, 2, 2, 1, 1, 2, 1, 1, 1}, start - Days(14)));
  ASSERT_NO_FATAL_FAILURE(Record("late-recorded PHQ-9, occurred 14 days ago"));
  ASSERT_EQ(history_.size(), 11u);
  const Reported& last = history_.back();
  ASSERT_EQ(last.state.risk_level(), cv1::RISK_LEVEL_HIGH);
  ASSERT_EQ(last.state.assessments_size(), 2);

  // 1. As it was known then: at every instant, exactly what the services reported.
  for (const Reported& reported : history_) {
    const av1::ReplayCaseResponse replayed = MustReplay(reported.at, av1::REPLAY_MODE_RECORDED_AT);
    ASSERT_NO_FATAL_FAILURE(ExpectSameAs(replayed, reported, "RECORDED_AT"));
    EXPECT_EQ(replayed.events_folded(), reported.state.version());
    EXPECT_TRUE(replayed.late_recorded_events().empty());
    EXPECT_EQ(replayed.events_folded() + replayed.events_left_out(), last.state.version());
  }

  // 2. As it was, weeks back: the states the case had then, which the service reported
  // right after those facts were entered.
  const std::vector<std::pair<absl::Time, size_t>> back = {
      {start - Days(30), 0}, {start - Days(25), 1}, {start - Days(18), 2}};
  for (const auto& [at, index] : back) {
    const av1::ReplayCaseResponse replayed = MustReplay(at, av1::REPLAY_MODE_OCCURRED_AT);
    ASSERT_NO_FATAL_FAILURE(ExpectSameAs(replayed, history_[index], "OCCURRED_AT weeks back"));
    EXPECT_TRUE(replayed.appointments().empty());
  }
  // Before the intake had happened there is no case in either mode; 10 days ago the case
  // existed in the world but the platform did not know it yet.
  av1::ReplayCaseResponse none;
  EXPECT_EQ(Replay(opened_at - absl::Seconds(1), av1::REPLAY_MODE_OCCURRED_AT, &none).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Replay(start - Days(10), av1::REPLAY_MODE_RECORDED_AT, &none).error_code(),
            grpc::StatusCode::NOT_FOUND);
  {
    const av1::ReplayCaseResponse ten_days = MustReplay(start - Days(10), av1::REPLAY_MODE_OCCURRED_AT);
    ASSERT_EQ(ten_days.case_().assessments_size(), 2);
    EXPECT_EQ(ten_days.case_().risk_level(), cv1::RISK_LEVEL_HIGH);
    EXPECT_TRUE(ten_days.case_().care_plan().title().empty());
    EXPECT_EQ(ten_days.case_().assessments(1).administered_at().seconds(),
              absl::ToUnixSeconds(start - Days(14)));
  }

  // 3. Where the modes differ: every instant before the correction was entered. As known
  // then: low risk, one assessment (what the service said). As it was: the high-risk
  // assessment had already happened; it is folded and named as recorded later.
  for (size_t i = 2; i + 1 < history_.size(); ++i) {
    const Reported& reported = history_[i];
    const av1::ReplayCaseResponse known = MustReplay(reported.at, av1::REPLAY_MODE_RECORDED_AT);
    const av1::ReplayCaseResponse was = MustReplay(reported.at, av1::REPLAY_MODE_OCCURRED_AT);
    EXPECT_NE(known.case_().risk_level(), cv1::RISK_LEVEL_HIGH) << reported.step;
    EXPECT_EQ(known.case_().assessments_size(), 1) << reported.step;
    EXPECT_EQ(was.case_().risk_level(), cv1::RISK_LEVEL_HIGH) << reported.step;
    ASSERT_EQ(was.case_().assessments_size(), 2) << reported.step;
    EXPECT_TRUE(MessageDifferencer::Equals(was.case_().assessments(1), last.state.assessments(1)));
    EXPECT_EQ(was.events_folded(), known.events_folded() + 2) << reported.step;
    std::vector<std::string> late;
    for (const auto& e : was.late_recorded_events()) {
      late.push_back(e.event_type());
      EXPECT_EQ(e.occurred_at().seconds(), absl::ToUnixSeconds(start - Days(14)));
      EXPECT_GT(TimeUtil::TimestampToNanoseconds(e.recorded_at()), absl::ToUnixNanos(reported.at));
    }
    EXPECT_EQ(late, (std::vector<std::string>{"clinical.case.v1.AssessmentRecorded",
                                              "clinical.case.v1.HighRiskIdentified"}))
        << reported.step;
    // Everything else is the same in both modes: the care plan, tasks, team, appointments.
    EXPECT_TRUE(MessageDifferencer::Equals(was.case_().care_plan(), known.case_().care_plan()));
    EXPECT_TRUE(MessageDifferencer::Equals(was.case_().status_history(0), known.case_().status_history(0)));
    EXPECT_EQ(was.appointments_size(), known.appointments_size());
  }

  // 4. Now both modes agree with the services.
  const absl::Time now = absl::Now();
  const av1::ReplayCaseResponse known_now = MustReplay(now, av1::REPLAY_MODE_RECORDED_AT);
  const av1::ReplayCaseResponse was_now = MustReplay(now, av1::REPLAY_MODE_OCCURRED_AT);
  ASSERT_NO_FATAL_FAILURE(ExpectSameAs(known_now, last, "RECORDED_AT now"));
  ASSERT_NO_FATAL_FAILURE(ExpectSameAs(was_now, last, "OCCURRED_AT now"));
  EXPECT_EQ(known_now.appointment_events_folded(), 1);
  EXPECT_EQ(known_now.last_event_position().partition(), was_now.last_event_position().partition());
  EXPECT_FALSE(known_now.last_event_id().empty());
}

TEST_F(ReplayIntegrationTest, AccountingOfDisclosuresPerCaseAndPatient) {
  using S = cv1::CaseService::Stub;
  const std::string mrn = UniqueName("MRN");
  case_id_ = Open(mrn, std::nullopt);
  ASSERT_FALSE(case_id_.empty());
  cv1::AssignCaseRequest assign;
  assign.set_case_manager_id(kManager);
  Do(&S::AssignCase, assign, "supervisor");
  cv1::AddCareTeamMemberRequest member;
  member.set_role(cv1::CARE_TEAM_ROLE_PAYER);
  member.set_name("Example Medicare Advantage");
  member.set_organization("Example Health Plan");
  member.mutable_coverage()->set_plan_name("MA Gold");
  member.mutable_coverage()->set_member_id("W123456789");
  const std::string payer = Do(&S::AddCareTeamMember, member).member_id();
  cv1::RecordConsentRequest consent;
  consent.add_member_ids(payer);
  consent.add_categories(cv1::INFORMATION_CATEGORY_CLINICAL);
  consent.add_purposes(cv1::CONSENT_PURPOSE_PAYMENT);
  consent.set_source(cv1::CONSENT_SOURCE_ELECTRONIC);
  const std::string consent_id = Do(&S::RecordConsent, consent).consent_id();
  cv1::DiscloseInformationRequest disclose;
  disclose.set_member_id(payer);
  disclose.add_categories(cv1::INFORMATION_CATEGORY_CLINICAL);
  disclose.set_purpose(cv1::CONSENT_PURPOSE_PAYMENT);
  Do(&S::DiscloseInformation, disclose);
  // Beyond the consent (another category): only with an override reason, which is recorded.
  disclose.clear_categories();
  disclose.add_categories(cv1::INFORMATION_CATEGORY_BEHAVIORAL_HEALTH);
  disclose.mutable_consent_override()->set_reason("court order 2026-114");
  Do(&S::DiscloseInformation, disclose, "supervisor");
  // A second case of the same patient, with its own disclosure.
  const std::string first_case = case_id_;
  case_id_ = Open(mrn, std::nullopt);
  Do(&S::AssignCase, assign, "supervisor");
  member.Clear();
  member.set_role(cv1::CARE_TEAM_ROLE_FAMILY);
  member.set_name("Daughter");
  member.set_relationship("daughter");
  const std::string daughter = Do(&S::AddCareTeamMember, member).member_id();
  disclose.Clear();
  disclose.set_member_id(daughter);
  disclose.add_categories(cv1::INFORMATION_CATEGORY_CARE_PLAN);
  disclose.set_purpose(cv1::CONSENT_PURPOSE_CARE_COORDINATION);
  disclose.mutable_consent_override()->set_reason("patient asked by phone; form to follow");
  Do(&S::DiscloseInformation, disclose, "supervisor");

  // Per case.
  av1::ListDisclosuresRequest by_case;
  by_case.set_case_id(first_case);
  av1::ListDisclosuresResponse listed;
  grpc::Status status = replay_stub_->ListDisclosures(As("po-1", "privacy_officer").get(), by_case, &listed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(listed.disclosures_size(), 2);
  const av1::DisclosureEntry& paid = listed.disclosures(0);
  EXPECT_EQ(paid.case_id(), first_case);
  EXPECT_EQ(paid.recipient_member_id(), payer);
  EXPECT_EQ(paid.recipient_name(), "Example Medicare Advantage");
  EXPECT_EQ(paid.recipient_organization(), "Example Health Plan");
  EXPECT_EQ(paid.recipient_role(), cv1::CARE_TEAM_ROLE_PAYER);
  EXPECT_EQ(paid.purpose(), cv1::CONSENT_PURPOSE_PAYMENT);
  EXPECT_EQ(paid.consent_id(), consent_id);
  EXPECT_EQ(paid.description(), absl::StrCat("Disclosed clinical information for payment; under consent ", consent_id));
  EXPECT_EQ(paid.disclosed_by(), kManager);
  EXPECT_LE(std::abs(paid.disclosed_at().seconds() - absl::ToUnixSeconds(absl::Now())), 120);
  const av1::DisclosureEntry& ordered = listed.disclosures(1);
  EXPECT_EQ(ordered.consent_override_reason(), "court order 2026-114");
  EXPECT_EQ(ordered.categories(0), cv1::INFORMATION_CATEGORY_BEHAVIORAL_HEALTH);
  EXPECT_EQ(ordered.disclosed_by(), "sup-1");
  // Six years back by default.
  EXPECT_EQ(listed.end_time().seconds() - listed.start_time().seconds() >= 6 * 365 * 86400, true);
  EXPECT_LE(listed.end_time().seconds() - listed.start_time().seconds(), 6 * 366 * 86400);

  // Per patient, both cases, a page at a time.
  av1::ListDisclosuresRequest by_patient;
  by_patient.set_patient_mrn(mrn);
  by_patient.set_page_size(2);
  std::vector<std::string> seen;
  for (int page = 0; page < 5; ++page) {
    status = replay_stub_->ListDisclosures(As("auditor-1", "auditor").get(), by_patient, &listed);
    ASSERT_TRUE(status.ok()) << status.error_message();
    for (const auto& d : listed.disclosures()) seen.push_back(absl::StrCat(d.case_id(), "/", d.recipient_name()));
    if (listed.next_page_token().empty()) break;
    by_patient.set_page_token(listed.next_page_token());
  }
  EXPECT_EQ(seen, (std::vector<std::string>{absl::StrCat(first_case, "/Example Medicare Advantage"),
                                            absl::StrCat(first_case, "/Example Medicare Advantage"),
                                            absl::StrCat(case_id_, "/Daughter")}));

  // Who may ask, and what is refused.
  status = replay_stub_->ListDisclosures(As(kManager, "case_manager").get(), by_case, &listed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  status = replay_stub_->ListDisclosures(As("", "auditor").get(), by_case, &listed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  status = replay_stub_->ListDisclosures(As("auditor-9", "auditor", "another-tenant").get(), by_case, &listed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  av1::ListDisclosuresRequest bad;
  bad.set_page_size(1000);
  status = replay_stub_->ListDisclosures(As("auditor-1", "auditor").get(), bad, &listed);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(FieldsOf(status), (std::vector<std::string>{"case_id", "page_size"}));
  av1::ReplayCaseRequest bad_replay;
  bad_replay.set_case_id(first_case);
  *bad_replay.mutable_as_of() = Ts(absl::Now() + absl::Hours(1));
  av1::ReplayCaseResponse replayed;
  status = replay_stub_->ReplayCase(As("auditor-1", "auditor").get(), bad_replay, &replayed);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(FieldsOf(status), (std::vector<std::string>{"as_of", "mode"}));
  // The case service refuses a back-dated fact from the future or from long ago.
  cv1::RecordAssessmentRequest future = Phq9({0, 0, 0, 0, 0, 0, 0, 0, 0}, absl::Now() + absl::Hours(1));
  future.set_case_id(case_id_);
  future.set_command_id(UniqueName("cmd"));
  cv1::RecordAssessmentResponse assessed;
  status = case_stub_->RecordAssessment(As(kManager, "case_manager").get(), future, &assessed);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(FieldsOf(status), std::vector<std::string>{"occurred_at"});
  *future.mutable_occurred_at() = Ts(absl::Now() - Days(91));
  status = case_stub_->RecordAssessment(As(kManager, "case_manager").get(), future, &assessed);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(FieldsOf(status), std::vector<std::string>{"occurred_at"});
}

}  // namespace
}  // namespace clinical::audit::replay

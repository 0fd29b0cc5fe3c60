// The views service as a real process next to the case service (both real processes, real
// Kafka and redis-server), driven over gRPC: a command's position passed to a query shows
// its effect; identity, tenancy and validation at the edge; SIGKILL during a load and
// restart equals a fresh rebuild key by key; a rebuild under query load serves without
// errors and switches atomically (never back).
#include <signal.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include <fstream>

#include "clinical/case/v1/case_service.grpc.pb.h"
#include "clinical/scheduling/v1/scheduling_service.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "clinical/kafka/admin.h"
#include "clinical/projection/versions.h"
#include "clinical/redis/connection.h"
#include "clinical/testing/identity.h"
#include "clinical/testing/organisation.h"
#include "clinical/testing/service_process.h"
#include "clinical/testing/grpc_status.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/service_process.h"
#include "clinical/testing/subprocess.h"
#include "clinical/testing/wait.h"
#include "clinical/relations/testing/case_service_log.h"
#include "clinical/views/v1/views_service.grpc.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace clinical::views {
namespace {

namespace cv1 = ::clinical::case_::v1;
namespace vv1 = ::clinical::views::v1;
namespace sv1 = ::clinical::scheduling::v1;
using ::clinical::testing::Platform;
using ::clinical::testing::FieldsOf;
using ::clinical::testing::Subprocess;
using ::clinical::testing::UniqueName;

int ListeningPort(const std::string& line) {
  auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || parsed.value("msg", "") != "listening") return 0;
  return parsed.value("port", 0);
}

// A service binary as a child process with its gRPC channel, running as `service`'s
// principal (testing::ServiceEnvironment).
class Process {
 public:
  Process(std::vector<std::string> argv, std::string service)
      : argv_(std::move(argv)), service_(std::move(service)) {}
  void Start() {
    auto process = Subprocess::Start(argv_, testing::ServiceEnvironment(service_));
    ASSERT_TRUE(process.ok()) << process.status();
    process_ = std::move(*process);
    auto line = process_->WaitForLine([](const std::string& l) { return ListeningPort(l) > 0; },
                                      absl::Seconds(90));
    ASSERT_TRUE(line.has_value()) << absl::StrJoin(process_->Lines(), "\n");
    channel_ = testing::SecureChannel(absl::StrCat("127.0.0.1:", ListeningPort(*line)));
  }
  void Kill() {
    process_->Signal(SIGKILL);
    ASSERT_TRUE(process_->Wait(absl::Seconds(10)).has_value());
  }
  void Stop() {
    process_->Signal(SIGTERM);
    auto status = process_->Wait(absl::Seconds(30));
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << absl::StrJoin(process_->Lines(), "\n");
  }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  std::vector<std::string> argv_;
  std::string service_;
  std::unique_ptr<Subprocess> process_;
  std::shared_ptr<grpc::Channel> channel_;
};

// Test topics follow the ACLs' naming: a case topic "clinical.case.<name>" goes with the
// scheduling topic "clinical.scheduling.<name>".
std::string SchedulingTopicFor(const std::string& case_topic) {
  return "clinical.scheduling." + case_topic.substr(std::string("clinical.case.").size());
}

Process CaseService(const std::string& topic) {
  return Process({testing::BinaryPath("services/case/case_service"), "--grpc-port=0",
                  "--shutdown-grace=5s", "--case-topic-partitions=3", "--case-topic=" + topic,
                  "--writer-id=" + UniqueName("case-service.views-test"),
                  // Its own organisation (Cases sets it up through the API); the views read
                  // theirs from OrganisationTopicFor(topic).
                  "--organisation-topic=" + UniqueName("clinical.case.organisation.views-test")},
                 "case");
}

Process SchedulingService(const std::string& topic, const std::string& case_topic) {
  return Process({testing::BinaryPath("services/scheduling/scheduling_service"), "--grpc-port=0",
                  "--shutdown-grace=5s", "--scheduling-topic=" + topic,
                  "--scheduling-topic-partitions=3", "--case-topic=" + case_topic,
                  "--writer-id=" + UniqueName("scheduling-service.views-test")},
                 "scheduling");
}

// The case managers of these tests, all in sup-1's team.
std::vector<std::string> TeamMembers() {
  std::vector<std::string> managers = {"cm-sched"};
  for (int i = 0; i < 10; ++i) managers.push_back(absl::StrCat("cm-", i));
  return managers;
}

// The case service's organisation topic that goes with a test's case topic.
std::string OrganisationTopicFor(const std::string& case_topic) {
  return "clinical.case.organisation-" + case_topic.substr(std::string("clinical.case.").size());
}

// The views over the case topic `topic` and its scheduling topic. The views never create
// the topics they read; the harness makes both as their writers would (3 partitions), so a
// test need not start a scheduling service.
Process ViewsService(const std::string& topic, const std::string& root, const std::string& version,
                     std::vector<std::string> extra = {}) {
  kafka::TopicSpec case_spec, scheduling_spec;
  case_spec.name = topic;
  scheduling_spec.name = SchedulingTopicFor(topic);
  case_spec.partitions = scheduling_spec.partitions = 3;
  EXPECT_TRUE(kafka::EnsureTopics(Platform::Get().kafka_admin, {case_spec, scheduling_spec},
                                  absl::Seconds(30)).ok());
  // Who supervises whom (GetCaseload/GetWorklist of another case manager: SUPERVISES) comes
  // from the case service's organisation topic; written here as the case service writes it:
  // sup-1 supervises every case manager of these tests.
  const std::string organisation_topic = OrganisationTopicFor(topic);
  {
    auto organisation = relations::testing::CaseServiceLog::Create(topic, organisation_topic);
    organisation->SetTeam("tenant-a", "views-team", {"sup-1"}, TeamMembers());
  }
  std::vector<std::string> argv = {
      testing::BinaryPath("services/views/views_service"), "--grpc-port=0", "--shutdown-grace=5s",
      "--case-topic=" + topic, "--scheduling-topic=" + scheduling_spec.name,
      "--organisation-topic=" + organisation_topic, "--view-root=" + root, "--view-version=" + version};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return Process(std::move(argv), "views");
}

struct Who {
  std::string user = "sup-1";
  std::string role = "supervisor";
  std::string tenant = "tenant-a";
};

std::unique_ptr<grpc::ClientContext> Context(const Who& who, absl::Duration timeout = absl::Seconds(30)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  testing::Authenticate(*context, {who.user, who.role, who.tenant});
  return context;
}

// Case commands through the real case service; each returns the command's log position.
class Cases {
 public:
  // The case service's organisation: sup-1 supervises team-north, the team of every case
  // these tests open, so the supervisor's commands are allowed (team supervisor).
  explicit Cases(std::shared_ptr<grpc::Channel> channel) : stub_(cv1::CaseService::NewStub(channel)) {
    const absl::Status configured = testing::ConfigureOrganisationThroughApi(
        *stub_, {.tenant = "tenant-a",
                 .administrator = "admin-views",
                 .privacy_officer_ids = {"privacy-views"},
                 .emergency_access_max_minutes = 0,
                 .teams = {{.team_id = "team-north", .name = "North", .supervisor_ids = {"sup-1"},
                            .member_ids = TeamMembers()}}});
    EXPECT_TRUE(configured.ok()) << configured;
  }

  std::pair<std::string, common::v1::LogPosition> Open(const std::string& tag, int acuity,
                                                      const Who& who = {"intake-1", "case_manager", "tenant-a"}) {
    cv1::OpenCaseRequest r;
    r.set_command_id(UniqueName(tag));
    r.mutable_patient()->set_mrn("MRN-1");
    r.mutable_patient()->set_given_name("Test");
    r.mutable_patient()->set_family_name("Patient");
    r.mutable_patient()->set_birth_date("1950-01-01");
    r.set_program("elder_care");
    r.set_priority(2);
    r.set_acuity(acuity);
    r.mutable_referral()->set_source(cv1::REFERRAL_SOURCE_HOSPITAL);
    r.mutable_referral()->set_reason("discharge");
    r.set_initial_status(cv1::CASE_STATUS_ACTIVE);
    r.set_team_id("team-north");
    cv1::OpenCaseResponse response;
    auto status = stub_->OpenCase(Context(who).get(), r, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.case_id(), response.position()};
  }
  common::v1::LogPosition Assign(const std::string& case_id, const std::string& cm,
                                 const std::string& tenant = "tenant-a") {
    cv1::AssignCaseRequest r;
    r.set_case_id(case_id);
    r.set_command_id(UniqueName("assign"));
    r.set_case_manager_id(cm);
    cv1::AssignCaseResponse response;
    auto status = stub_->AssignCase(Context({"sup-1", "supervisor", tenant}).get(), r, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.position();
  }
  common::v1::LogPosition Accept(const std::string& case_id, const std::string& cm) {
    cv1::AcceptAssignmentRequest r;
    r.set_case_id(case_id);
    r.set_command_id(UniqueName("accept"));
    cv1::AcceptAssignmentResponse response;
    auto status = stub_->AcceptAssignment(Context({cm, "case_manager", "tenant-a"}).get(), r, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.position();
  }
  common::v1::LogPosition Contact(const std::string& case_id, const std::string& cm) {
    cv1::AddNoteRequest r;
    r.set_case_id(case_id);
    r.set_command_id(UniqueName("note"));
    r.set_kind(cv1::NOTE_KIND_CONTACT);
    r.set_channel(cv1::CONTACT_CHANNEL_PHONE);
    r.set_text("called");
    r.set_duration_minutes(20);
    cv1::AddNoteResponse response;
    auto status = stub_->AddNote(Context({cm, "case_manager", "tenant-a"}).get(), r, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.position();
  }
  common::v1::LogPosition Close(const std::string& case_id, const std::string& cm) {
    cv1::RequestClosureRequest r;
    r.set_case_id(case_id);
    r.set_command_id(UniqueName("close"));
    r.set_reason(cv1::CLOSURE_REASON_GOALS_MET);
    r.set_outcome_summary("stable at home");
    r.set_satisfaction(cv1::SATISFACTION_SATISFIED);
    cv1::RequestClosureResponse response;
    auto status = stub_->RequestClosure(Context({cm, "case_manager", "tenant-a"}).get(), r, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    cv1::ApproveClosureRequest a;
    a.set_case_id(case_id);
    a.set_command_id(UniqueName("approve"));
    a.set_comment("approved");
    cv1::ApproveClosureResponse approved;
    status = stub_->ApproveClosure(Context({"sup-1", "supervisor", "tenant-a"}).get(), a, &approved);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return approved.position();
  }

 cv1::CaseService::Stub* stub() { return stub_.get(); }

 private:
  std::unique_ptr<cv1::CaseService::Stub> stub_;
};

// Runs one case command through the stub (method pointer), expecting OK; returns its position.
template <typename Request, typename Response>
common::v1::LogPosition CaseCommand(cv1::CaseService::Stub* stub,
                            grpc::Status (cv1::CaseService::Stub::*method)(grpc::ClientContext*,
                                                                           const Request&, Response*),
                            Request request, const std::string& case_id, Response* out = nullptr) {
  request.set_case_id(case_id);
  request.set_command_id(UniqueName("cmd"));
  Response response;
  auto status = (stub->*method)(Context({"sup-1", "supervisor", "tenant-a"}).get(), request, &response);
  EXPECT_TRUE(status.ok()) << Request::descriptor()->name() << ": " << status.error_message() << " "
                           << absl::StrJoin(FieldsOf(status), ",");
  if (out != nullptr) *out = response;
  return response.position();
}

google::protobuf::Timestamp Ts(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

std::string Day(absl::Time t) { return absl::FormatTime("%Y-%m-%d", t, absl::UTCTimeZone()); }

TEST(ViewsServiceTest, CommandPositionPassedToQueryShowsItsEffect) {
  const std::string topic = UniqueName("clinical.case.views-test");
  const std::string root = UniqueName("views.test");
  Process case_service = CaseService(topic);
  ASSERT_NO_FATAL_FAILURE(case_service.Start());
  Process views = ViewsService(topic, root, "v1");
  ASSERT_NO_FATAL_FAILURE(views.Start());
  Cases cases(case_service.channel());
  auto stub = vv1::ViewsService::NewStub(views.channel());

  // Each command's position, passed to the query, makes its effect visible at once.
  auto [case_id, opened] = cases.Open("open", 3);
  const auto assigned = cases.Assign(case_id, "cm-7");
  vv1::GetCaseloadRequest caseload;
  caseload.set_case_manager_id("cm-7");
  *caseload.add_min_positions() = assigned;
  vv1::GetCaseloadResponse got;
  auto status = stub->GetCaseload(Context({}).get(), caseload, &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(got.cases_size(), 1);
  EXPECT_EQ(got.cases(0).case_id(), case_id);
  EXPECT_FALSE(got.cases(0).assignment_accepted());
  EXPECT_EQ(got.counters().open_cases(), 1);
  EXPECT_EQ(got.counters().acuity_load(), 3);
  EXPECT_EQ(got.counters().unaccepted_assignments(), 1);
  EXPECT_EQ(got.counters().by_status().at("CASE_STATUS_ACTIVE"), 1);
  EXPECT_EQ(got.view_version(), "v1");

  const auto accepted = cases.Accept(case_id, "cm-7");
  vv1::GetWorklistRequest worklist;
  worklist.set_case_manager_id("cm-7");
  *worklist.add_min_positions() = accepted;
  vv1::GetWorklistResponse items;
  status = stub->GetWorklist(Context({"cm-7", "case_manager", "tenant-a"}).get(), worklist, &items);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(items.items_size(), 1);
  EXPECT_TRUE(items.items(0).summary().assignment_accepted());
  EXPECT_FALSE(items.items(0).summary().has_last_contact_at());

  const auto contacted = cases.Contact(case_id, "cm-7");
  *worklist.mutable_min_positions(0) = contacted;
  status = stub->GetWorklist(Context({"cm-7", "case_manager", "tenant-a"}).get(), worklist, &items);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(items.items_size(), 1);
  EXPECT_TRUE(items.items(0).summary().has_last_contact_at());

  // Balancing sees the load: 3 of 60 taken.
  vv1::SuggestCaseManagersRequest suggest;
  suggest.set_program("elder_care");
  suggest.set_acuity(5);
  vv1::SuggestCaseManagersResponse suggested;
  status = stub->SuggestCaseManagers(Context({}).get(), suggest, &suggested);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(suggested.candidates_size(), 1);
  EXPECT_EQ(suggested.candidates(0).case_manager_id(), "cm-7");
  EXPECT_EQ(suggested.candidates(0).acuity_load(), 3);
  EXPECT_EQ(suggested.candidates(0).caseload_limit(), 60);

  // Closure (elder_care needs approval): the outcome view of this month shows it.
  const auto closed = cases.Close(case_id, "cm-7");
  vv1::GetOutcomesRequest outcomes;
  outcomes.set_dimension(vv1::DIMENSION_CASE_MANAGER);
  outcomes.set_group_id("cm-7");
  outcomes.set_period_kind(vv1::PERIOD_KIND_MONTH);
  outcomes.mutable_period_at()->set_seconds(absl::ToUnixSeconds(absl::Now()));
  *outcomes.add_min_positions() = closed;
  vv1::GetOutcomesResponse figures;
  status = stub->GetOutcomes(Context({}).get(), outcomes, &figures);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(figures.cases_assigned(), 1);
  EXPECT_EQ(figures.cases_closed(), 1);
  EXPECT_EQ(figures.closure_reasons().at("CLOSURE_REASON_GOALS_MET"), 1);
  EXPECT_DOUBLE_EQ(figures.goals_met_closure_rate(), 1.0);
  EXPECT_DOUBLE_EQ(figures.mean_satisfaction(), 4.0);
  EXPECT_EQ(figures.first_contacts(), 1);
  EXPECT_EQ(figures.contact_minutes(), 20);
  EXPECT_TRUE(figures.has_median_days_to_close());
  outcomes.set_dimension(vv1::DIMENSION_TENANT);
  outcomes.clear_group_id();
  status = stub->GetOutcomes(Context({}).get(), outcomes, &figures);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(figures.cases_opened(), 1);

  *caseload.mutable_min_positions(0) = closed;
  status = stub->GetCaseload(Context({}).get(), caseload, &got);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(got.cases_size(), 0);
  EXPECT_EQ(got.counters().open_cases(), 0);

  // Tenancy: another tenant's supervisor sees nothing of tenant-a.
  vv1::ListRollupsRequest rollups;
  rollups.set_dimension(vv1::DIMENSION_CASE_MANAGER);
  vv1::ListRollupsResponse listed;
  status = stub->ListRollups(Context({"sup-9", "supervisor", "tenant-b"}).get(), rollups, &listed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(listed.rollups_size(), 0);
  status = stub->ListRollups(Context({}).get(), rollups, &listed);
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(listed.rollups_size(), 1);
  EXPECT_EQ(listed.rollups(0).group_id(), "cm-7");
  status = stub->GetOutcomes(Context({"sup-9", "supervisor", "tenant-b"}).get(), outcomes, &figures);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(figures.cases_opened(), 0);
  EXPECT_EQ(figures.cases_closed(), 0);

  // Identity and roles.
  status = stub->GetCaseload(Context({"cm-8", "case_manager", "tenant-a"}).get(), caseload, &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  status = stub->ListRollups(Context({"cm-7", "case_manager", "tenant-a"}).get(), rollups, &listed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  {
    grpc::ClientContext anonymous;
    status = stub->GetCaseload(&anonymous, caseload, &got);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }

  // Validation: every bad field at once, as google.rpc.BadRequest.
  vv1::GetOutcomesRequest bad;
  bad.set_dimension(vv1::DIMENSION_TEAM);
  status = stub->GetOutcomes(Context({}).get(), bad, &figures);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const auto fields = FieldsOf(status);
  EXPECT_EQ(std::set<std::string>(fields.begin(), fields.end()),
            (std::set<std::string>{"group_id", "period_kind", "period_at"}));
  vv1::GetCaseloadRequest wrong_topic = caseload;
  wrong_topic.mutable_min_positions(0)->set_topic("clinical.other.events.v1");
  status = stub->GetCaseload(Context({}).get(), wrong_topic, &got);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(FieldsOf(status), std::vector<std::string>{"min_positions[0].topic"});

  // A position the view cannot reach: bounded by the call's deadline.
  vv1::GetCaseloadRequest future = caseload;
  future.mutable_min_positions(0)->set_offset(1'000'000'000);
  const absl::Time asked = absl::Now();
  status = stub->GetCaseload(Context({}, absl::Seconds(2)).get(), future, &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(absl::Now() - asked, absl::Seconds(10));

  views.Stop();
  case_service.Stop();
}

// Issue #7's scheduling and care figures end to end: the case, scheduling and views
// services as real processes. Each command's position (case topic or scheduling topic),
// passed to a query, shows its effect: next appointment, overdue task, goals overdue / due
// soon in the caseload and worklist; kept / no-show, goal achievement and cost in the
// outcomes; the supervisor rollup from the organisation topic.
TEST(ViewsServiceTest, SchedulingAndCareFiguresAtTheirPositions) {
  const std::string topic = UniqueName("clinical.case.views-sched");
  const std::string root = UniqueName("views.sched");
  Process case_service = CaseService(topic);
  ASSERT_NO_FATAL_FAILURE(case_service.Start());
  Process scheduling = SchedulingService(SchedulingTopicFor(topic), topic);
  ASSERT_NO_FATAL_FAILURE(scheduling.Start());
  Process views = ViewsService(topic, root, "v1", {"--goal-due-soon-days=7"});
  // Besides the harness's team of sup-1: sup-n leads two teams, sup-e one.
  {
    auto organisation = relations::testing::CaseServiceLog::Create(topic, OrganisationTopicFor(topic));
    organisation->SetTeam("tenant-a", "team-north", {"sup-n"}, {});
    organisation->SetTeam("tenant-a", "team-south", {"sup-n"}, {});
    organisation->SetTeam("tenant-a", "team-east", {"sup-e"}, {});
  }
  ASSERT_NO_FATAL_FAILURE(views.Start());
  Cases cases(case_service.channel());
  auto stub = vv1::ViewsService::NewStub(views.channel());
  auto booking = sv1::SchedulingService::NewStub(scheduling.channel());
  const std::string cm = "cm-sched";
  const Who manager{cm, "case_manager", "tenant-a"};

  auto [case_id, opened] = cases.Open("open", 2);
  cases.Assign(case_id, cm);
  cases.Accept(case_id, cm);
  cv1::CreateCarePlanRequest plan;
  plan.set_title("plan");
  plan.add_problems("needs");
  plan.set_status(cv1::CARE_PLAN_STATUS_ACTIVE);
  CaseCommand(cases.stub(), &cv1::CaseService::Stub::CreateCarePlan, plan, case_id);
  cv1::AddGoalRequest goal;
  goal.set_description("walk daily");
  goal.set_measure("days");
  goal.set_target_value("7");
  goal.set_lifecycle_status(cv1::GOAL_LIFECYCLE_STATUS_ACTIVE);
  goal.set_target_date(Day(absl::Now() + absl::Hours(72)));  // due soon (7-day horizon)
  CaseCommand(cases.stub(), &cv1::CaseService::Stub::AddGoal, goal, case_id);
  goal.set_target_date("2020-01-31");  // long past: overdue
  CaseCommand(cases.stub(), &cv1::CaseService::Stub::AddGoal, goal, case_id);
  cv1::AddCareTaskRequest task;
  task.set_description("call the pharmacy");
  task.set_owner_id(cm);
  const absl::Time task_due = absl::Now() + absl::Seconds(3);
  *task.mutable_due_at() = Ts(task_due);
  const auto tasked = CaseCommand(cases.stub(), &cv1::CaseService::Stub::AddCareTask, task, case_id);

  // Appointments: A starts in 2 s (a no-show once started), B in 30 min (fulfilled: allowed
  // from an hour before), C tomorrow (the next one).
  sv1::CreateCalendarRequest calendar;
  calendar.set_command_id(UniqueName("cal"));
  calendar.set_owner_kind(sv1::CALENDAR_OWNER_KIND_CASE_MANAGER);
  calendar.set_owner_id(cm);
  calendar.set_time_zone("UTC");
  for (int d = sv1::WEEKDAY_MONDAY; d <= sv1::WEEKDAY_SUNDAY; ++d) {
    sv1::WorkingHours* h = calendar.add_working_hours();
    h->set_weekday(static_cast<sv1::Weekday>(d));
    h->set_start_minute(0);
    h->set_end_minute(1440);
  }
  sv1::CreateCalendarResponse calendar_created;
  auto status = booking->CreateCalendar(Context(manager).get(), calendar, &calendar_created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  auto book = [&](absl::Time start) {
    sv1::BookAppointmentRequest r;
    r.set_command_id(UniqueName("book"));
    r.set_case_id(case_id);
    r.set_type(sv1::APPOINTMENT_TYPE_PHONE_FOLLOW_UP);
    *r.mutable_start_time() = Ts(start);
    r.mutable_duration()->set_seconds(600);
    r.set_time_zone("UTC");
    sv1::BookAppointmentResponse response;
    auto s = booking->BookAppointment(Context(manager).get(), r, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  };
  const absl::Time a_start = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now() + absl::Seconds(2)));
  const absl::Time b_start = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now() + absl::Minutes(30)));
  const absl::Time c_start = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now() + absl::Hours(26)));
  const auto a = book(a_start);
  const auto b = book(b_start);
  const auto c = book(c_start);
  sv1::UpdateAppointmentStatusRequest fulfil;
  fulfil.set_command_id(UniqueName("fulfil"));
  fulfil.set_appointment_id(b.appointment_id());
  fulfil.set_status(sv1::APPOINTMENT_STATUS_FULFILLED);
  sv1::UpdateAppointmentStatusResponse fulfilled;
  status = booking->UpdateAppointmentStatus(Context(manager).get(), fulfil, &fulfilled);
  ASSERT_TRUE(status.ok()) << status.error_message();
  sv1::UpdateAppointmentStatusRequest noshow;
  noshow.set_command_id(UniqueName("noshow"));
  noshow.set_appointment_id(a.appointment_id());
  noshow.set_status(sv1::APPOINTMENT_STATUS_NOSHOW);
  noshow.set_reason("no answer");
  sv1::UpdateAppointmentStatusResponse noshowed;
  // Refused until A has started (the scheduling service's rule): retried until then.
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return booking->UpdateAppointmentStatus(Context(manager).get(), noshow, &noshowed).ok(); },
      absl::Seconds(20), absl::Milliseconds(200)));
  // The overdue task is judged against the clock: past its due time from here on.
  // (Times are whole seconds: "before now" means a due second before the current one.)
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return absl::ToUnixSeconds(absl::Now()) > absl::ToUnixSeconds(task_due); },
      absl::Seconds(10)));

  // Caseload at both positions: the next appointment is C; one task overdue; one goal
  // overdue, one due soon.
  vv1::GetCaseloadRequest caseload;
  caseload.set_case_manager_id(cm);
  *caseload.add_min_positions() = tasked;
  *caseload.add_min_positions() = noshowed.position();
  vv1::GetCaseloadResponse got;
  status = stub->GetCaseload(Context(manager).get(), caseload, &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(got.cases_size(), 1);
  EXPECT_EQ(got.cases(0).next_appointment_at().seconds(), absl::ToUnixSeconds(c_start));
  EXPECT_EQ(got.cases(0).overdue_tasks(), 1);
  EXPECT_EQ(got.cases(0).goals_overdue(), 1);
  EXPECT_EQ(got.cases(0).goals_due_soon(), 1);
  EXPECT_EQ(got.overdue_tasks(), 1);
  EXPECT_EQ(got.goals_overdue(), 1);
  EXPECT_EQ(got.goals_due_soon(), 1);
  EXPECT_EQ(got.cases_with_appointment_next_7d(), 1);
  EXPECT_EQ(got.pending_figures_size(), 0);

  vv1::GetWorklistRequest worklist;
  worklist.set_case_manager_id(cm);
  *worklist.add_min_positions() = noshowed.position();
  vv1::GetWorklistResponse items;
  status = stub->GetWorklist(Context(manager).get(), worklist, &items);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(items.items_size(), 1);
  const auto& reasons = items.items(0).reasons();
  EXPECT_NE(std::find(reasons.begin(), reasons.end(), "1 overdue task(s)"), reasons.end())
      << absl::StrJoin(reasons, "; ");
  EXPECT_NE(std::find(reasons.begin(), reasons.end(), "1 goal(s) past their target date"), reasons.end());
  EXPECT_NE(std::find(reasons.begin(), reasons.end(), "1 goal(s) due soon"), reasons.end());

  // Cancelling C: no next appointment any more (a scheduling-topic position again).
  sv1::CancelAppointmentRequest cancel;
  cancel.set_command_id(UniqueName("cancel"));
  cancel.set_appointment_id(c.appointment_id());
  cancel.set_index(0);
  cancel.set_scope(sv1::CHANGE_SCOPE_THIS_OCCURRENCE);
  cancel.set_reason(sv1::CANCELLATION_REASON_PATIENT_REQUEST);
  sv1::CancelAppointmentResponse cancelled;
  status = booking->CancelAppointment(Context(manager).get(), cancel, &cancelled);
  ASSERT_TRUE(status.ok()) << status.error_message();
  caseload.clear_min_positions();
  *caseload.add_min_positions() = cancelled.position();
  status = stub->GetCaseload(Context(manager).get(), caseload, &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(got.cases(0).has_next_appointment_at());

  // Services delivered and a goal achieved, then the closure: its outcome figures.
  cv1::AddCareTeamMemberRequest member;
  member.set_role(cv1::CARE_TEAM_ROLE_PROVIDER);
  member.set_name("Home Health Co");
  CaseCommand(cases.stub(), &cv1::CaseService::Stub::AddCareTeamMember, member, case_id);
  cv1::ReferToServiceRequest refer;
  refer.set_member_id("member-1");
  refer.set_service_type(cv1::SERVICE_TYPE_HOME_HEALTH);
  refer.set_reason("support at home");
  refer.set_requested_units(4);
  refer.mutable_unit_cost()->set_currency_code("USD");
  refer.mutable_unit_cost()->set_minor_units(5000);
  refer.mutable_consent_override()->set_reason("urgent coordination");
  refer.add_shared_information(cv1::INFORMATION_CATEGORY_CLINICAL);
  cv1::ReferToServiceResponse referred;
  CaseCommand(cases.stub(), &cv1::CaseService::Stub::ReferToService, refer, case_id, &referred);
  cv1::AuthorizeServiceReferralRequest authorize;
  authorize.set_referral_id(referred.referral_id());
  authorize.set_authorized_units(4);
  authorize.set_authorization_number("AUTH-7");
  CaseCommand(cases.stub(), &cv1::CaseService::Stub::AuthorizeServiceReferral, authorize, case_id);
  cv1::RecordServiceDeliveryRequest delivery;
  delivery.set_referral_id(referred.referral_id());
  delivery.set_units(3);
  delivery.set_delivered_on(Day(absl::Now()));
  CaseCommand(cases.stub(), &cv1::CaseService::Stub::RecordServiceDelivery, delivery, case_id);
  cv1::ChangeGoalStatusRequest achieved;
  achieved.set_goal_id("goal-1");
  achieved.set_status(cv1::GOAL_LIFECYCLE_STATUS_COMPLETED);
  achieved.set_achievement_status(cv1::GOAL_ACHIEVEMENT_STATUS_ACHIEVED);
  CaseCommand(cases.stub(), &cv1::CaseService::Stub::ChangeGoalStatus, achieved, case_id);
  const auto closed = cases.Close(case_id, cm);

  // Outcomes of the manager: over the periods of A's and B's starts (the same month unless
  // the test runs at a month's last half hour), one kept and one no-show.
  auto outcomes_at = [&](absl::Time at, vv1::GetOutcomesResponse* figures) {
    vv1::GetOutcomesRequest outcomes;
    outcomes.set_dimension(vv1::DIMENSION_CASE_MANAGER);
    outcomes.set_group_id(cm);
    outcomes.set_period_kind(vv1::PERIOD_KIND_MONTH);
    *outcomes.mutable_period_at() = Ts(at);
    *outcomes.add_min_positions() = closed;
    *outcomes.add_min_positions() = noshowed.position();
    return stub->GetOutcomes(Context({}).get(), outcomes, figures);
  };
  int64_t kept = 0, no_show = 0;
  std::set<std::string> months;
  vv1::GetOutcomesResponse figures;
  for (absl::Time at : {a_start, b_start}) {
    status = outcomes_at(at, &figures);
    ASSERT_TRUE(status.ok()) << status.error_message();
    if (!months.insert(figures.period()).second) continue;
    kept += figures.appointments_kept();
    no_show += figures.appointments_no_show();
    EXPECT_EQ(figures.pending_figures_size(), 0);
  }
  EXPECT_EQ(kept, 1);
  EXPECT_EQ(no_show, 1);
  status = outcomes_at(absl::Now(), &figures);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(figures.cases_closed(), 1);
  EXPECT_EQ(figures.closure_goals(), 2);
  EXPECT_EQ(figures.closure_goals_achieved(), 1);
  EXPECT_DOUBLE_EQ(figures.goal_achievement_rate(), 0.5);
  ASSERT_EQ(figures.delivered_cost_size(), 1);
  EXPECT_EQ(figures.delivered_cost(0).currency_code(), "USD");
  EXPECT_EQ(figures.delivered_cost(0).minor_units(), 15000);
  ASSERT_EQ(figures.cost_per_case_size(), 1);
  EXPECT_EQ(figures.cost_per_case(0).minor_units(), 15000);
  ASSERT_EQ(figures.cost_per_achieved_goal_size(), 1);
  EXPECT_EQ(figures.cost_per_achieved_goal(0).minor_units(), 15000);

  // Supervisor rollups from the organisation file: sup-n leads team-north (this tenant's
  // case) and team-south; sup-e leads team-east (no cases).
  auto [open_case, open_position] = cases.Open("open-2", 4);
  vv1::ListRollupsRequest rollups;
  rollups.set_dimension(vv1::DIMENSION_SUPERVISOR);
  *rollups.add_min_positions() = open_position;
  vv1::ListRollupsResponse listed;
  status = stub->ListRollups(Context({}).get(), rollups, &listed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(listed.rollups_size(), 3);
  EXPECT_EQ(listed.rollups(0).group_id(), "sup-1");
  EXPECT_EQ(listed.rollups(0).counters().open_cases(), 0);
  EXPECT_EQ(listed.rollups(1).group_id(), "sup-e");
  EXPECT_EQ(listed.rollups(1).counters().open_cases(), 0);
  EXPECT_EQ(listed.rollups(2).group_id(), "sup-n");
  EXPECT_EQ(listed.rollups(2).counters().open_cases(), 1);
  EXPECT_EQ(listed.rollups(2).counters().unassigned_cases(), 1);
  EXPECT_EQ(listed.rollups(2).counters().high_risk_cases(), 1);
  // Another tenant's organisation has no teams here: nothing.
  status = stub->ListRollups(Context({"sup-9", "supervisor", "tenant-b"}).get(), rollups, &listed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(listed.rollups_size(), 0);
  // Outcomes are not summed per supervisor.
  vv1::GetOutcomesRequest per_supervisor;
  per_supervisor.set_dimension(vv1::DIMENSION_SUPERVISOR);
  per_supervisor.set_group_id("sup-n");
  per_supervisor.set_period_kind(vv1::PERIOD_KIND_MONTH);
  *per_supervisor.mutable_period_at() = Ts(absl::Now());
  status = stub->GetOutcomes(Context({}).get(), per_supervisor, &figures);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  views.Stop();
  scheduling.Stop();
  case_service.Stop();
}

// Readiness: health "" is NOT_SERVING while the view cannot catch up (its Redis is down:
// nothing can be applied), though the process is alive; SERVING once caught up.
TEST(ViewsServiceTest, ReadyOnlyAfterCatchingUp) {
  const std::string topic = UniqueName("clinical.case.views-ready");
  const std::string root = UniqueName("views.ready");
  Process case_service = CaseService(topic);
  ASSERT_NO_FATAL_FAILURE(case_service.Start());
  Cases cases(case_service.channel());
  cases.Open("ready-open", 2);
  // A closed port for Redis: the runtime retries, never applies, never catches up.
  Process stuck = ViewsService(topic, root, "v1", {"--redis-port=1"});
  ASSERT_NO_FATAL_FAILURE(stuck.Start());
  auto health = grpc::health::v1::Health::NewStub(stuck.channel());
  auto check = [&](const std::shared_ptr<grpc::health::v1::Health::Stub>& h, const std::string& service) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    const grpc::Status s = h->Check(&context, request, &response);
    return s.ok() ? response.status() : grpc::health::v1::HealthCheckResponse::UNKNOWN;
  };
  std::shared_ptr<grpc::health::v1::Health::Stub> stuck_health = std::move(health);
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return check(stuck_health, "liveness") == grpc::health::v1::HealthCheckResponse::SERVING; },
      absl::Seconds(10)));
  EXPECT_EQ(check(stuck_health, ""), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  stuck.Stop();

  Process views = ViewsService(topic, root, "v1");
  ASSERT_NO_FATAL_FAILURE(views.Start());
  std::shared_ptr<grpc::health::v1::Health::Stub> ready_health =
      grpc::health::v1::Health::NewStub(views.channel());
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return check(ready_health, "") == grpc::health::v1::HealthCheckResponse::SERVING; },
      absl::Seconds(30)));
  // Ready means caught up: the case opened before the start is already in the view.
  auto stub = vv1::ViewsService::NewStub(views.channel());
  vv1::ListRollupsRequest all;
  all.set_dimension(vv1::DIMENSION_TENANT);
  vv1::ListRollupsResponse rollups;
  auto status = stub->ListRollups(Context({}).get(), all, &rollups);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(rollups.rollups_size(), 1);
  EXPECT_EQ(rollups.rollups(0).counters().open_cases(), 1);
  views.Stop();
  case_service.Stop();
}

// Trust II: a caseload or worklist is its case manager's own, or a supervisor's of the
// case managers in the teams they lead (the organisation topic, read-your-writes); the
// rollups are not for case managers. No case service is needed: the views start on empty
// topics and the organisation is written as the case service writes it.
TEST(ViewsServiceTest, CaseloadsAreTheirOwnersAndTheirSupervisorsOnly) {
  const std::string topic = UniqueName("clinical.case.views-authz");
  const std::string root = UniqueName("views.authz");
  Process views = ViewsService(topic, root, "v1");  // sup-1 leads a team with cm-7
  ASSERT_NO_FATAL_FAILURE(views.Start());
  auto health = grpc::health::v1::Health::NewStub(views.channel());
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
        grpc::health::v1::HealthCheckRequest request;
        grpc::health::v1::HealthCheckResponse response;
        return health->Check(&context, request, &response).ok() &&
               response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
      },
      absl::Seconds(30)));
  auto stub = vv1::ViewsService::NewStub(views.channel());
  auto caseload = [&](const Who& who, const std::string& manager) {
    vv1::GetCaseloadRequest request;
    request.set_case_manager_id(manager);
    vv1::GetCaseloadResponse response;
    return stub->GetCaseload(Context(who).get(), request, &response).error_code();
  };
  auto worklist = [&](const Who& who, const std::string& manager) {
    vv1::GetWorklistRequest request;
    request.set_case_manager_id(manager);
    vv1::GetWorklistResponse response;
    return stub->GetWorklist(Context(who).get(), request, &response).error_code();
  };
  const Who cm7{"cm-7", "case_manager", "tenant-a"};
  const Who stranger{"sup-x", "supervisor", "tenant-a"};
  EXPECT_EQ(caseload(cm7, "cm-7"), grpc::StatusCode::OK);
  EXPECT_EQ(worklist(cm7, "cm-7"), grpc::StatusCode::OK);
  EXPECT_EQ(caseload({"cm-8", "case_manager", "tenant-a"}, "cm-7"), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(caseload({}, "cm-7"), grpc::StatusCode::OK);  // sup-1 leads cm-7's team
  EXPECT_EQ(worklist({}, "cm-7"), grpc::StatusCode::OK);
  EXPECT_EQ(caseload(stranger, "cm-7"), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(caseload({"sup-1", "supervisor", "tenant-b"}, "cm-7"), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(caseload({"aud-1", "auditor", "tenant-a"}, "cm-7"), grpc::StatusCode::PERMISSION_DENIED);
  // A team set in the case service just now counts for the very next call.
  {
    auto organisation = relations::testing::CaseServiceLog::Create(topic, OrganisationTopicFor(topic));
    organisation->SetTeam("tenant-a", "team-x", {"sup-x"}, {"cm-7"});
  }
  EXPECT_EQ(caseload(stranger, "cm-7"), grpc::StatusCode::OK);
  EXPECT_EQ(worklist(stranger, "cm-7"), grpc::StatusCode::OK);
  // Rollups are tenant-wide for supervisors and refused to case managers.
  vv1::ListRollupsRequest rollups;
  rollups.set_dimension(vv1::DIMENSION_SUPERVISOR);
  vv1::ListRollupsResponse listed;
  EXPECT_EQ(stub->ListRollups(Context(cm7).get(), rollups, &listed).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(stub->ListRollups(Context(stranger).get(), rollups, &listed).ok());
  ASSERT_EQ(listed.rollups_size(), 2);
  EXPECT_EQ(listed.rollups(0).group_id(), "sup-1");
  EXPECT_EQ(listed.rollups(1).group_id(), "sup-x");
  views.Stop();
}

// Every key of one version, by type, as comparable text (offset keys included).
std::map<std::string, std::string> Dump(redis::Connection& redis, const std::string& prefix) {
  std::map<std::string, std::string> out;
  std::string cursor = "0";
  do {
    auto scan = redis.Command({"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
    EXPECT_TRUE(scan.ok());
    if (!scan.ok()) return out;
    cursor = scan->elements()[0].str();
    for (const auto& k : scan->elements()[1].elements()) {
      const std::string key = k.str();
      auto type = redis.Command({"TYPE", key});
      std::vector<std::string> values;
      if (type->str() == "hash") {
        auto all = redis.Command({"HGETALL", key});
        for (size_t i = 0; i + 1 < all->elements().size(); i += 2) {
          values.push_back(all->elements()[i].str() + "=" + all->elements()[i + 1].str());
        }
      } else if (type->str() == "set") {
        auto all = redis.Command({"SMEMBERS", key});
        for (const auto& m : all->elements()) values.push_back(m.str());
      } else if (type->str() == "zset") {
        auto all = redis.Command({"ZRANGE", key, "0", "-1", "WITHSCORES"});
        for (const auto& m : all->elements()) values.push_back(m.str());
      } else {
        auto value = redis.Command({"GET", key});
        values.push_back(value->str());
      }
      std::sort(values.begin(), values.end());
      out[key.substr(prefix.size())] = absl::StrJoin(values, ",");
    }
  } while (cursor != "0");
  return out;
}

TEST(ViewsServiceTest, SigkillDuringLoadThenRebuildUnderQueriesEqualsFreshRebuild) {
  const std::string topic = UniqueName("clinical.case.views-crash");
  const std::string root = UniqueName("views.crash");
  Process case_service = CaseService(topic);
  ASSERT_NO_FATAL_FAILURE(case_service.Start());
  Process views = ViewsService(topic, root, "v1");
  ASSERT_NO_FATAL_FAILURE(views.Start());

  // A writer thread drives cases through the case service while the views die and return.
  constexpr int kCases = 60;
  std::atomic<int> done{0};
  common::v1::LogPosition last;
  std::mutex last_mutex;
  std::thread writer([&] {
    Cases cases(case_service.channel());
    for (int i = 0; i < kCases; ++i) {
      const std::string cm = absl::StrCat("cm-", i % 7);
      auto [id, p] = cases.Open("load-open", 1 + i % 5);
      cases.Assign(id, cm);
      if (i % 2 == 0) cases.Accept(id, cm);
      auto p2 = cases.Contact(id, cm);
      if (i % 5 == 0) p2 = cases.Close(id, cm);
      {
        std::lock_guard<std::mutex> lock(last_mutex);
        last = p2;
      }
      done = i + 1;
    }
  });
  auto stub = vv1::ViewsService::NewStub(views.channel());
  ASSERT_TRUE(testing::WaitUntil([&] { return done.load() >= kCases / 4; }, absl::Seconds(120)));
  ASSERT_NO_FATAL_FAILURE(views.Kill());
  ASSERT_TRUE(testing::WaitUntil([&] { return done.load() >= kCases / 2; }, absl::Seconds(120)));
  ASSERT_NO_FATAL_FAILURE(views.Start());
  writer.join();
  ASSERT_EQ(done.load(), kCases);

  // Wait until the restarted view has everything: the tenant rollup counts every case.
  stub = vv1::ViewsService::NewStub(views.channel());
  auto redis = redis::Connection::Connect(Platform::Get().redis_admin, absl::Seconds(5));
  ASSERT_TRUE(redis.ok());
  vv1::ListRollupsRequest all;
  all.set_dimension(vv1::DIMENSION_TENANT);
  {
    std::lock_guard<std::mutex> lock(last_mutex);
    *all.add_min_positions() = last;
  }
  vv1::ListRollupsResponse rollups;
  auto status = stub->ListRollups(Context({}).get(), all, &rollups);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(rollups.rollups(0).counters().open_cases(), kCases - kCases / 5);

  // A rebuild (v2) in a second process, while a client keeps querying the first.
  std::atomic<bool> querying{true};
  std::atomic<int> errors{0};
  std::atomic<int> answered{0};
  std::atomic<bool> saw_v2{false};
  std::vector<std::string> versions_seen;  // written by the reader only, read after join
  std::thread reader([&] {
    auto query = vv1::ViewsService::NewStub(views.channel());
    for (int i = 0; i < 100000 && querying.load(); ++i) {
      vv1::GetCaseloadRequest r;
      r.set_case_manager_id("cm-1");
      vv1::GetCaseloadResponse response;
      auto s = query->GetCaseload(Context({}).get(), r, &response);
      if (!s.ok()) {
        ++errors;
        continue;
      }
      if (versions_seen.empty() || versions_seen.back() != response.view_version()) {
        versions_seen.push_back(response.view_version());
      }
      if (response.view_version() == "v2") saw_v2 = true;
      ++answered;
    }
  });
  ASSERT_TRUE(testing::WaitUntil([&] { return answered.load() > 0; }, absl::Seconds(30)));
  Process rebuild = ViewsService(topic, root, "v2");
  ASSERT_NO_FATAL_FAILURE(rebuild.Start());
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        auto active = projection::ActiveVersion(*redis, root);
        return active.ok() && active->has_value() && **active == "v2";
      },
      absl::Seconds(120)));
  // Keep querying past the switch until the first process answers from v2.
  const bool switched = testing::WaitUntil([&] { return saw_v2.load(); }, absl::Seconds(30));
  querying = false;
  reader.join();
  EXPECT_TRUE(switched);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(answered.load(), 10);
  // Exactly one switch, v1 -> v2, never back.
  EXPECT_EQ(versions_seen, (std::vector<std::string>{"v1", "v2"}))
      << absl::StrJoin(versions_seen, " -> ");

  // The view that was SIGKILLed mid-load equals the fresh rebuild, key by key.
  const auto v1 = Dump(*redis, absl::StrCat(root, ":v1:"));
  const auto v2 = Dump(*redis, absl::StrCat(root, ":v2:"));
  EXPECT_GT(v1.size(), static_cast<size_t>(kCases));
  EXPECT_EQ(v1.size(), v2.size());
  for (const auto& [key, value] : v1) {
    auto other = v2.find(key);
    ASSERT_NE(other, v2.end()) << key;
    EXPECT_EQ(value, other->second) << key;
  }

  rebuild.Stop();
  views.Stop();
  case_service.Stop();
}

}  // namespace
}  // namespace clinical::views

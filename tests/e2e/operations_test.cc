// Operational behaviour of every service as a real process: SIGTERM under load drains
// in-flight calls, exits 0 and loses nothing acknowledged; /metrics exposes the documented
// series with values that match what was done.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clinical/audit/v1/audit_service.grpc.pb.h"
#include "clinical/case/v1/case_service.grpc.pb.h"
#include "clinical/notification/v1/notification_service.grpc.pb.h"
#include "clinical/scheduling/v1/scheduling_service.grpc.pb.h"
#include "clinical/testing/identity.h"
#include "clinical/testing/organisation.h"
#include "clinical/kafka/admin.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/service_process.h"
#include "clinical/testing/topics.h"
#include "clinical/testing/wait.h"
#include "clinical/views/v1/views_service.grpc.pb.h"
#include "gtest/gtest.h"

namespace clinical {
namespace {

namespace v1 = ::clinical::case_::v1;
namespace sv1 = ::clinical::scheduling::v1;
namespace nv1 = ::clinical::notification::v1;
namespace vv1 = ::clinical::views::v1;
namespace av1 = ::clinical::audit::v1;
using testing::ServiceLaunch;
using testing::ServiceProcess;

constexpr char kTenant[] = "tenant-ops";

// The callers default to an intake coordinator: they open cases and read unassigned ones
// (the intake view), which is all these tests need of the case service.
void Identify(grpc::ClientContext& context, const std::string& user = "intake-1",
              const std::string& role = "intake_coordinator") {
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  testing::Authenticate(context, {user, role, kTenant});
  context.AddMetadata("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
}

v1::OpenCaseRequest Intake(const std::string& command_id) {
  v1::OpenCaseRequest open;
  open.set_command_id(command_id);
  open.mutable_patient()->set_mrn("MRN-" + command_id);
  open.mutable_patient()->set_given_name("Test");
  open.mutable_patient()->set_family_name("Patient");
  open.mutable_patient()->set_birth_date("1950-02-03");
  open.mutable_patient()->set_gender(v1::ADMINISTRATIVE_GENDER_UNKNOWN);
  open.set_program("elder_care");
  open.set_priority(3);
  open.set_acuity(2);
  open.mutable_referral()->set_source(v1::REFERRAL_SOURCE_HOSPITAL);
  open.mutable_referral()->set_reason("ops test");
  open.set_initial_status(v1::CASE_STATUS_ACTIVE);
  open.set_team_id("team-ops");
  return open;
}

sv1::CreateCalendarRequest NewCalendar(const std::string& command_id) {
  sv1::CreateCalendarRequest request;
  request.set_command_id(command_id);
  request.set_owner_kind(sv1::CALENDAR_OWNER_KIND_CASE_MANAGER);
  request.set_owner_id("cm-" + command_id);
  request.set_time_zone("America/Chicago");
  for (int d = sv1::WEEKDAY_MONDAY; d <= sv1::WEEKDAY_FRIDAY; ++d) {
    sv1::WorkingHours* hours = request.add_working_hours();
    hours->set_weekday(static_cast<sv1::Weekday>(d));
    hours->set_start_minute(8 * 60);
    hours->set_end_minute(17 * 60);
  }
  return request;
}

// What a SIGTERM test needs to know about one service: how to start it, one call of its
// load (returning the id of what a write created, empty for a read) and how to check,
// after a restart, that an acknowledged write is still there.
struct DrainCase {
  std::string service;
  std::function<ServiceLaunch()> launch;  // called twice: start and restart
  std::function<grpc::Status(const std::shared_ptr<grpc::Channel>&, const std::string& call_id,
                             std::string* created)>
      call;
  std::function<grpc::Status(const std::shared_ptr<grpc::Channel>&, const std::string& created)>
      check;  // null: a service under read load only
};

// The case and scheduling topics the readers under load follow. The harness creates them
// as their writers would: readers never create another service's topics (their ACLs
// forbid it), and the views are ready only once both exist.
std::string OpsName() {
  static const std::string name = [] {
    const std::string unique = testing::UniqueName("ops");
    kafka::TopicSpec case_topic, scheduling_topic;
    case_topic.name = "clinical.case." + unique;
    scheduling_topic.name = "clinical.scheduling." + unique;
    const absl::Status created = kafka::EnsureTopics(testing::Platform::Get().kafka_admin,
                                                     {case_topic, scheduling_topic}, absl::Seconds(30));
    EXPECT_TRUE(created.ok()) << created;
    return unique;
  }();
  return name;
}
std::string CaseTopic() { return "clinical.case." + OpsName(); }
std::string SchedulingTopic() { return "clinical.scheduling." + OpsName(); }

std::vector<DrainCase> DrainCases() {
  std::vector<DrainCase> cases;
  // case: a writer (OpenCase), then GetCase of every acknowledged case after a restart.
  {
    const std::string topic = testing::UniqueName("clinical.case.drain");
    const std::string writer = testing::UniqueName("case-service.drain");
    cases.push_back(DrainCase{
        "case",
        [=] {
          return ServiceLaunch{"case",
                               {"--case-topic-partitions=3", "--case-topic=" + topic, "--writer-id=" + writer}};
        },
        [](const std::shared_ptr<grpc::Channel>& channel, const std::string& id, std::string* created) {
          grpc::ClientContext context;
          Identify(context);
          v1::OpenCaseResponse response;
          grpc::Status status = v1::CaseService::NewStub(channel)
                                    ->OpenCase(&context, Intake(id), &response);
          *created = response.case_id();
          return status;
        },
        [](const std::shared_ptr<grpc::Channel>& channel, const std::string& case_id) {
          grpc::ClientContext context;
          Identify(context);
          v1::GetCaseRequest request;
          request.set_case_id(case_id);
          v1::GetCaseResponse response;
          return v1::CaseService::NewStub(channel)
              ->GetCase(&context, request, &response);
        }});
  }
  // scheduling: a writer (CreateCalendar), then GetCalendar after a restart.
  {
    const std::string topic = testing::UniqueName("clinical.scheduling.drain");
    const std::string writer = testing::UniqueName("scheduling-service.drain");
    cases.push_back(DrainCase{
        "scheduling",
        [=] {
          return ServiceLaunch{"scheduling",
                               {"--scheduling-topic=" + topic, "--case-topic=" + CaseTopic(),
                                "--writer-id=" + writer}};
        },
        [](const std::shared_ptr<grpc::Channel>& channel, const std::string& id, std::string* created) {
          grpc::ClientContext context;
          Identify(context, "sched-ops", "scheduler");
          sv1::CreateCalendarResponse response;
          grpc::Status status =
              sv1::SchedulingService::NewStub(channel)
                  ->CreateCalendar(&context, NewCalendar(id), &response);
          *created = response.calendar_id();
          return status;
        },
        [](const std::shared_ptr<grpc::Channel>& channel, const std::string& calendar_id) {
          grpc::ClientContext context;
          Identify(context);
          sv1::GetCalendarRequest request;
          request.set_calendar_id(calendar_id);
          sv1::GetCalendarResponse response;
          return sv1::SchedulingService::NewStub(channel)
              ->GetCalendar(&context, request, &response);
        }});
  }
  // notification: reads under load (the inbox of the caller).
  {
    const std::string topic = testing::UniqueName("clinical.notification.drain");
    const std::string writer = testing::UniqueName("notification-service.drain");
    cases.push_back(DrainCase{
        "notification",
        [=] {
          return ServiceLaunch{"notification",
                               {"--notification-topic=" + topic, "--case-topic=" + CaseTopic(),
                                "--scheduling-topic=" + SchedulingTopic(), "--writer-id=" + writer}};
        },
        [](const std::shared_ptr<grpc::Channel>& channel, const std::string&, std::string*) {
          grpc::ClientContext context;
          Identify(context);
          nv1::ListInboxRequest request;
          request.set_recipient_id("intake-1");
          nv1::ListInboxResponse response;
          return nv1::NotificationService::NewStub(channel)
              ->ListInbox(&context, request, &response);
        },
        nullptr});
  }
  // views: reads under load (a caseload).
  cases.push_back(DrainCase{
      "views",
      [] {
        return ServiceLaunch{"views", {"--case-topic=" + CaseTopic(), "--scheduling-topic=" + SchedulingTopic(),
                                       "--view-root=" + testing::UniqueName("views.drain")}};
      },
      [](const std::shared_ptr<grpc::Channel>& channel, const std::string&, std::string*) {
        grpc::ClientContext context;
        Identify(context, "cm-ops", "case_manager");
        vv1::GetCaseloadRequest request;
        request.set_case_manager_id("cm-ops");
        vv1::GetCaseloadResponse response;
        return vv1::ViewsService::NewStub(channel)
            ->GetCaseload(&context, request, &response);
      },
      nullptr});
  // audit: reads under load (an auditor's query of the log by case).
  {
    const std::string key_root = testing::UniqueName("audit.drain");
    const std::string checkpoints = testing::UniqueName("clinical.audit.drain");
    cases.push_back(DrainCase{
        "audit",
        [=] {
          return ServiceLaunch{"audit",
                               {"--audit-source-topics=" + CaseTopic(), "--audit-topic=" + checkpoints,
                                "--audit-key-root=" + key_root}};
        },
        [](const std::shared_ptr<grpc::Channel>& channel, const std::string&, std::string*) {
          grpc::ClientContext context;
          Identify(context, "auditor-ops", "auditor");
          av1::QueryRecordsRequest request;
          request.mutable_filter()->set_case_id("00000000-0000-4000-8000-000000000000");
          av1::QueryRecordsResponse response;
          return av1::AuditService::NewStub(channel)->QueryRecords(&context, request, &response);
        },
        nullptr});
  }
  return cases;
}

class SigtermUnderLoadTest : public ::testing::TestWithParam<DrainCase> {};

// Clients call in a loop while the service gets SIGTERM. Every call ends OK or, once the
// server has stopped accepting, UNAVAILABLE — an in-flight call is never cut off
// (CANCELLED) or failed; the process exits 0 within the grace period; every write it
// acknowledged is there after a restart.
TEST_P(SigtermUnderLoadTest, DrainsInFlightCallsExitsZeroAndLosesNothingAcknowledged) {
  const DrainCase& drain = GetParam();
  auto service = ServiceProcess::Start(drain.launch());
  ASSERT_TRUE(service.ok()) << service.status();

  constexpr int kClients = 8;
  std::mutex mutex;
  std::set<std::string> acknowledged;  // ids of what the service confirmed writing
  int succeeded = 0;
  std::vector<std::string> unexpected;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto channel = (*service)->NewChannel();
      for (int i = 0; !stop; ++i) {
        std::string created;
        const grpc::Status status =
            drain.call(channel, testing::UniqueName(absl::StrCat("drain-", c, "-", i)), &created);
        std::lock_guard<std::mutex> lock(mutex);
        if (status.ok()) {
          ++succeeded;
          if (!created.empty()) acknowledged.insert(created);
          continue;
        }
        // After SIGTERM the server refuses new calls with UNAVAILABLE. Calls that had
        // reached the server but not yet a handler thread end CANCELLED: gRPC core kills
        // such pending calls that way (grpc/grpc#41785); their handler never ran. A call
        // cut off by the grace deadline would also be CANCELLED; the test rules that out
        // by requiring the exit before the grace ends (below). Anything else is a call the
        // shutdown broke.
        if (status.error_code() != grpc::StatusCode::UNAVAILABLE &&
            status.error_code() != grpc::StatusCode::CANCELLED) {
          unexpected.push_back(absl::StrCat(status.error_code(), ": ", status.error_message()));
        }
        return;
      }
    });
  }
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        std::lock_guard<std::mutex> lock(mutex);
        return succeeded >= 40;
      },
      absl::Seconds(60)));
  const ServiceLaunch launch = drain.launch();
  const absl::Time signalled = absl::Now();
  (*service)->process().Signal(SIGTERM);
  auto exit_status = (*service)->process().Wait(absl::Seconds(30));
  const absl::Duration drain_time = absl::Now() - signalled;
  stop = true;
  for (auto& client : clients) client.join();
  ASSERT_TRUE(exit_status.has_value()) << "no exit within 30 s";
  EXPECT_LT(drain_time, launch.shutdown_grace)
      << "the drain reached the grace deadline, so in-flight calls may have been cut off";
  ASSERT_TRUE(WIFEXITED(*exit_status)) << "killed by a signal";
  EXPECT_EQ(WEXITSTATUS(*exit_status), 0);
  EXPECT_TRUE(unexpected.empty()) << absl::StrJoin(unexpected, "\n");
  EXPECT_TRUE((*service)
                  ->process()
                  .WaitForLine([](const std::string& l) { return l.find("\"msg\":\"stopped\"") != std::string::npos; },
                               absl::Seconds(1))
                  .has_value());
  if (!drain.check) return;

  ASSERT_FALSE(acknowledged.empty());
  auto restarted = ServiceProcess::Start(drain.launch());
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  auto channel = (*restarted)->NewChannel();
  for (const std::string& id : acknowledged) {
    const grpc::Status status = drain.check(channel, id);
    EXPECT_TRUE(status.ok()) << "acknowledged write lost: " << status.error_message();
  }
  channel.reset();
  ASSERT_TRUE((*restarted)->Terminate(absl::Seconds(30)).has_value());
}

INSTANTIATE_TEST_SUITE_P(EveryService, SigtermUnderLoadTest, ::testing::ValuesIn(DrainCases()),
                         [](const ::testing::TestParamInfo<DrainCase>& param) { return param.param.service; });

std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    send(fd, request.data(), request.size(), 0);
    char buffer[8192];
    ssize_t n;
    while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) response.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return response;
}

// The value of the sample line that starts with `series` ("name{labels}"), or -1.
double SampleValue(const std::string& exposition, const std::string& series) {
  size_t at = 0;
  while ((at = exposition.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || exposition[at - 1] == '\n') {
      return std::stod(exposition.substr(at + series.size() + 1));
    }
    at += series.size();
  }
  return -1;
}

TEST(OperationsTest, MetricsEndpointExposesTheDocumentedSeriesWithMatchingValues) {
  const std::string organisation_topic = testing::UniqueName("clinical.case.organisation.metrics");
  auto service = ServiceProcess::Start(ServiceLaunch{
      "case",
      {"--case-topic-partitions=3", "--case-topic=" + testing::UniqueName("clinical.case.metrics"),
       "--organisation-topic=" + organisation_topic, "--writer-id=" + testing::UniqueName("case-service.metrics")}});
  ASSERT_TRUE(service.ok()) << service.status();
  auto stub = v1::CaseService::NewStub((*service)->NewChannel());
  // Two organisation appends (the configuration and one team) on the organisation's store.
  const absl::Status configured = testing::ConfigureOrganisationThroughApi(
      *stub, {.tenant = kTenant,
              .administrator = "admin-ops",
              .privacy_officer_ids = {"privacy-ops"},
              .emergency_access_max_minutes = 0,
              .teams = {{.team_id = "team-ops", .name = "Ops", .supervisor_ids = {"sup-ops"}, .member_ids = {}}}});
  ASSERT_TRUE(configured.ok()) << configured;
  constexpr int kOpened = 5;
  for (int i = 0; i < kOpened; ++i) {
    grpc::ClientContext context;
    Identify(context);
    v1::OpenCaseResponse response;
    ASSERT_TRUE(stub->OpenCase(&context, Intake(absl::StrCat("m-", i)), &response).ok());
  }
  {
    grpc::ClientContext context;
    Identify(context);
    v1::GetCaseRequest request;
    request.set_case_id("00000000-0000-4000-8000-000000000000");
    v1::GetCaseResponse response;
    EXPECT_EQ(stub->GetCase(&context, request, &response).error_code(), grpc::StatusCode::NOT_FOUND);
  }

  const std::string response = HttpGet((*service)->metrics_port(), "/metrics");
  ASSERT_NE(response.find("HTTP/1.1 200 OK"), std::string::npos) << response;
  const std::string body = response.substr(response.find("\r\n\r\n") + 4);
  const std::string rpc = "grpc_service=\"clinical.case.v1.CaseService\"";
  EXPECT_EQ(SampleValue(body, "clinical_grpc_server_handled_total{" + rpc +
                                  ",grpc_method=\"OpenCase\",grpc_code=\"OK\"}"),
            kOpened)
      << body;
  EXPECT_EQ(SampleValue(body, "clinical_grpc_server_handled_total{" + rpc +
                                  ",grpc_method=\"GetCase\",grpc_code=\"NOT_FOUND\"}"),
            1);
  EXPECT_EQ(SampleValue(body, "clinical_grpc_server_handling_seconds_count{" + rpc +
                                  ",grpc_method=\"OpenCase\"}"),
            kOpened);
  const double slowest_bucket = SampleValue(
      body, "clinical_grpc_server_handling_seconds_bucket{" + rpc + ",grpc_method=\"OpenCase\",le=\"10\"}");
  EXPECT_EQ(slowest_bucket, kOpened) << "an OpenCase took longer than 10 s";
  const double sum = SampleValue(body, "clinical_grpc_server_handling_seconds_sum{" + rpc +
                                           ",grpc_method=\"OpenCase\"}");
  EXPECT_GT(sum, 0);
  EXPECT_LT(sum, 10 * kOpened);
  // The event store's counters, via the case service's collector.
  EXPECT_NE(body.find("clinical_eventstore_appends_total{topic=\""), std::string::npos) << body;
  EXPECT_EQ(SampleValue(body, "clinical_eventstore_appends_total{topic=\"" + organisation_topic +
                                  "\",outcome=\"committed\"}"),
            2)
      << "the organisation's event store is exported too";
  EXPECT_NE(body.find(",outcome=\"committed\"} " + std::to_string(kOpened) + "\n"), std::string::npos) << body;
  EXPECT_NE(body.find("clinical_eventstore_owned_partitions{topic=\""), std::string::npos);
  EXPECT_NE(body.find("# TYPE clinical_grpc_server_handling_seconds histogram"), std::string::npos);
  // No patient data in the exposition.
  EXPECT_EQ(body.find("MRN-"), std::string::npos);
  EXPECT_EQ(HttpGet((*service)->metrics_port(), "/").find("404"), 9u);

  stub.reset();
  ASSERT_TRUE((*service)->Terminate(absl::Seconds(30)).has_value());
}

}  // namespace
}  // namespace clinical

namespace clinical {
namespace {

// A reader of another service's topic exposes its consume lag: the scheduling service's
// case directory reaches lag 0 on every partition once it has read the cases opened.
TEST(OperationsTest, ReaderLagOfTheSchedulingCaseDirectoryFallsToZero) {
  const std::string case_topic = testing::UniqueName("clinical.case.lag");
  auto cases = ServiceProcess::Start(ServiceLaunch{
      "case",
      {"--case-topic-partitions=3", "--case-topic=" + case_topic,
       "--writer-id=" + testing::UniqueName("case-service.lag")}});
  ASSERT_TRUE(cases.ok()) << cases.status();
  auto scheduling = ServiceProcess::Start(ServiceLaunch{
      "scheduling",
      {"--scheduling-topic=" + testing::UniqueName("clinical.scheduling.lag"), "--case-topic=" + case_topic,
       "--writer-id=" + testing::UniqueName("scheduling-service.lag")}});
  ASSERT_TRUE(scheduling.ok()) << scheduling.status();

  auto stub = v1::CaseService::NewStub((*cases)->NewChannel());
  constexpr int kOpened = 6;
  for (int i = 0; i < kOpened; ++i) {
    grpc::ClientContext context;
    Identify(context);
    v1::OpenCaseResponse response;
    ASSERT_TRUE(stub->OpenCase(&context, Intake(testing::UniqueName("lag")), &response).ok());
  }
  const std::string reader = "reader=\"case-directory\",topic=\"" + case_topic + "\"";
  std::string body;
  const bool caught_up = testing::WaitUntil(
      [&] {
        const std::string response = HttpGet((*scheduling)->metrics_port(), "/metrics");
        body = response.substr(std::min(response.size(), response.find("\r\n\r\n") + 4));
        if (SampleValue(body, "clinical_reader_entities{" + reader + "}") != kOpened) return false;
        for (int p = 0; p < 3; ++p) {
          const std::string series =
              "clinical_reader_lag_records{" + reader + ",partition=\"" + std::to_string(p) + "\"}";
          if (SampleValue(body, series) != 0) return false;
        }
        return true;
      },
      absl::Seconds(30));
  EXPECT_TRUE(caught_up) << body;
  EXPECT_NE(body.find("# TYPE clinical_reader_lag_records gauge"), std::string::npos) << body;

  stub.reset();
  ASSERT_TRUE((*scheduling)->Terminate(absl::Seconds(30)).has_value());
  ASSERT_TRUE((*cases)->Terminate(absl::Seconds(30)).has_value());
}

}  // namespace
}  // namespace clinical

namespace clinical {
namespace {

// The audit service reports ready only once it has chained every existing record of its
// source topics: right at readiness, its consume lag is 0 (commit markers are not counted
// as records) and everything written before it started is chained.
TEST(OperationsTest, AuditIsReadyOnlyOnceCaughtUpWithItsSources) {
  const std::string case_topic = testing::UniqueName("clinical.case.ready");
  auto cases = ServiceProcess::Start(ServiceLaunch{
      "case",
      {"--case-topic-partitions=3", "--case-topic=" + case_topic,
       "--writer-id=" + testing::UniqueName("case-service.ready")}});
  ASSERT_TRUE(cases.ok()) << cases.status();
  auto stub = v1::CaseService::NewStub((*cases)->NewChannel());
  constexpr int kOpened = 30;
  for (int i = 0; i < kOpened; ++i) {
    grpc::ClientContext context;
    Identify(context);
    v1::OpenCaseResponse response;
    ASSERT_TRUE(stub->OpenCase(&context, Intake(testing::UniqueName("ready")), &response).ok());
  }

  // The access topic exists before the audit service starts (as in a deployment), so the
  // chains it follows are known: the case topic's 3 partitions and the access topic's 12.
  const std::string access_topic = testing::UniqueName("clinical.access.ready");
  testing::CreateTopic(access_topic, 12);
  auto audit = ServiceProcess::Start(ServiceLaunch{
      "audit",
      {"--audit-source-topics=" + case_topic,
       "--access-topic=" + access_topic,
       "--audit-topic=" + testing::UniqueName("clinical.audit.ready"),
       "--audit-key-root=" + testing::UniqueName("audit.ready")}});
  ASSERT_TRUE(audit.ok()) << audit.status();
  const std::string response = HttpGet((*audit)->metrics_port(), "/metrics");
  const std::string body = response.substr(std::min(response.size(), response.find("\r\n\r\n") + 4));
  EXPECT_EQ(SampleValue(body, "clinical_audit_consumer_lag_records"), 0) << body;
  EXPECT_EQ(SampleValue(body, "clinical_audit_chains"), 3 + 12) << body;
  EXPECT_EQ(SampleValue(body, "clinical_audit_records_chained_total"), kOpened) << body;
  EXPECT_NE((*audit)->process().WaitForLine(
                [](const std::string& l) { return l.find("\"msg\":\"audit log caught up\"") != std::string::npos; },
                absl::Seconds(1)),
            std::nullopt);

  stub.reset();
  ASSERT_TRUE((*audit)->Terminate(absl::Seconds(30)).has_value());
  ASSERT_TRUE((*cases)->Terminate(absl::Seconds(30)).has_value());
}

}  // namespace
}  // namespace clinical

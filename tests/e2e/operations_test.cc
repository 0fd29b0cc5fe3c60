// Operational behaviour of a writing service as a real process: SIGTERM under load drains
// in-flight calls, exits 0 and loses nothing acknowledged; /metrics exposes the documented
// series with values that match what was done.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clinical/case/v1/case_service.grpc.pb.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/subprocess.h"
#include "clinical/testing/wait.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace clinical {
namespace {

namespace v1 = ::clinical::case_::v1;
using testing::Subprocess;

// The port a JSON log line with msg `message` announces, or 0.
int AnnouncedPort(const std::string& line, const std::string& message) {
  auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || parsed.value("msg", "") != message) return 0;
  return parsed.value("port", 0);
}

struct RunningService {
  std::unique_ptr<Subprocess> process;
  std::unique_ptr<v1::CaseService::Stub> stub;
  int metrics_port = 0;
};

// Starts the case service on its own topic; `grace` bounds its drain on SIGTERM.
RunningService StartCaseService(const std::string& topic, const std::string& writer_id) {
  RunningService running;
  auto process = Subprocess::Start(
      {testing::BinaryPath("services/case/case_service"), "--grpc-port=0", "--metrics-port=0",
       "--shutdown-grace=10s", "--case-topic-partitions=3", "--case-topic=" + topic,
       "--writer-id=" + writer_id, "--kafka-bootstrap=" + testing::Platform::Get().kafka_bootstrap});
  EXPECT_TRUE(process.ok()) << process.status();
  if (!process.ok()) return running;
  running.process = std::move(*process);
  auto grpc_line = running.process->WaitForLine(
      [](const std::string& l) { return AnnouncedPort(l, "listening") > 0; }, absl::Seconds(90));
  auto metrics_line = running.process->WaitForLine(
      [](const std::string& l) { return AnnouncedPort(l, "metrics listening") > 0; }, absl::Seconds(5));
  EXPECT_TRUE(grpc_line.has_value() && metrics_line.has_value())
      << absl::StrJoin(running.process->Lines(), "\n");
  if (!grpc_line || !metrics_line) return running;
  running.metrics_port = AnnouncedPort(*metrics_line, "metrics listening");
  running.stub = v1::CaseService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", AnnouncedPort(*grpc_line, "listening")),
                          grpc::InsecureChannelCredentials()));
  return running;
}

void Identify(grpc::ClientContext& context) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  context.AddMetadata("x-clinical-user", "intake-1");
  context.AddMetadata("x-clinical-role", "case_manager");
  context.AddMetadata("x-clinical-tenant", "tenant-ops");
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

TEST(OperationsTest, SigtermUnderLoadDrainsInFlightCallsExitsZeroAndLosesNothing) {
  const std::string topic = testing::UniqueName("ops-case");
  const std::string writer = testing::UniqueName("ops-writer");
  RunningService service = StartCaseService(topic, writer);
  ASSERT_NE(service.stub, nullptr);

  constexpr int kClients = 8;
  std::mutex mutex;
  std::set<std::string> acknowledged;  // case ids the service confirmed
  std::atomic<int> internal_errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; !stop; ++i) {
        grpc::ClientContext context;
        Identify(context);
        v1::OpenCaseResponse response;
        const grpc::Status status =
            service.stub->OpenCase(&context, Intake(absl::StrCat("ops-", c, "-", i)), &response);
        if (status.ok()) {
          std::lock_guard<std::mutex> lock(mutex);
          acknowledged.insert(response.case_id());
        } else {
          // After SIGTERM the server refuses new calls (UNAVAILABLE); nothing else is fine.
          if (status.error_code() != grpc::StatusCode::UNAVAILABLE &&
              status.error_code() != grpc::StatusCode::CANCELLED) {
            ++internal_errors;
          }
          return;
        }
      }
    });
  }
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        std::lock_guard<std::mutex> lock(mutex);
        return acknowledged.size() >= 40;
      },
      absl::Seconds(60)));
  service.process->Signal(SIGTERM);
  auto exit_status = service.process->Wait(absl::Seconds(30));
  stop = true;
  for (auto& client : clients) client.join();
  ASSERT_TRUE(exit_status.has_value()) << "no exit within the grace period";
  ASSERT_TRUE(WIFEXITED(*exit_status));
  EXPECT_EQ(WEXITSTATUS(*exit_status), 0);
  EXPECT_EQ(internal_errors, 0);
  EXPECT_TRUE(service.process
                  ->WaitForLine([](const std::string& l) { return l.find("\"msg\":\"stopped\"") != std::string::npos; },
                                absl::Seconds(1))
                  .has_value());

  // Every acknowledged case is there after a restart.
  RunningService restarted = StartCaseService(topic, writer);
  ASSERT_NE(restarted.stub, nullptr);
  for (const std::string& case_id : acknowledged) {
    grpc::ClientContext context;
    Identify(context);
    v1::GetCaseRequest request;
    request.set_case_id(case_id);
    v1::GetCaseResponse response;
    const grpc::Status status = restarted.stub->GetCase(&context, request, &response);
    EXPECT_TRUE(status.ok()) << "acknowledged case lost: " << status.error_message();
  }
  restarted.process->Signal(SIGTERM);
  ASSERT_TRUE(restarted.process->Wait(absl::Seconds(30)).has_value());
}

TEST(OperationsTest, MetricsEndpointExposesTheDocumentedSeriesWithMatchingValues) {
  RunningService service = StartCaseService(testing::UniqueName("metrics-case"),
                                            testing::UniqueName("metrics-writer"));
  ASSERT_NE(service.stub, nullptr);
  constexpr int kOpened = 5;
  for (int i = 0; i < kOpened; ++i) {
    grpc::ClientContext context;
    Identify(context);
    v1::OpenCaseResponse response;
    ASSERT_TRUE(service.stub->OpenCase(&context, Intake(absl::StrCat("m-", i)), &response).ok());
  }
  {
    grpc::ClientContext context;
    Identify(context);
    v1::GetCaseRequest request;
    request.set_case_id("00000000-0000-4000-8000-000000000000");
    v1::GetCaseResponse response;
    EXPECT_EQ(service.stub->GetCase(&context, request, &response).error_code(), grpc::StatusCode::NOT_FOUND);
  }

  const std::string response = HttpGet(service.metrics_port, "/metrics");
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
  EXPECT_NE(body.find(",outcome=\"committed\"} " + std::to_string(kOpened) + "\n"), std::string::npos) << body;
  EXPECT_NE(body.find("clinical_eventstore_owned_partitions{topic=\""), std::string::npos);
  EXPECT_NE(body.find("# TYPE clinical_grpc_server_handling_seconds histogram"), std::string::npos);
  // No patient data in the exposition.
  EXPECT_EQ(body.find("MRN-"), std::string::npos);
  EXPECT_EQ(HttpGet(service.metrics_port, "/").find("404"), 9u);

  service.process->Signal(SIGTERM);
  ASSERT_TRUE(service.process->Wait(absl::Seconds(30)).has_value());
}

}  // namespace
}  // namespace clinical

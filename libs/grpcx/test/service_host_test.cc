#include "clinical/grpcx/service_host.h"

#include <sstream>
#include <thread>

#include "clinical/grpcx/shutdown_signal.h"
#include "../src/rpc_observer.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"

namespace clinical::grpcx {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

grpc::Status CheckHealth(Health::Stub& stub, HealthCheckResponse* response,
                         const std::string& service = "") {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  HealthCheckRequest request;
  request.set_service(service);
  return stub.Check(&context, request, response);
}

TEST(ServiceHostTest, LivenessIsServingWhileReadinessIsHeld) {
  std::ostringstream log;
  logging::Logger logger("test", log);
  ServiceHost host("test", ServerOptions{}, logger);
  host.HoldReadiness();
  EXPECT_TRUE(host.readiness_held());
  ASSERT_TRUE(host.Start().ok());
  auto stub = Health::NewStub(
      grpc::CreateChannel(host.address(), grpc::InsecureChannelCredentials()));
  HealthCheckResponse response;
  ASSERT_TRUE(CheckHealth(*stub, &response, ServiceHost::kLivenessService).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING) << "alive while catching up";
  ASSERT_TRUE(CheckHealth(*stub, &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING) << "not ready while held";

  // Readiness granted from another thread (a projection that has caught up).
  std::thread caught_up([&] { host.SetServing(true); });
  caught_up.join();
  ASSERT_TRUE(CheckHealth(*stub, &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  // Falling behind again takes readiness away but leaves liveness alone.
  host.SetServing(false);
  ASSERT_TRUE(CheckHealth(*stub, &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  ASSERT_TRUE(CheckHealth(*stub, &response, ServiceHost::kLivenessService).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  host.Shutdown();
}

TEST(ServiceHostTest, ReadinessGrantedBeforeStartAppliesAtStart) {
  std::ostringstream log;
  logging::Logger logger("test", log);
  ServiceHost host("test", ServerOptions{}, logger);
  host.SetServing(true);
  ASSERT_TRUE(host.Start().ok());
  auto stub = Health::NewStub(
      grpc::CreateChannel(host.address(), grpc::InsecureChannelCredentials()));
  HealthCheckResponse response;
  ASSERT_TRUE(CheckHealth(*stub, &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  host.Shutdown();
}

TEST(ServiceHostTest, ReportsNotServingUntilReadyThenServing) {
  std::ostringstream log;
  logging::Logger logger("test", log);
  ServiceHost host("test", ServerOptions{}, logger);
  ASSERT_TRUE(host.Start().ok());
  ASSERT_GT(host.port(), 0);

  auto stub = Health::NewStub(
      grpc::CreateChannel(host.address(), grpc::InsecureChannelCredentials()));
  HealthCheckResponse response;
  ASSERT_TRUE(CheckHealth(*stub, &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);

  host.SetServing(true);
  ASSERT_TRUE(CheckHealth(*stub, &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  host.Shutdown();
  EXPECT_FALSE(CheckHealth(*stub, &response).ok()) << "a stopped server must refuse calls";
  EXPECT_NE(log.str().find("\"port\":" + std::to_string(host.port())), std::string::npos);
}

TEST(ServiceHostTest, StartFailsWithUnavailableWhenPortIsTaken) {
  std::ostringstream log;
  logging::Logger logger("test", log);
  ServiceHost first("first", ServerOptions{}, logger);
  ASSERT_TRUE(first.Start().ok());
  ServerOptions same_port;
  same_port.port = first.port();
  ServiceHost second("second", same_port, logger);
  EXPECT_EQ(second.Start().code(), absl::StatusCode::kUnavailable);
}

TEST(ServiceHostTest, CountsAndTimesEveryRpcByMethodAndCode) {
  std::ostringstream log;
  logging::Logger logger("test", log, logging::Level::kDebug);
  ServiceHost host("test", ServerOptions{}, logger);
  ASSERT_TRUE(host.Start().ok());
  host.SetServing(true);
  auto stub = Health::NewStub(
      grpc::CreateChannel(host.address(), grpc::InsecureChannelCredentials()));
  HealthCheckResponse response;
  ASSERT_TRUE(CheckHealth(*stub, &response).ok());
  ASSERT_TRUE(CheckHealth(*stub, &response).ok());
  grpc::ClientContext traced;
  traced.AddMetadata("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  grpc::health::v1::HealthCheckRequest unknown;
  unknown.set_service("no.such.Service");
  EXPECT_EQ(stub->Check(&traced, unknown, &response).error_code(), grpc::StatusCode::NOT_FOUND);
  host.Shutdown();

  const std::string text = host.metrics().Render();
  EXPECT_NE(text.find("clinical_grpc_server_handled_total{grpc_service=\"grpc.health.v1.Health\","
                      "grpc_method=\"Check\",grpc_code=\"OK\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("grpc_code=\"NOT_FOUND\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("clinical_grpc_server_handling_seconds_count{grpc_service=\"grpc.health.v1.Health\","
                      "grpc_method=\"Check\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(log.str().find("\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\""), std::string::npos);
}

TEST(RpcObserverTest, ExtractsTheTraceIdFromTraceparent) {
  EXPECT_EQ(internal::TraceIdOf("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(internal::TraceIdOf("garbage"), "");
  EXPECT_EQ(internal::TraceIdOf("00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01"), "");
}

TEST(ShutdownSignalTest, RequestWakesWaiters) {
  ShutdownSignal shutdown;
  EXPECT_FALSE(shutdown.WaitFor(absl::Milliseconds(10)));
  shutdown.Request();
  EXPECT_TRUE(shutdown.WaitFor(absl::Seconds(1)));
  EXPECT_EQ(shutdown.signal_number(), 0);
}

}  // namespace
}  // namespace clinical::grpcx

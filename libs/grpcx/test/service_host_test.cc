#include "clinical/grpcx/service_host.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "clinical/grpcx/shutdown_signal.h"
#include "../src/rpc_observer.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "gtest/gtest.h"
#include "secure_test_server.h"

namespace clinical::grpcx {
namespace {

using testing::TestIssuer;
using testing::TestPki;

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// A host as every service runs one: mutual TLS, the Authenticator in front.
struct SecureHost {
  explicit SecureHost(logging::Logger& logger, ServerOptions options = {}) {
    const TlsFiles tls = options.tls.cert_file.empty() ? pki.Workload("case") : options.tls;
    options.tls = tls;
    host = std::make_unique<ServiceHost>("test", options, logger);
    host->SetAuthenticator(testing::MakeAuthenticator(issuer, nullptr, logger, host->metrics()));
  }
  std::unique_ptr<Health::Stub> HealthStub() {
    return Health::NewStub(testing::Channel(host->address(), pki.Workload("test-client")));
  }
  TestPki pki;
  TestIssuer issuer;
  std::unique_ptr<ServiceHost> host;
};

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
  SecureHost secure(logger);
  ServiceHost& host = *secure.host;
  host.HoldReadiness();
  EXPECT_TRUE(host.readiness_held());
  ASSERT_TRUE(host.Start().ok());
  auto stub = secure.HealthStub();
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
  SecureHost secure(logger);
  ServiceHost& host = *secure.host;
  host.SetServing(true);
  ASSERT_TRUE(host.Start().ok());
  auto stub = secure.HealthStub();
  HealthCheckResponse response;
  ASSERT_TRUE(CheckHealth(*stub, &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  host.Shutdown();
}

TEST(ServiceHostTest, ReportsNotServingUntilReadyThenServing) {
  std::ostringstream log;
  logging::Logger logger("test", log);
  SecureHost secure(logger);
  ServiceHost& host = *secure.host;
  ASSERT_TRUE(host.Start().ok());
  ASSERT_GT(host.port(), 0);

  auto stub = secure.HealthStub();
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
  SecureHost first(logger);
  ASSERT_TRUE(first.host->Start().ok());
  ServerOptions same_port;
  same_port.port = first.host->port();
  SecureHost second(logger, same_port);
  EXPECT_EQ(second.host->Start().code(), absl::StatusCode::kUnavailable);
}

TEST(ServiceHostTest, NeverServesWithoutAnAuthenticatorOrWithUnusableTlsFiles) {
  std::ostringstream log;
  logging::Logger logger("test", log);
  TestPki pki;
  ServerOptions options;
  options.tls = pki.Workload("case");
  ServiceHost unauthenticated("test", options, logger);
  EXPECT_EQ(unauthenticated.Start().code(), absl::StatusCode::kFailedPrecondition);

  TestIssuer issuer;
  for (auto broken : {&TlsFiles::cert_file, &TlsFiles::key_file, &TlsFiles::ca_file}) {
    ServerOptions missing = options;
    missing.tls.*broken = "/nonexistent/file.pem";
    ServiceHost host("test", missing, logger);
    host.SetAuthenticator(testing::MakeAuthenticator(issuer, nullptr, logger, host.metrics()));
    EXPECT_EQ(host.Start().code(), absl::StatusCode::kFailedPrecondition);
  }
  // A key that is not the certificate's.
  ServerOptions mismatched = options;
  mismatched.tls.key_file = pki.Workload("views").key_file;
  ServiceHost host("test", mismatched, logger);
  host.SetAuthenticator(testing::MakeAuthenticator(issuer, nullptr, logger, host.metrics()));
  EXPECT_EQ(host.Start().code(), absl::StatusCode::kFailedPrecondition);
}

// Transport security: no plaintext, no client without a certificate of the trusted CA.
TEST(ServiceHostTest, RefusesPlaintextClientsAndCertificatesOfAnotherCa) {
  std::ostringstream log;
  logging::Logger logger("test", log);
  SecureHost secure(logger);
  ASSERT_TRUE(secure.host->Start().ok());
  secure.host->SetServing(true);
  HealthCheckResponse response;
  ASSERT_TRUE(CheckHealth(*secure.HealthStub(), &response).ok()) << "the trusted client gets in";

  auto plaintext = Health::NewStub(grpc::CreateChannel(secure.host->address(), grpc::InsecureChannelCredentials()));
  EXPECT_EQ(CheckHealth(*plaintext, &response).error_code(), grpc::StatusCode::UNAVAILABLE);

  TestPki other("another CA");
  auto foreign = Health::NewStub(testing::Channel(secure.host->address(), other.Workload("test-client")));
  EXPECT_EQ(CheckHealth(*foreign, &response).error_code(), grpc::StatusCode::UNAVAILABLE);

  // A client that trusts the server but presents no certificate at all.
  TlsFiles anonymous;
  anonymous.ca_file = secure.pki.ca_file();
  grpc::experimental::TlsChannelCredentialsOptions no_identity;
  no_identity.set_certificate_provider(
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(secure.pki.ca_file(), 1));
  no_identity.watch_root_certs();
  auto uncertified = Health::NewStub(
      grpc::CreateChannel(secure.host->address(), grpc::experimental::TlsCredentials(no_identity)));
  EXPECT_EQ(CheckHealth(*uncertified, &response).error_code(), grpc::StatusCode::UNAVAILABLE);
}

// Rotation: the server re-reads its certificate files; new connections get the new one.
TEST(ServiceHostTest, PicksUpARotatedCertificateWithoutARestart) {
  std::ostringstream log;
  logging::Logger logger("test", log);
  TestPki pki;
  ServerOptions options;
  options.tls = pki.Workload("case");  // reload_interval 1 s
  SecureHost secure(logger, options);
  ASSERT_TRUE(secure.host->Start().ok());
  auto presented = [&] {
    auto channel = testing::Channel(secure.host->address(), pki.Workload("test-client"));
    auto stub = Health::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    HealthCheckResponse response;
    EXPECT_TRUE(stub->Check(&context, HealthCheckRequest(), &response).ok());
    const auto certs = context.auth_context()->FindPropertyValues("x509_pem_cert");
    return certs.empty() ? std::string() : std::string(certs[0].data(), certs[0].size());
  };
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  EXPECT_EQ(presented(), read(options.tls.cert_file));

  // A new certificate and key replace the files (renamed into place, as a secret mount does).
  const TlsFiles renewed = pki.Workload("case");
  std::filesystem::rename(renewed.key_file, options.tls.key_file);
  std::filesystem::rename(renewed.cert_file, options.tls.cert_file);
  const std::string expected = read(options.tls.cert_file);
  std::string seen;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while ((seen = presented()) != expected && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(seen, expected) << "the server still presents the old certificate";
}

TEST(ServiceHostTest, CountsAndTimesEveryRpcByMethodAndCode) {
  std::ostringstream log;
  logging::Logger logger("test", log, logging::Level::kDebug);
  SecureHost secure(logger);
  ServiceHost& host = *secure.host;
  ASSERT_TRUE(host.Start().ok());
  host.SetServing(true);
  auto stub = secure.HealthStub();
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

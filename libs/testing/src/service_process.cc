#include "clinical/testing/service_process.h"

#include <signal.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clinical/testing/identity.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/wait.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "nlohmann/json.hpp"

namespace clinical::testing {

std::map<std::string, std::string> PlatformEnvironment() {
  const Platform& platform = Platform::Get();
  const kafka::Cluster& kafka = platform.kafka_admin;
  return {{"CLINICAL_KAFKA_BOOTSTRAP", kafka.bootstrap},
          {"CLINICAL_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"},
          {"CLINICAL_KAFKA_SASL_MECHANISM", kafka.security.sasl_mechanism},
          {"CLINICAL_KAFKA_CA_FILE", kafka.security.ca_file},
          {"CLINICAL_REDIS_HOST", platform.redis_admin.host},
          {"CLINICAL_REDIS_PORT", std::to_string(platform.redis_admin.port)}};
}

std::map<std::string, std::string> ServiceEnvironment(const std::string& service) {
  // The service's own principal, never the admin: what a test proves, it proves under the
  // service's ACLs (deploy/local/kafka/acls.txt, the Redis users of deploy/local/lib/redis.sh).
  std::map<std::string, std::string> env = Platform::Get().ClientEnvironment(service);
  // How tokens are verified: the platform's identity provider and claim names.
  for (const auto& [key, value] : Platform::Get().exports) {
    if (key.starts_with("CLINICAL_OIDC_")) env[key] = value;
  }
  // The service's own TLS identity (its certificate carries its SPIFFE ID).
  const grpcx::TlsFiles tls = ServiceTls(service);
  env["CLINICAL_TLS_CERT_FILE"] = tls.cert_file;
  env["CLINICAL_TLS_KEY_FILE"] = tls.key_file;
  env["CLINICAL_TLS_CA_FILE"] = tls.ca_file;
  return env;
}

int AnnouncedPort(const std::string& line, const std::string& message) {
  auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || parsed.value("msg", "") != message) return 0;
  return parsed.value("port", 0);
}

absl::StatusOr<std::unique_ptr<ServiceProcess>> ServiceProcess::Start(const ServiceLaunch& launch) {
  std::vector<std::string> argv = {
      BinaryPath(absl::StrCat("services/", launch.service, "/", launch.service, "_service")),
      "--grpc-port=0", "--metrics-port=0",
      absl::StrCat("--shutdown-grace=", absl::ToInt64Seconds(launch.shutdown_grace), "s")};
  argv.insert(argv.end(), launch.args.begin(), launch.args.end());
  std::map<std::string, std::string> env = ServiceEnvironment(launch.service);
  for (const auto& [key, value] : launch.env) env[key] = value;

  std::unique_ptr<ServiceProcess> running(new ServiceProcess());
  auto process = Subprocess::Start(argv, env);
  if (!process.ok()) return process.status();
  running->process_ = std::move(*process);
  const absl::Time deadline = absl::Now() + launch.ready_timeout;
  auto output = [&] { return absl::StrJoin(running->process_->Lines(), "\n"); };

  // The metrics server starts before the gRPC server (RunService), so its line comes first.
  auto metrics_line = running->process_->WaitForLine(
      [](const std::string& l) { return AnnouncedPort(l, "metrics listening") > 0; },
      deadline - absl::Now());
  auto grpc_line = running->process_->WaitForLine(
      [](const std::string& l) { return AnnouncedPort(l, "listening") > 0; }, deadline - absl::Now());
  if (!metrics_line || !grpc_line) {
    return absl::DeadlineExceededError(
        absl::StrCat(launch.service, " did not start listening; output:\n", output()));
  }
  running->metrics_port_ = AnnouncedPort(*metrics_line, "metrics listening");
  running->address_ = absl::StrCat("127.0.0.1:", AnnouncedPort(*grpc_line, "listening"));

  auto health = grpc::health::v1::Health::NewStub(running->NewChannel());
  const bool ready = WaitUntil(
      [&] {
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
        grpc::health::v1::HealthCheckResponse response;
        return health->Check(&context, grpc::health::v1::HealthCheckRequest(), &response).ok() &&
               response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
      },
      deadline - absl::Now());
  if (!ready) {
    return absl::DeadlineExceededError(
        absl::StrCat(launch.service, " did not become ready; output:\n", output()));
  }
  return running;
}

std::shared_ptr<grpc::Channel> ServiceProcess::NewChannel() const { return SecureChannel(address_); }

std::optional<int> ServiceProcess::Terminate(absl::Duration timeout) {
  process_->Signal(SIGTERM);
  return process_->Wait(timeout);
}

}  // namespace clinical::testing

// clinical_health_check HOST:PORT [SERVICE] [--timeout-ms=N]
//
// Asks a service's standard gRPC health endpoint whether it is serving; exits 0 if it is,
// 1 if it is not or does not answer in time, 2 on a usage error. Made for container
// HEALTHCHECKs and Kubernetes exec probes, where no other gRPC client is installed.
//
// Services accept only mutual TLS, so the check connects with the container's own TLS
// identity, from the same environment the service reads: CLINICAL_TLS_CERT_FILE,
// CLINICAL_TLS_KEY_FILE, CLINICAL_TLS_CA_FILE. Health needs no token.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "clinical/grpcx/tls.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"

int main(int argc, char** argv) {
  std::string address, service;
  long timeout_ms = 2000;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("--timeout-ms=")) {
      timeout_ms = std::strtol(argv[i] + 13, nullptr, 10);
    } else if (address.empty()) {
      address = arg;
    } else {
      service = arg;
    }
  }
  if (address.empty() || timeout_ms <= 0) {
    std::fprintf(stderr, "usage: clinical_health_check HOST:PORT [SERVICE] [--timeout-ms=N]\n");
    return 2;
  }
  auto env = [](const char* name) {
    const char* value = std::getenv(name);
    return std::string(value == nullptr ? "" : value);
  };
  clinical::grpcx::TlsFiles tls;
  tls.cert_file = env("CLINICAL_TLS_CERT_FILE");
  tls.key_file = env("CLINICAL_TLS_KEY_FILE");
  tls.ca_file = env("CLINICAL_TLS_CA_FILE");
  if (const absl::Status usable = clinical::grpcx::CheckTlsFiles(tls); !usable.ok()) {
    std::fprintf(stderr, "not healthy: TLS identity unusable (%s)\n", std::string(usable.message()).c_str());
    return 1;
  }
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, clinical::grpcx::ChannelCredentials(tls)));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    std::fprintf(stderr, "not healthy: %s\n", status.error_message().c_str());
    return 1;
  }
  const bool serving = response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  std::printf("%s\n", serving ? "SERVING" : "NOT_SERVING");
  return serving ? 0 : 1;
}

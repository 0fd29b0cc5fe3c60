// clinical_health_check HOST:PORT [SERVICE] [--timeout-ms=N]
//
// Asks a service's standard gRPC health endpoint whether it is serving; exits 0 if it is,
// 1 if it is not or does not answer in time, 2 on a usage error. Made for container
// HEALTHCHECKs, where no other gRPC client is installed.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

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
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
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

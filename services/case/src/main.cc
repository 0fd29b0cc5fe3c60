// The case service: owns Case aggregates (lifecycle, assignment, assessments, care plans, consent, closure).
//
// Until its API lands (see the project's issues) it serves gRPC health checking and
// server reflection only, with the platform's standard config and graceful shutdown.
#include "clinical/grpcx/service_host.h"
#include "clinical/grpcx/shutdown_signal.h"

int main(int argc, char** argv) {
  // First: block SIGTERM/SIGINT before any thread exists (see ShutdownSignal).
  clinical::grpcx::ShutdownSignal shutdown;
  clinical::grpcx::ServiceSpec spec;
  spec.name = "case";
  spec.default_port = 50051;
  return clinical::grpcx::RunService(spec, shutdown, argc, argv);
}

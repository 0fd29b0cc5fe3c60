// A process serving only clinical.audit.v1.AuditReplayService, the way the audit service's
// main wires it (ReplayOptions + SetUpReplay), for the replay's integration tests: they
// run it as a real process over real gRPC without depending on the rest of the audit
// service.
#include "clinical/grpcx/service_host.h"
#include "clinical/grpcx/shutdown_signal.h"
#include "replay_component.h"

int main(int argc, char** argv) {
  clinical::grpcx::ShutdownSignal shutdown;
  clinical::grpcx::ServiceSpec spec;
  spec.name = "audit-replay-test";
  spec.default_port = 0;
  spec.extra_options = clinical::audit::replay::ReplayOptions();
  spec.setup = clinical::audit::replay::SetUpReplay;
  return clinical::grpcx::RunService(spec, shutdown, argc, argv);
}

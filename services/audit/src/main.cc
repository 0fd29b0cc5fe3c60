// The audit service: the hash-chained audit log of every event and access record, its
// signed checkpoints, verification, queries and FHIR export (docs/audit-service.md).
#include "audit_component.h"
#include "clinical/grpcx/service_host.h"
#include "clinical/grpcx/shutdown_signal.h"
#include "replay_component.h"

int main(int argc, char** argv) {
  // First: block SIGTERM/SIGINT before any thread exists (see ShutdownSignal).
  clinical::grpcx::ShutdownSignal shutdown;
  clinical::grpcx::ServiceSpec spec = clinical::audit::AuditServiceSpec();
  // Time travel and disclosures (docs/audit-replay.md).
  clinical::audit::AddComponent(
      spec, {clinical::audit::replay::ReplayOptions(), clinical::audit::replay::SetUpReplay});
  return clinical::grpcx::RunService(spec, shutdown, argc, argv);
}

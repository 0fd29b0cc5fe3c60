// The case service: owns the Case aggregate (intake, lifecycle, assignment, notes, holds,
// escalation, closure), served as clinical.case.v1.CaseService. See docs/case-service.md.
#include "case_component.h"
#include "clinical/grpcx/service_host.h"
#include "clinical/grpcx/shutdown_signal.h"

int main(int argc, char** argv) {
  // First: block SIGTERM/SIGINT before any thread exists (see ShutdownSignal).
  clinical::grpcx::ShutdownSignal shutdown;
  return clinical::grpcx::RunService(clinical::case_service::CaseServiceSpec(), shutdown, argc,
                                     argv);
}

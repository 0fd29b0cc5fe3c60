// The views service: caseload and outcome projections built from the case events in Redis,
// served as clinical.views.v1.ViewsService. See docs/views-service.md.
#include "clinical/grpcx/service_host.h"
#include "clinical/grpcx/shutdown_signal.h"
#include "views_component.h"

int main(int argc, char** argv) {
  // First: block SIGTERM/SIGINT before any thread exists (see ShutdownSignal).
  clinical::grpcx::ShutdownSignal shutdown;
  return clinical::grpcx::RunService(clinical::views::ViewsServiceSpec(), shutdown, argc, argv);
}

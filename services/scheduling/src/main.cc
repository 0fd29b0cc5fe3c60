// The scheduling service: owns calendars and appointments (availability, bookings, recurring
// series, reminders), served as clinical.scheduling.v1.SchedulingService. See
// docs/scheduling-service.md.
#include "clinical/grpcx/service_host.h"
#include "clinical/grpcx/shutdown_signal.h"
#include "scheduling_component.h"

int main(int argc, char** argv) {
  // First: block SIGTERM/SIGINT before any thread exists (see ShutdownSignal).
  clinical::grpcx::ShutdownSignal shutdown;
  return clinical::grpcx::RunService(clinical::scheduling::SchedulingServiceSpec(), shutdown,
                                     argc, argv);
}

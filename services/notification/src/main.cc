// The notification service: turns case and scheduling events into in-app notifications,
// exactly once, served as clinical.notification.v1.NotificationService.
// See docs/notification-service.md.
#include "clinical/grpcx/service_host.h"
#include "clinical/grpcx/shutdown_signal.h"
#include "notification_component.h"

int main(int argc, char** argv) {
  // First: block SIGTERM/SIGINT before any thread exists (see ShutdownSignal).
  clinical::grpcx::ShutdownSignal shutdown;
  return clinical::grpcx::RunService(clinical::notification::NotificationServiceSpec(),
                                     shutdown, argc, argv);
}

#pragma once

#include "clinical/grpcx/service_host.h"

namespace clinical::notification {

// The notification service's wiring for grpcx::RunService: options (Kafka, its topic, the
// case and scheduling topics, writer id, rule book file), and setup: ensure its own topic
// and make sure the source topics exist (created with the documented spec if their owners
// have not created them yet, so no service has to start first), own every partition of its
// topic, replay it into memory (the inboxes), start one follower per source topic, serve.
grpcx::ServiceSpec NotificationServiceSpec();

}  // namespace clinical::notification

#pragma once

#include "clinical/grpcx/service_host.h"

namespace clinical::scheduling {

// The scheduling service's wiring for grpcx::RunService: options (Kafka, its topic, the
// case topic, writer id, reminder offsets) and setup: ensure its topic, make sure the case
// topic exists (created with the documented spec if the case service has not created it
// yet, so neither service has to start first), own every partition, replay the log into
// memory, start the case-topic reader and the reminder scheduler, then serve.
grpcx::ServiceSpec SchedulingServiceSpec();

}  // namespace clinical::scheduling

#pragma once

#include "clinical/grpcx/service_host.h"

namespace clinical::scheduling {

// The scheduling service's wiring for grpcx::RunService: options (Kafka, its topic, the
// case topic, writer id, reminder offsets) and setup: ensure its own topic, own every
// partition, replay the log into memory, start the case-topic reader (which waits for the
// case service's topic in the background if it does not exist yet) and the reminder
// scheduler, then serve.
grpcx::ServiceSpec SchedulingServiceSpec();

}  // namespace clinical::scheduling

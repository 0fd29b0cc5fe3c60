#pragma once

#include "clinical/grpcx/service_host.h"

namespace clinical::case_service {

// The case service's wiring for grpcx::RunService: its options (Kafka, topic, writer id,
// programs file) and setup (ensure the topic, own every partition, replay the log into
// memory, then serve). Health turns SERVING only after the replay, because RunService
// starts the server after setup returns.
grpcx::ServiceSpec CaseServiceSpec();

}  // namespace clinical::case_service

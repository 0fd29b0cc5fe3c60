#pragma once

// Wiring of the AuditReplayService into the audit service's process.
//
// The audit service's main adds this like its other components
// (clinical::audit::AddComponent(spec, {ReplayOptions(), SetUpReplay})), which declares each
// option once: the Kafka keys (kafka::ClusterOptions: bootstrap, protocol, the audit
// principal's credentials) and the topic names are shared with the audit log.
//   kafka-*               the cluster and the audit service's principal
//   case-topic            default clinical.case.events.v1
//   scheduling-topic      default clinical.scheduling.events.v1
//   replay-read-timeout   bound on each read of a topic by one call (default 30s)
//
// The replay needs nothing at start: it reads the topics per call. A topic that does not
// exist yet (its writer never started) holds no events, so the audit service's health never
// waits on another service; there is nothing to create or to wait for.

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "clinical/config/config.h"
#include "clinical/grpcx/service_host.h"
#include "clinical/logging/logger.h"

namespace clinical::audit::replay {

std::vector<config::Option> ReplayOptions();

// grpcx::ServiceSpec::setup's contract: builds the source and the service, registers the
// service on `host`, and returns what to run after the server stopped (it also keeps the
// service alive until then). INVALID_ARGUMENT for incomplete Kafka settings or a
// non-positive timeout.
absl::StatusOr<std::function<void()>> SetUpReplay(const config::Config& config,
                                                  grpcx::ServiceHost& host,
                                                  logging::Logger& logger);

}  // namespace clinical::audit::replay

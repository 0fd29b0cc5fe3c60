#pragma once

#include <vector>

#include "clinical/config/config.h"
#include "clinical/grpcx/service_host.h"

namespace clinical::audit {

// One part of the audit process: its options and its setup (same contract as
// grpcx::ServiceSpec::setup: register services on the host, return what to run after the
// server stopped).
struct Component {
  std::vector<config::Option> options;
  decltype(grpcx::ServiceSpec::setup) setup;
};

// The audit log: options (Kafka, Redis, source topics, keys, checkpoint cadence) and setup
// (load the keys, start the chainer in the background, serve clinical.audit.v1). Health
// is SERVING without waiting for the chainer: missing source topics are waited for in the
// background, and queries answer from what is chained so far.
Component AuditLogComponent();

// The audit service's spec with the log component; AddComponent adds more (replay).
grpcx::ServiceSpec AuditServiceSpec();
void AddComponent(grpcx::ServiceSpec& spec, Component component);

}  // namespace clinical::audit

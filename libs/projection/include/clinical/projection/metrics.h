#pragma once

#include "clinical/metrics/registry.h"
#include "clinical/projection/projection.h"

namespace clinical::projection {

// Publishes a projection's progress at scrape time (clinical_projection_*): lag per
// partition, events applied, dead letters, Redis/Kafka errors, and whether it is caught up.
// `view` names the projection in the labels. The projection must outlive the registry's use
// of the collector.
metrics::Collector ProjectionMetrics(const Projection& projection, const std::string& view);

}  // namespace clinical::projection

#pragma once

#include "clinical/grpcx/service_host.h"

namespace clinical::views {

// The views service's spec for grpcx::RunService: options and wiring (projection runtime
// over the case topic + the query service).
grpcx::ServiceSpec ViewsServiceSpec();

}  // namespace clinical::views

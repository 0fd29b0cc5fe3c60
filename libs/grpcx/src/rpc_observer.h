#pragma once

#include <memory>
#include <string>

#include "clinical/logging/logger.h"
#include "clinical/metrics/registry.h"
#include "grpcpp/support/server_interceptor.h"

namespace clinical::grpcx::internal {

// Observes every RPC the server handles: counts it by service, method and status code,
// records its latency, and logs it with the caller's W3C trace id (debug level; warn for
// failures on the server's side). Nothing of the request or response body is looked at.
class RpcObserverFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  RpcObserverFactory(metrics::Registry& registry, logging::Logger& logger)
      : registry_(registry), logger_(logger) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;

 private:
  metrics::Registry& registry_;
  logging::Logger& logger_;
};

// "00-<32 hex trace id>-<16 hex span id>-<2 hex flags>" -> the trace id, or "" if malformed.
std::string TraceIdOf(std::string_view traceparent);

}  // namespace clinical::grpcx::internal

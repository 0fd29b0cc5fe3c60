#include "rpc_observer.h"

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clinical/grpcx/caller.h"

namespace clinical::grpcx::internal {
namespace {

using grpc::experimental::InterceptionHookPoints;

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

bool IsServerSide(grpc::StatusCode code) {
  return code == grpc::StatusCode::INTERNAL || code == grpc::StatusCode::UNAVAILABLE ||
         code == grpc::StatusCode::UNKNOWN || code == grpc::StatusCode::DATA_LOSS;
}

class RpcObserver : public grpc::experimental::Interceptor {
 public:
  RpcObserver(std::string method, metrics::Registry& registry, logging::Logger& logger)
      : started_(absl::Now()), registry_(registry), logger_(logger) {
    // "/clinical.case.v1.CaseService/OpenCase"
    const size_t slash = method.rfind('/');
    service_ = slash == std::string::npos || slash == 0 ? "unknown" : method.substr(1, slash - 1);
    method_ = slash == std::string::npos ? method : method.substr(slash + 1);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      const auto* metadata = methods->GetRecvInitialMetadata();
      if (metadata != nullptr) {
        auto it = metadata->find(kTraceparentHeader);
        if (it != metadata->end()) {
          trace_id_ = TraceIdOf(std::string_view(it->second.data(), it->second.size()));
        }
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::StatusCode code = methods->GetSendStatus().error_code();
      const absl::Duration elapsed = absl::Now() - started_;
      const metrics::Labels labels = {{"grpc_service", service_}, {"grpc_method", method_}};
      metrics::Labels with_code = labels;
      with_code.emplace_back("grpc_code", CodeName(code));
      registry_.GetCounter("clinical_grpc_server_handled_total",
                           "RPCs completed by the server, by method and status code.", with_code)
          .Increment();
      registry_.GetHistogram("clinical_grpc_server_handling_seconds",
                             "Time from receiving an RPC to sending its status.", labels)
          .Observe(absl::ToDoubleSeconds(elapsed));
      logger_.Log(IsServerSide(code) ? logging::Level::kWarn : logging::Level::kDebug, "rpc",
                  {{"method", method_},
                   {"code", CodeName(code)},
                   {"ms", absl::ToDoubleMilliseconds(elapsed)},
                   {"trace_id", trace_id_}});
    }
    methods->Proceed();
  }

 private:
  const absl::Time started_;
  metrics::Registry& registry_;
  logging::Logger& logger_;
  std::string service_, method_, trace_id_;
};

}  // namespace

std::string TraceIdOf(std::string_view traceparent) {
  // version "00": 2 + 1 + 32 + 1 + 16 + 1 + 2 characters.
  if (traceparent.size() < 55 || traceparent[2] != '-' || traceparent[35] != '-') return "";
  const std::string_view id = traceparent.substr(3, 32);
  for (char c : id) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return "";
  }
  return std::string(id);
}

grpc::experimental::Interceptor* RpcObserverFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  // Owned and deleted by gRPC once the RPC ends.
  return new RpcObserver(info->method() != nullptr ? info->method() : "", registry_, logger_);
}

}  // namespace clinical::grpcx::internal

#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "clinical/access/policy.h"
#include "clinical/access/recorder.h"
#include "clinical/grpcx/authenticator.h"
#include "clinical/logging/logger.h"
#include "grpcpp/support/server_interceptor.h"

namespace clinical::grpcx::internal {

// Emits one access record for every call of a method that carries the
// `clinical.common.v1.access` option with a resource type, and holds the response back
// until the recorder acknowledged it (fail closed): when Record() fails, the response
// message is replaced by an empty one and the status becomes UNAVAILABLE. Every other
// method (writes, exempt reads) gets a record only when the call is refused
// (PERMISSION_DENIED, UNAUTHENTICATED, or marked denied by the handler). Who called comes
// from the identity the Authenticator verifies for this call. Calls the Authenticator
// refused never get here: it records those itself.
//
// The record is made at the first outgoing batch of the call: for unary calls the batch
// carrying the response and the status (outcome from the status); for server streams the
// first message, or the status when the stream ends without one. A stream whose record
// fails is cancelled and its messages are emptied.
//
// `recorder` may be null (the service has no Kafka): recorded methods then always fail
// closed. It must outlive the server. Thread-safe.
class AccessInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `authenticator` tells who called (may be null in tests of the recording alone).
  AccessInterceptorFactory(access::Recorder* recorder, const Authenticator* authenticator, logging::Logger& logger);
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;

  access::Recorder* recorder() const { return recorder_; }
  const Authenticator* authenticator() const { return authenticator_; }
  logging::Logger& logger() const { return logger_; }

 private:
  std::optional<access::MethodPolicy> Lookup(const std::string& method);

  access::Recorder* const recorder_;
  const Authenticator* const authenticator_;
  logging::Logger& logger_;
  std::mutex mutex_;
  std::map<std::string, std::optional<access::MethodPolicy>, std::less<>> policies_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace clinical::grpcx::internal

#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "clinical/access/policy.h"
#include "clinical/access/recorder.h"
#include "clinical/grpcx/access_control.h"
#include "clinical/logging/logger.h"
#include "grpcpp/support/server_interceptor.h"

namespace clinical::grpcx::internal {

// The access interceptor of every method (health and reflection aside):
//
//  * registers the call with AccessControl, so the handler's Authorize can decide it and
//    this interceptor can see the decision;
//  * minimum necessary: when the rule that allowed the call names visible_paths, every
//    response message is cut down to them before it leaves;
//  * fail closed on authorization: a call that would end OK (or send a message) without a
//    decision is answered INTERNAL with no data;
//  * records: every call of a method whose access option has a resource type (reads of
//    patient data), every call under an emergency grant, and every refused call
//    (PERMISSION_DENIED, UNAUTHENTICATED, or marked denied by the handler), with the
//    decision's relationship, grant, policy version and masking;
//  * fail closed on recording: a recorded read's response is held back until the recorder
//    acknowledged its record; when Record() fails, the message is emptied and the status
//    becomes UNAVAILABLE.
//
// The record is made at the first outgoing batch of the call: for unary calls the batch
// carrying the response and the status (outcome from the status); for server streams the
// first message, or the status when the stream ends without one. A stream whose record
// fails is cancelled and its messages are emptied.
//
// `recorder` may be null (the service has no Kafka): recorded methods then always fail
// closed. It and `control` must outlive the server. Thread-safe.
class AccessInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  AccessInterceptorFactory(access::Recorder* recorder, AccessControl& control, logging::Logger& logger);
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;

  access::Recorder* recorder() const { return recorder_; }
  AccessControl& control() const { return control_; }
  logging::Logger& logger() const { return logger_; }

 private:
  std::optional<access::MethodPolicy> Lookup(const std::string& method);

  access::Recorder* const recorder_;
  AccessControl& control_;
  logging::Logger& logger_;
  std::mutex mutex_;
  std::map<std::string, std::optional<access::MethodPolicy>, std::less<>> policies_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace clinical::grpcx::internal

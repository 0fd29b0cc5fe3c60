#include "access_interceptor.h"

#include <array>
#include <vector>

#include "absl/time/clock.h"
#include "clinical/access/decision.h"
#include "clinical/access/record.h"
#include "clinical/access/snapshot.h"
#include "clinical/grpcx/authenticator.h"
#include "clinical/grpcx/caller.h"
#include "google/protobuf/message.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "rpc_observer.h"

namespace clinical::grpcx::internal {
namespace {

using grpc::experimental::InterceptionHookPoints;

std::string Header(const grpc::ServerContextBase& context, const char* name) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(name);
  if (it == metadata.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

class AccessInterceptor : public grpc::experimental::Interceptor {
 public:
  AccessInterceptor(AccessInterceptorFactory& factory, grpc::experimental::ServerRpcInfo* info,
                    std::optional<access::MethodPolicy> policy)
      : factory_(factory),
        info_(info),
        policy_(policy.value_or(access::MethodPolicy{})),
        records_every_call_(policy_.records()) {
    for (const auto* paths : {&policy_.policy.case_id_paths(), &policy_.policy.resource_id_paths()}) {
      for (const auto& path : *paths) {
        auto split = access::SplitPath(path);
        if (split.has_value() && split->first == access::PathRoot::kResponse) response_paths_ = true;
      }
    }
    token_ = factory_.control().Begin(info_->server_context(), info_->method(), std::move(policy));
  }
  ~AccessInterceptor() override { factory_.control().Finish(info_->server_context(), token_); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      // gRPC hands over the deserialized request of the method's generated type, which
      // derives from protobuf::Message (single inheritance, so the address is the same).
      const void* request = methods->GetRecvMessage();
      if (request != nullptr) {
        const auto& message = *static_cast<const google::protobuf::Message*>(request);
        access::ExtractIdsFor(message, access::PathRoot::kRequest, policy_.policy.case_id_paths(), case_ids_);
        access::ExtractIdsFor(message, access::PathRoot::kRequest, policy_.policy.resource_id_paths(),
                              resource_ids_);
        // A method without request id paths (a write) still names its case, if it has one.
        access::ExtractIds(message, "case_id", case_ids_);
      }
    }
    const bool sends_metadata =
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA);
    const bool sends_message = methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE);
    const bool sends_status = methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS);

    bool marked_denied = false;
    int code = 0;
    if (sends_status) {
      // The marker is for this interceptor only; it never reaches the client.
      auto* trailers = methods->GetSendTrailingMetadata();
      if (trailers != nullptr && trailers->erase(access::kDeniedTrailer) > 0) marked_denied = true;
      code = static_cast<int>(methods->GetSendStatus().error_code());
    }
    if (sends_metadata || sends_message || sends_status) {
      // The handler has decided by now (it authorizes before it answers anything).
      state_ = factory_.control().StateOf(info_->server_context());
    }
    const access::Decision* decision =
        state_.has_value() && state_->decision.has_value() ? &*state_->decision : nullptr;

    // Nothing leaves a call that was never authorized.
    if (decision == nullptr && (sends_message || (sends_status && code == 0)) && !unauthorized_) {
      unauthorized_ = true;
      factory_.logger().Error("call answered without an authorization decision; refused",
                              {{"method", info_->method() != nullptr ? info_->method() : ""}});
    }
    if (unauthorized_) {
      if (sends_message) EmptyMessage(methods);
      if (sends_status) {
        methods->ModifySendStatus(grpc::Status(grpc::StatusCode::INTERNAL, "the call was not authorized"));
      }
      methods->Proceed();
      return;
    }

    if (sends_message && decision != nullptr && decision->allowed) {
      const bool mask = decision->rule >= 0 && !policy_.policy.allow(decision->rule).visible_paths().empty();
      const bool extract = !recorded_ && response_paths_;
      if (mask || extract) ProcessResponse(methods, mask ? &policy_.policy.allow(decision->rule) : nullptr, extract);
    }

    const bool emergency = decision != nullptr && !decision->emergency_grant_id.empty();
    if ((records_every_call_ || emergency) && !recorded_ && (sends_metadata || sends_message || sends_status)) {
      recorded_ = true;
      failed_closed_ = !Record(code, marked_denied, decision);
    }
    if (!recorded_ && sends_status &&
        access::OutcomeFor(code, marked_denied) == audit::v1::ACCESS_OUTCOME_DENIED) {
      recorded_ = true;
      // Nothing is held back: a refusal carries no data, so its record need not gate it.
      Record(code, marked_denied, decision);
    }
    if (failed_closed_) {
      if (sends_message) EmptyMessage(methods);
      if (sends_status) {
        methods->ModifySendStatus(
            grpc::Status(grpc::StatusCode::UNAVAILABLE, "access record could not be written; retry"));
      } else if (!cancelled_) {
        // A stream: its status comes later; end it now so no data follows.
        cancelled_ = true;
        info_->server_context()->TryCancel();
      }
    }
    methods->Proceed();
  }

 private:
  // Parses the outgoing response (serializing it now instead of in the send path), cuts it
  // down to what `rule` may see, and takes the ids the policy names in what is sent.
  void ProcessResponse(grpc::experimental::InterceptorBatchMethods* methods, const common::v1::AccessRule* rule,
                       bool extract) {
    grpc::ByteBuffer* buffer = methods->GetSerializedSendMessage();
    if (buffer == nullptr) return;
    std::vector<grpc::Slice> slices;
    if (!buffer->Dump(&slices).ok()) return;
    std::string bytes;
    for (const auto& slice : slices) bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    const auto* prototype =
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(policy_.method->output_type());
    if (prototype == nullptr) return;
    std::unique_ptr<google::protobuf::Message> response(prototype->New());
    if (!response->ParseFromString(bytes)) return;
    if (rule != nullptr && access::KeepOnly(*response, rule->visible_paths())) {
      masked_ = true;
      const std::string kept = response->SerializeAsString();
      grpc::Slice slice(kept);
      grpc::ByteBuffer replacement(&slice, 1);
      buffer->Swap(&replacement);
    }
    if (extract) {
      access::ExtractIdsFor(*response, access::PathRoot::kResponse, policy_.policy.case_id_paths(), case_ids_);
      access::ExtractIdsFor(*response, access::PathRoot::kResponse, policy_.policy.resource_id_paths(),
                            resource_ids_);
    }
  }

  // Replaces the outgoing message with an empty one of the same type (zero bytes).
  static void EmptyMessage(grpc::experimental::InterceptorBatchMethods* methods) {
    grpc::ByteBuffer* buffer = methods->GetSerializedSendMessage();
    if (buffer == nullptr) return;
    grpc::Slice empty;
    grpc::ByteBuffer replacement(&empty, 1);
    buffer->Swap(&replacement);
  }

  bool Record(int code, bool marked_denied, const access::Decision* decision) {
    const grpc::ServerContextBase& context = *info_->server_context();
    access::CallFacts facts;
    facts.method = info_->method() != nullptr ? info_->method() : "";
    // Who: only what the Authenticator verifies (the token's claims or the certificate).
    if (const std::optional<Identity> identity = factory_.control().authenticator().IdentityOf(context);
        identity.has_value()) {
      facts.actor_id = identity->user_id;
      facts.actor_role = identity->role;
      facts.tenant_id = identity->tenant_id;
      facts.peer_identity = identity->peer_identity;
    }
    facts.purpose_of_use = Header(context, kPurposeHeader);
    facts.source_address = context.peer();
    facts.trace_id = TraceIdOf(Header(context, kTraceparentHeader));
    facts.resource_type = policy_.policy.resource_type();
    facts.resource_ids = resource_ids_;
    facts.case_ids = case_ids_;
    facts.status_code = code;
    facts.marked_denied = marked_denied;
    const std::string service = access::ServiceOf(facts.method);
    facts.policy_version = access::PolicyVersionOf(service);
    if (decision != nullptr) {
      facts.relationship = decision->relationship;
      facts.emergency_grant_id = decision->emergency_grant_id;
      facts.denial_reason = decision->denial_reason;
    }
    facts.masked = masked_ || (state_.has_value() && state_->masked_by_handler);
    access::Recorder* recorder = factory_.recorder();
    if (recorder == nullptr) {
      factory_.logger().Warn("access record not written: no recorder", {{"method", facts.method}});
      return false;
    }
    recorder->PublishPolicy(service);
    const auto record = access::BuildRecord(facts, access::NewRecordId(), absl::Now());
    return recorder->Record(record).ok();
  }

  AccessInterceptorFactory& factory_;
  grpc::experimental::ServerRpcInfo* const info_;
  const access::MethodPolicy policy_;
  const bool records_every_call_;
  uint64_t token_ = 0;
  std::optional<AccessControl::CallState> state_;
  bool response_paths_ = false;
  std::vector<std::string> case_ids_, resource_ids_;
  bool recorded_ = false;
  bool failed_closed_ = false;
  bool cancelled_ = false;
  bool masked_ = false;
  bool unauthorized_ = false;
};

}  // namespace

AccessInterceptorFactory::AccessInterceptorFactory(access::Recorder* recorder, AccessControl& control,
                                                   logging::Logger& logger)
    : recorder_(recorder), control_(control), logger_(logger) {}

std::optional<access::MethodPolicy> AccessInterceptorFactory::Lookup(const std::string& method) {
  std::lock_guard lock(mutex_);
  auto it = policies_.find(method);
  if (it == policies_.end()) it = policies_.emplace(method, access::PolicyFor(method)).first;
  return it->second;
}

grpc::experimental::Interceptor* AccessInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  if (info->method() == nullptr || NeedsNoToken(info->method())) return nullptr;
  // Owned and deleted by gRPC once the RPC ends.
  return new AccessInterceptor(*this, info, Lookup(info->method()));
}

}  // namespace clinical::grpcx::internal

#include "access_interceptor.h"

#include <array>
#include <vector>

#include "absl/time/clock.h"
#include "clinical/access/record.h"
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

// Records every call of a method whose access option has a resource type (reads of patient
// data), and only the refused calls of every other method (writes, exempt reads): a refusal
// is an access attempt whatever the method.
class AccessInterceptor : public grpc::experimental::Interceptor {
 public:
  AccessInterceptor(AccessInterceptorFactory& factory, grpc::experimental::ServerRpcInfo* info,
                    access::MethodPolicy policy)
      : factory_(factory), info_(info), policy_(std::move(policy)), records_every_call_(policy_.records()) {
    for (const auto* paths : {&policy_.policy.case_id_paths(), &policy_.policy.resource_id_paths()}) {
      for (const auto& path : *paths) {
        auto split = access::SplitPath(path);
        if (split.has_value() && split->first == access::PathRoot::kResponse) response_paths_ = true;
      }
    }
  }

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
        // A method without id paths (a write) still names its case, if it has one.
        if (policy_.policy.case_id_paths().empty()) access::ExtractIds(message, "case_id", case_ids_);
      }
    }
    const bool sends_metadata =
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA);
    const bool sends_message = methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE);
    const bool sends_status = methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS);

    bool marked_denied = false;
    if (sends_status) {
      // The marker is for this interceptor only; it never reaches the client.
      auto* trailers = methods->GetSendTrailingMetadata();
      if (trailers != nullptr && trailers->erase(access::kDeniedTrailer) > 0) marked_denied = true;
    }
    if (records_every_call_ && !recorded_ && (sends_metadata || sends_message || sends_status)) {
      if (sends_message && response_paths_) ExtractResponseIds(methods);
      recorded_ = true;
      const int code = sends_status ? static_cast<int>(methods->GetSendStatus().error_code()) : 0;
      failed_closed_ = !Record(code, marked_denied);
    }
    if (!records_every_call_ && sends_status && !recorded_) {
      const int code = static_cast<int>(methods->GetSendStatus().error_code());
      if (access::OutcomeFor(code, marked_denied) == audit::v1::ACCESS_OUTCOME_DENIED) {
        recorded_ = true;
        // Nothing is held back: a refusal carries no data, so its record need not gate it.
        Record(code, marked_denied);
      }
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
  // Parses the outgoing response (serializing it now instead of in the send path) and
  // takes the ids the policy names in it.
  void ExtractResponseIds(grpc::experimental::InterceptorBatchMethods* methods) {
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
    access::ExtractIdsFor(*response, access::PathRoot::kResponse, policy_.policy.case_id_paths(), case_ids_);
    access::ExtractIdsFor(*response, access::PathRoot::kResponse, policy_.policy.resource_id_paths(),
                          resource_ids_);
  }

  // Replaces the outgoing message with an empty one of the same type (zero bytes).
  static void EmptyMessage(grpc::experimental::InterceptorBatchMethods* methods) {
    grpc::ByteBuffer* buffer = methods->GetSerializedSendMessage();
    if (buffer == nullptr) return;
    grpc::Slice empty;
    grpc::ByteBuffer replacement(&empty, 1);
    buffer->Swap(&replacement);
  }

  bool Record(int code, bool marked_denied) {
    const grpc::ServerContextBase& context = *info_->server_context();
    access::CallFacts facts;
    facts.method = info_->method() != nullptr ? info_->method() : "";
    // Who: only what the Authenticator verifies (the token's claims or the certificate).
    if (const Authenticator* authenticator = factory_.authenticator(); authenticator != nullptr) {
      if (const std::optional<Identity> identity = authenticator->IdentityOf(context); identity.has_value()) {
        facts.actor_id = identity->user_id;
        facts.actor_role = identity->role;
        facts.tenant_id = identity->tenant_id;
        facts.peer_identity = identity->peer_identity;
      }
    }
    facts.purpose_of_use = Header(context, kPurposeHeader);
    facts.source_address = context.peer();
    facts.trace_id = TraceIdOf(Header(context, kTraceparentHeader));
    facts.resource_type = policy_.policy.resource_type();
    facts.resource_ids = resource_ids_;
    facts.case_ids = case_ids_;
    facts.status_code = code;
    facts.marked_denied = marked_denied;
    access::Recorder* recorder = factory_.recorder();
    if (recorder == nullptr) {
      factory_.logger().Warn("access record not written: no recorder", {{"method", facts.method}});
      return false;
    }
    const auto record = access::BuildRecord(facts, access::NewRecordId(), absl::Now());
    return recorder->Record(record).ok();
  }

  AccessInterceptorFactory& factory_;
  grpc::experimental::ServerRpcInfo* const info_;
  const access::MethodPolicy policy_;
  const bool records_every_call_;
  bool response_paths_ = false;
  std::vector<std::string> case_ids_, resource_ids_;
  bool recorded_ = false;
  bool failed_closed_ = false;
  bool cancelled_ = false;
};

}  // namespace

AccessInterceptorFactory::AccessInterceptorFactory(access::Recorder* recorder, const Authenticator* authenticator,
                                                   logging::Logger& logger)
    : recorder_(recorder), authenticator_(authenticator), logger_(logger) {}

std::optional<access::MethodPolicy> AccessInterceptorFactory::Lookup(const std::string& method) {
  std::lock_guard lock(mutex_);
  auto it = policies_.find(method);
  if (it == policies_.end()) it = policies_.emplace(method, access::PolicyFor(method)).first;
  return it->second;
}

grpc::experimental::Interceptor* AccessInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  if (info->method() == nullptr || NeedsNoToken(info->method())) return nullptr;
  // Methods without the option (writes) get an empty policy: refusals only.
  auto policy = Lookup(info->method());
  access::MethodPolicy effective = policy.has_value() ? std::move(*policy) : access::MethodPolicy{};
  // Owned and deleted by gRPC once the RPC ends.
  return new AccessInterceptor(*this, info, std::move(effective));
}

}  // namespace clinical::grpcx::internal

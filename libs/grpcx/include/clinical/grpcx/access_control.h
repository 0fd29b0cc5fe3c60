#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "clinical/access/decision.h"
#include "clinical/access/policy.h"
#include "clinical/access/relations.h"
#include "clinical/grpcx/authenticator.h"
#include "clinical/grpcx/caller.h"

namespace clinical::grpcx {

// Authorization of every call (docs/security.md, "Access control"), in three places that
// share one engine (access::Decide) and one policy per method (the
// clinical.common.v1.access option):
//
//  * before anything else, the Authenticator refuses a method without a policy and a role
//    that no rule of the method names (PERMISSION_DENIED, recorded);
//  * at the service's one request seam, Authorize decides the relationship the rules need
//    from the service's facts (access::RelationsSource) and refuses with PERMISSION_DENIED
//    (NOT_FOUND for another tenant's case, or a case that does not exist) before the
//    handler reads or writes anything;
//  * the access interceptor sends only what the allowing rule may see (visible_paths),
//    records the decision (relationship, emergency grant, policy version, masking), and
//    fails closed: a call that ends OK without a decision is answered INTERNAL with no
//    data, so a handler that forgets Authorize serves nothing.
//
// The per-call state is keyed by the call's ServerContext, registered by the interceptor
// when the call starts and dropped when it ends. Thread-safe.
class AccessControl : public CallerSource {
 public:
  explicit AccessControl(std::shared_ptr<Authenticator> authenticator);

  // The service's facts (null: none, for services whose rules are tenant-wide). Call before
  // the server starts; `source` must outlive the host.
  void SetRelations(const access::RelationsSource* source) { relations_ = source; }

  absl::StatusOr<Caller> CallerOf(const grpc::ServerContextBase& context) const override;
  absl::StatusOr<Caller> Authorize(const grpc::ServerContextBase& context,
                                   const google::protobuf::Message& request) const override;
  void MarkMasked(const grpc::ServerContextBase& context) const override;

  const Authenticator& authenticator() const { return *authenticator_; }

  // ---- for the access interceptor ----
  // What Authorize decided for one call, and whether the handler withheld records itself.
  struct CallState {
    uint64_t token = 0;
    std::string method;
    std::optional<access::MethodPolicy> policy;
    std::optional<access::Decision> decision;
    bool masked_by_handler = false;
  };
  // Registers a starting call; returns the token that Finish needs.
  uint64_t Begin(const grpc::ServerContextBase* context, std::string method,
                 std::optional<access::MethodPolicy> policy);
  std::optional<CallState> StateOf(const grpc::ServerContextBase* context) const;
  void Finish(const grpc::ServerContextBase* context, uint64_t token);

 private:
  const std::shared_ptr<Authenticator> authenticator_;
  const access::RelationsSource* relations_ = nullptr;
  mutable absl::Mutex mutex_;
  mutable std::map<const grpc::ServerContextBase*, CallState> calls_ ABSL_GUARDED_BY(mutex_);
  uint64_t next_token_ ABSL_GUARDED_BY(mutex_) = 1;
};

}  // namespace clinical::grpcx

#include "clinical/grpcx/access_control.h"

#include "absl/strings/str_cat.h"
#include "clinical/grpcx/status.h"

namespace clinical::grpcx {

AccessControl::AccessControl(std::shared_ptr<Authenticator> authenticator)
    : authenticator_(std::move(authenticator)) {}

absl::StatusOr<Caller> AccessControl::CallerOf(const grpc::ServerContextBase& context) const {
  return authenticator_->CallerOf(context);
}

uint64_t AccessControl::Begin(const grpc::ServerContextBase* context, std::string method,
                              std::optional<access::MethodPolicy> policy) {
  absl::MutexLock lock(&mutex_);
  const uint64_t token = next_token_++;
  calls_[context] = CallState{token, std::move(method), std::move(policy), std::nullopt, false};
  return token;
}

std::optional<AccessControl::CallState> AccessControl::StateOf(const grpc::ServerContextBase* context) const {
  absl::MutexLock lock(&mutex_);
  auto it = calls_.find(context);
  if (it == calls_.end()) return std::nullopt;
  return it->second;
}

void AccessControl::Finish(const grpc::ServerContextBase* context, uint64_t token) {
  absl::MutexLock lock(&mutex_);
  auto it = calls_.find(context);
  // A later call may reuse the context's address: only this call's entry is dropped.
  if (it != calls_.end() && it->second.token == token) calls_.erase(it);
}

void AccessControl::MarkMasked(const grpc::ServerContextBase& context) const {
  absl::MutexLock lock(&mutex_);
  auto it = calls_.find(&context);
  if (it != calls_.end()) it->second.masked_by_handler = true;
}

absl::StatusOr<Caller> AccessControl::Authorize(const grpc::ServerContextBase& context,
                                                const google::protobuf::Message& request) const {
  std::optional<access::MethodPolicy> policy;
  {
    absl::MutexLock lock(&mutex_);
    auto it = calls_.find(&context);
    // Every served method passes the access interceptor, which registers the call: a call
    // it does not know is a wiring mistake, and nothing is served for it.
    if (it == calls_.end()) return absl::InternalError("call is not under access control");
    policy = it->second.policy;
  }
  if (!policy.has_value()) return absl::PermissionDeniedError("method has no access policy");
  absl::StatusOr<Caller> caller = CallerOf(context);
  if (!caller.ok()) return caller.status();

  const access::Principal principal{caller->actor.user_id(), caller->tenant_id, caller->actor.role()};
  absl::StatusOr<access::Relations> relations =
      access::RelationsFor(policy->policy, principal, request, relations_);
  if (!relations.ok()) return relations.status();
  const access::Decision decision = access::Decide(policy->policy, principal, *relations);
  {
    absl::MutexLock lock(&mutex_);
    if (auto it = calls_.find(&context); it != calls_.end()) it->second.decision = decision;
  }
  if (!decision.allowed) {
    if (decision.denial_reason == "other_tenant") return NotFoundInTenant("case");
    if (decision.denial_reason == "case_not_found") return absl::NotFoundError("case not found");
    if (decision.denial_reason == "role_not_permitted") {
      return absl::PermissionDeniedError("the caller's role may not call this method");
    }
    return absl::PermissionDeniedError(
        "the caller's role may call this method only in a relationship they do not hold to what it names");
  }
  caller->relationship = decision.relationship;
  caller->emergency_grant_id = decision.emergency_grant_id;
  return caller;
}

}  // namespace clinical::grpcx

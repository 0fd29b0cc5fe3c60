#include "notification_grpc_service.h"

#include "clinical/grpcx/status.h"

namespace clinical::notification {

template <typename Fn>
grpc::Status NotificationGrpcService::Handle(grpc::ServerContext* context, const google::protobuf::Message& request,
                                             Fn fn) {
  // Counting, timing and logging each RPC is the server's interceptor's job (grpcx).
  // Authorization first: an inbox and its preferences are their recipient's (SELF on
  // recipient_id); an administrator may also resend the tenant's notifications.
  auto caller = callers_.Authorize(*context, request);
  return grpcx::ToGrpcStatus(caller.ok() ? fn(*caller) : caller.status(), *context);
}

template <typename Response, typename Fn>
grpc::Status NotificationGrpcService::Reply(grpc::ServerContext* context, const google::protobuf::Message& request,
                                            Response* response, Fn fn) {
  return Handle(context, request, [&](const grpcx::Caller& caller) -> absl::Status {
    auto result = fn(caller);
    if (!result.ok()) return result.status();
    *response = *std::move(result);
    return absl::OkStatus();
  });
}

grpc::Status NotificationGrpcService::ListInbox(grpc::ServerContext* context,
                                                const v1::ListInboxRequest* request,
                                                v1::ListInboxResponse* response) {
  return Reply(context, *request, response,
               [&](const grpcx::Caller& caller) { return engine_.ListInbox(caller, *request); });
}

grpc::Status NotificationGrpcService::GetUnreadCount(grpc::ServerContext* context,
                                                     const v1::GetUnreadCountRequest* request,
                                                     v1::GetUnreadCountResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
    auto result = engine_.UnreadCount(caller, *request);
    if (!result.ok()) return result.status();
    response->set_unread_count(*result);
    return absl::OkStatus();
  });
}

grpc::Status NotificationGrpcService::MarkRead(grpc::ServerContext* context,
                                               const v1::MarkReadRequest* request,
                                               v1::MarkReadResponse* response) {
  return Reply(context, *request, response,
               [&](const grpcx::Caller& caller) { return engine_.MarkRead(caller, *request); });
}

grpc::Status NotificationGrpcService::Resend(grpc::ServerContext* context,
                                             const v1::ResendRequest* request,
                                             v1::ResendResponse* response) {
  return Reply(context, *request, response,
               [&](const grpcx::Caller& caller) { return engine_.Resend(caller, *request); });
}

grpc::Status NotificationGrpcService::SubscribeInbox(
    grpc::ServerContext* context, const v1::SubscribeInboxRequest* request,
    grpc::ServerWriter<v1::SubscribeInboxResponse>* writer) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
    if (absl::Status s = engine_.CheckSubscribe(caller, *request); !s.ok()) return s;
    size_t cursor =
        request->include_unread() ? 0 : engine_.InboxEnd(caller.tenant_id, request->recipient_id());
    bool unread_only = request->include_unread();
    // Wake every 500 ms to notice a cancelled client (the sync API has no callback for it).
    while (!context->IsCancelled()) {
      auto batch = engine_.WaitForNew(caller.tenant_id, request->recipient_id(), &cursor,
                                      unread_only, absl::Now() + absl::Milliseconds(500));
      unread_only = false;  // only the initial backlog is filtered
      for (auto& n : batch) {
        v1::SubscribeInboxResponse message;
        *message.mutable_notification() = std::move(n);
        if (!writer->Write(message)) return absl::OkStatus();  // client gone
      }
      if (batch.empty() && engine_.stopped()) return absl::UnavailableError("shutting down");
    }
    return absl::OkStatus();
  });
}

grpc::Status NotificationGrpcService::GetPreferences(grpc::ServerContext* context,
                                                     const v1::GetPreferencesRequest* request,
                                                     v1::GetPreferencesResponse* response) {
  return Reply(context, *request, response, [&](const grpcx::Caller& caller) {
    return engine_.GetPreferences(caller, *request);
  });
}

grpc::Status NotificationGrpcService::SetPreferences(grpc::ServerContext* context,
                                                     const v1::SetPreferencesRequest* request,
                                                     v1::SetPreferencesResponse* response) {
  return Reply(context, *request, response, [&](const grpcx::Caller& caller) {
    return engine_.SetPreferences(caller, *request);
  });
}

}  // namespace clinical::notification

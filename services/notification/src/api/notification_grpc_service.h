#pragma once

#include "clinical/notification/v1/notification_service.grpc.pb.h"
#include "notification_engine.h"

namespace clinical::notification {

// The gRPC edge of NotificationEngine (sync handlers). SubscribeInbox holds its handler
// thread while the stream is open; it ends when the client cancels or the engine stops.
class NotificationGrpcService final : public v1::NotificationService::Service {
 public:
  NotificationGrpcService(NotificationEngine& engine, const grpcx::CallerSource& callers)
      : engine_(engine), callers_(callers) {}

  grpc::Status ListInbox(grpc::ServerContext* context, const v1::ListInboxRequest* request,
                         v1::ListInboxResponse* response) override;
  grpc::Status GetUnreadCount(grpc::ServerContext* context,
                              const v1::GetUnreadCountRequest* request,
                              v1::GetUnreadCountResponse* response) override;
  grpc::Status MarkRead(grpc::ServerContext* context, const v1::MarkReadRequest* request,
                        v1::MarkReadResponse* response) override;
  grpc::Status Resend(grpc::ServerContext* context, const v1::ResendRequest* request,
                      v1::ResendResponse* response) override;
  grpc::Status SubscribeInbox(grpc::ServerContext* context,
                              const v1::SubscribeInboxRequest* request,
                              grpc::ServerWriter<v1::SubscribeInboxResponse>* writer) override;
  grpc::Status GetPreferences(grpc::ServerContext* context,
                              const v1::GetPreferencesRequest* request,
                              v1::GetPreferencesResponse* response) override;
  grpc::Status SetPreferences(grpc::ServerContext* context,
                              const v1::SetPreferencesRequest* request,
                              v1::SetPreferencesResponse* response) override;

 private:
  template <typename Fn>
  grpc::Status Handle(grpc::ServerContext* context, const google::protobuf::Message& request, Fn fn);
  // Handle for an engine call returning StatusOr<Response>.
  template <typename Response, typename Fn>
  grpc::Status Reply(grpc::ServerContext* context, const google::protobuf::Message& request, Response* response,
                     Fn fn);

  NotificationEngine& engine_;
  const grpcx::CallerSource& callers_;
};

}  // namespace clinical::notification

#pragma once

#include "clinical/grpcx/caller.h"
#include "clinical/scheduling/v1/scheduling_service.grpc.pb.h"
#include "scheduling_engine.h"

namespace clinical::scheduling {

// The gRPC edge of clinical.scheduling.v1.SchedulingService: caller identity -> engine
// (which validates, INVALID_ARGUMENT with every violation) -> one status mapping
// (grpcx::ToGrpcStatus). Synchronous handlers because mutating calls block on a Kafka
// commit (see the case service for the reasoning). Logs carry the RPC name, code and
// duration only, never request fields.
class SchedulingGrpcService final : public v1::SchedulingService::Service {
 public:
  SchedulingGrpcService(SchedulingEngine& engine, const grpcx::CallerSource& callers)
      : engine_(engine), callers_(callers) {}

  grpc::Status CreateCalendar(grpc::ServerContext*, const v1::CreateCalendarRequest*,
                              v1::CreateCalendarResponse*) override;
  grpc::Status UpdateCalendarRules(grpc::ServerContext*, const v1::UpdateCalendarRulesRequest*,
                                   v1::UpdateCalendarRulesResponse*) override;
  grpc::Status AddCalendarException(grpc::ServerContext*, const v1::AddCalendarExceptionRequest*,
                                    v1::AddCalendarExceptionResponse*) override;
  grpc::Status GetCalendar(grpc::ServerContext*, const v1::GetCalendarRequest*,
                           v1::GetCalendarResponse*) override;
  grpc::Status FindAvailableSlots(grpc::ServerContext*, const v1::FindAvailableSlotsRequest*,
                                  v1::FindAvailableSlotsResponse*) override;
  grpc::Status BookAppointment(grpc::ServerContext*, const v1::BookAppointmentRequest*,
                               v1::BookAppointmentResponse*) override;
  grpc::Status RescheduleAppointment(grpc::ServerContext*, const v1::RescheduleAppointmentRequest*,
                                     v1::RescheduleAppointmentResponse*) override;
  grpc::Status CancelAppointment(grpc::ServerContext*, const v1::CancelAppointmentRequest*,
                                 v1::CancelAppointmentResponse*) override;
  grpc::Status UpdateAppointmentStatus(grpc::ServerContext*, const v1::UpdateAppointmentStatusRequest*,
                                       v1::UpdateAppointmentStatusResponse*) override;
  grpc::Status GetAppointment(grpc::ServerContext*, const v1::GetAppointmentRequest*,
                              v1::GetAppointmentResponse*) override;
  grpc::Status ListCaseAppointments(grpc::ServerContext*, const v1::ListCaseAppointmentsRequest*,
                                    v1::ListCaseAppointmentsResponse*) override;

 private:
  template <typename Request, typename Fn>
  grpc::Status Handle(grpc::ServerContext* context, const Request& request, Fn fn);
  template <typename Request>
  bool NamesAnotherTenant(const std::string& tenant_id, const Request& request);

  SchedulingEngine& engine_;
  const grpcx::CallerSource& callers_;
};

}  // namespace clinical::scheduling

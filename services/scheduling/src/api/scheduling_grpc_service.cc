#include "scheduling_grpc_service.h"

#include "clinical/grpcx/status.h"

namespace clinical::scheduling {

template <typename Request, typename Fn>
grpc::Status SchedulingGrpcService::Handle(grpc::ServerContext* context, const Request& request, Fn fn) {
  // Counting, timing and logging each RPC is the server's interceptor's job (grpcx).
  // Authorization comes first: the method's policy decided on the caller's relationship to
  // the case (named, or the appointment's) or to the calendar's owner
  // (scheduling_relations.h); another tenant's case is NOT_FOUND there.
  auto caller = callers_.Authorize(*context, request);
  absl::Status status;
  if (!caller.ok()) {
    status = caller.status();
  } else if (NamesAnotherTenant(caller->tenant_id, request)) {
    // Another tenant's appointment or calendar, asked by a role whose rule is tenant-wide:
    // NOT_FOUND before anything else is looked at, recorded as a refusal.
    status = grpcx::NotFoundInTenant("resource");
  } else {
    status = fn(*caller);
  }
  return grpcx::ToGrpcStatus(status, *context);
}

template <typename Request>
bool SchedulingGrpcService::NamesAnotherTenant(const std::string& tenant_id, const Request& request) {
  if constexpr (requires { request.appointment_id(); }) {
    if (!request.appointment_id().empty() && engine_.InAnotherTenant(tenant_id, request.appointment_id())) return true;
  }
  if constexpr (requires { request.calendar_id(); }) {
    if (!request.calendar_id().empty() && engine_.InAnotherTenant(tenant_id, request.calendar_id())) return true;
  }
  return false;
}

grpc::Status SchedulingGrpcService::CreateCalendar(grpc::ServerContext* context,
                                                   const v1::CreateCalendarRequest* request,
                                                   v1::CreateCalendarResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
    auto outcome = engine_.CreateCalendar(caller, *request);
    if (!outcome.ok()) return outcome.status();
    response->set_calendar_id(outcome->id);
    response->set_version(outcome->version);
    *response->mutable_position() = outcome->position;
    return absl::OkStatus();
  });
}

grpc::Status SchedulingGrpcService::UpdateCalendarRules(grpc::ServerContext* context,
                                                        const v1::UpdateCalendarRulesRequest* request,
                                                        v1::UpdateCalendarRulesResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
    auto outcome = engine_.UpdateCalendarRules(caller, *request);
    if (!outcome.ok()) return outcome.status();
    response->set_version(outcome->version);
    *response->mutable_position() = outcome->position;
    return absl::OkStatus();
  });
}

grpc::Status SchedulingGrpcService::AddCalendarException(
    grpc::ServerContext* context, const v1::AddCalendarExceptionRequest* request,
    v1::AddCalendarExceptionResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
    auto outcome = engine_.AddCalendarException(caller, *request);
    if (!outcome.ok()) return outcome.status();
    response->set_exception_id(outcome->detail);
    response->set_version(outcome->version);
    *response->mutable_position() = outcome->position;
    return absl::OkStatus();
  });
}

grpc::Status SchedulingGrpcService::GetCalendar(grpc::ServerContext* context,
                                                const v1::GetCalendarRequest* request,
                                                v1::GetCalendarResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
    auto calendar = engine_.GetCalendar(caller.tenant_id, *request);
    if (!calendar.ok()) return calendar.status();
    *response->mutable_calendar() = *calendar;
    return absl::OkStatus();
  });
}

grpc::Status SchedulingGrpcService::FindAvailableSlots(grpc::ServerContext* context,
                                                       const v1::FindAvailableSlotsRequest* request,
                                                       v1::FindAvailableSlotsResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
    auto found = engine_.FindAvailableSlots(caller, *request);
    if (!found.ok()) return found.status();
    *response = std::move(*found);
    return absl::OkStatus();
  });
}

grpc::Status SchedulingGrpcService::BookAppointment(grpc::ServerContext* context,
                                                    const v1::BookAppointmentRequest* request,
                                                    v1::BookAppointmentResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
    auto booked = engine_.Book(caller, *request);
    if (!booked.ok()) return booked.status();
    *response = std::move(*booked);
    return absl::OkStatus();
  });
}

grpc::Status SchedulingGrpcService::RescheduleAppointment(
    grpc::ServerContext* context, const v1::RescheduleAppointmentRequest* request,
    v1::RescheduleAppointmentResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
    auto moved = engine_.Reschedule(caller, *request);
    if (!moved.ok()) return moved.status();
    *response = std::move(*moved);
    return absl::OkStatus();
  });
}

grpc::Status SchedulingGrpcService::CancelAppointment(grpc::ServerContext* context,
                                                      const v1::CancelAppointmentRequest* request,
                                                      v1::CancelAppointmentResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
    auto cancelled = engine_.Cancel(caller, *request);
    if (!cancelled.ok()) return cancelled.status();
    *response = std::move(*cancelled);
    return absl::OkStatus();
  });
}

grpc::Status SchedulingGrpcService::UpdateAppointmentStatus(
    grpc::ServerContext* context, const v1::UpdateAppointmentStatusRequest* request,
    v1::UpdateAppointmentStatusResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
    auto updated = engine_.UpdateStatus(caller, *request);
    if (!updated.ok()) return updated.status();
    *response = std::move(*updated);
    return absl::OkStatus();
  });
}

grpc::Status SchedulingGrpcService::GetAppointment(grpc::ServerContext* context,
                                                   const v1::GetAppointmentRequest* request,
                                                   v1::GetAppointmentResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
    auto appointment = engine_.GetAppointment(caller.tenant_id, request->appointment_id());
    if (!appointment.ok()) return appointment.status();
    *response->mutable_appointment() = std::move(*appointment);
    return absl::OkStatus();
  });
}

grpc::Status SchedulingGrpcService::ListCaseAppointments(
    grpc::ServerContext* context, const v1::ListCaseAppointmentsRequest* request,
    v1::ListCaseAppointmentsResponse* response) {
  return Handle(context, *request, [&](const grpcx::Caller& caller) -> absl::Status {
    if (request->case_id().empty()) {
      return grpcx::InvalidArgument("invalid request", {{"case_id", "is required"}});
    }
    auto listed = engine_.ListCaseAppointments(caller.tenant_id, request->case_id());
    if (!listed.ok()) return listed.status();
    *response = std::move(*listed);
    return absl::OkStatus();
  });
}

}  // namespace clinical::scheduling

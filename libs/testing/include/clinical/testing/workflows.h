#pragma once

#include <string>

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

#include "clinical/case/v1/case_service.pb.h"
#include "clinical/scheduling/v1/scheduling_service.pb.h"

namespace clinical::testing {

// Requests that many end-to-end tests start from, written once.

// A protobuf Timestamp of `t`, to the nanosecond.
google::protobuf::Timestamp ProtoTime(absl::Time t);

// A W3C trace id (32 lowercase hex digits) and the `traceparent` header that carries it, so
// a test can find the access record of exactly one of its calls.
std::string NewTraceId();
std::string Traceparent(const std::string& trace_id);

// An active elder-care case of an invented patient (MRN, name and birth date), priority and
// acuity 2, referred by a hospital, in `team_id`.
case_::v1::OpenCaseRequest ExampleIntake(const std::string& command_id, const std::string& team_id);

// A case manager's calendar open around the clock every day (New York time), so bookings do
// not depend on the hour a test runs.
scheduling::v1::CreateCalendarRequest AroundTheClockCalendar(const std::string& command_id,
                                                             const std::string& case_manager_id);

}  // namespace clinical::testing

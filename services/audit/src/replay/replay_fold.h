#pragma once

// Time travel and disclosures as pure functions (docs/audit-replay.md): no I/O, no clock.
//
// A case at an instant is the left fold of the case service's own Evolve over the case's
// events that the instant selects, in log order; its appointments are the fold of the
// scheduling service's own EvolveAppointment. Nothing here restates a domain rule: the
// replay links those services' domain libraries, so it cannot drift from them.
//
// Selection by instant T:
//   OCCURRED_AT ("as it was")         events with occurred_at <= T
//   RECORDED_AT ("as it was known")   events with recorded_at <= T
// Either way the selected events are folded in log order (the order the writer decided
// them in), never re-sorted by time: Evolve assumes the order its Decide saw.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/audit/v1/replay_service.pb.h"
#include "clinical/case/v1/case.pb.h"
#include "clinical/common/v1/envelope.pb.h"
#include "clinical/common/v1/types.pb.h"
#include "clinical/scheduling/v1/scheduling.pb.h"

namespace clinical::audit::replay {

namespace v1 = ::clinical::audit::v1;

// One record of an event topic, as read.
struct LogEvent {
  common::v1::EventEnvelope envelope;
  common::v1::LogPosition position;
};

// True when the instant selects the event.
bool Selected(const common::v1::EventEnvelope& envelope, absl::Time as_of, v1::ReplayMode mode);

struct CaseAtInstant {
  ::clinical::case_::v1::Case state;
  std::vector<std::string> overdue_task_ids;
  int64_t events_folded = 0;
  int64_t events_left_out = 0;
  std::optional<LogEvent> last_folded;
  // Folded although recorded after the instant (OCCURRED_AT only).
  std::vector<common::v1::EventEnvelope> late_recorded;
};

// The case `case_id` of `tenant_id` at `as_of`, from its events in log order.
//   NOT_FOUND    no events, another tenant's case, or the case not opened at the instant
//   DATA_LOSS    an event this code cannot decode (names its position, never its content)
absl::StatusOr<CaseAtInstant> ReplayCase(const std::string& case_id, const std::string& tenant_id,
                                         const std::vector<LogEvent>& events, absl::Time as_of,
                                         v1::ReplayMode mode);

// Picks, from a scheduling topic read in log order, the events of the appointments booked
// for one case: an appointment's booking comes first in its partition, so one pass knows
// every later event of it. Stateful; feed it every record of the topic in order.
class AppointmentFilter {
 public:
  AppointmentFilter(std::string case_id, std::string tenant_id)
      : case_id_(std::move(case_id)), tenant_id_(std::move(tenant_id)) {}
  // True for a booking of the case (same tenant) and every later event of a booked one.
  bool Take(const common::v1::EventEnvelope& envelope);

 private:
  std::string case_id_;
  std::string tenant_id_;
  std::vector<std::string> appointment_ids_;
};

struct AppointmentsAtInstant {
  // In order of booking.
  std::vector<::clinical::scheduling::v1::Appointment> appointments;
  int64_t events_folded = 0;
};

// The case's appointments at `as_of` from the events AppointmentFilter took. An event of an
// appointment whose booking the instant does not select is not folded (the appointment did
// not exist yet). DATA_LOSS for an event this code cannot decode.
absl::StatusOr<AppointmentsAtInstant> ReplayAppointments(const std::vector<LogEvent>& events,
                                                         absl::Time as_of, v1::ReplayMode mode);

// Every disclosure recorded in a case's events (log order, all of them): one entry per
// InformationDisclosed — what DiscloseInformation and ReferToService (with shared
// information) emit. The recipient is the care team member as the case stood just before
// the disclosure. DATA_LOSS for an undecodable event; other tenants' events are skipped.
absl::StatusOr<std::vector<v1::DisclosureEntry>> DisclosuresOf(const std::string& case_id,
                                                               const std::string& tenant_id,
                                                               const std::vector<LogEvent>& events);

// The accounting window and order: entries with start <= disclosed_at <= end, sorted by
// disclosed_at, then case id, then disclosure id.
std::vector<v1::DisclosureEntry> Window(std::vector<v1::DisclosureEntry> entries, absl::Time start,
                                        absl::Time end);

// Six years before `end` on the UTC calendar (45 CFR 164.528(a)(3)).
absl::Time SixYearsBefore(absl::Time end);

// A sentence describing what was disclosed, from ids and categories only.
std::string DescribeDisclosure(const v1::DisclosureEntry& entry);

}  // namespace clinical::audit::replay

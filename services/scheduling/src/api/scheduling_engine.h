#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/eventstore/event_log.h"
#include "clinical/eventstore/event_store.h"
#include "clinical/grpcx/caller.h"
#include "clinical/scheduling/v1/scheduling_service.pb.h"
#include "scheduling_domain.h"

namespace clinical::scheduling {

using eventstore::EventLog;
using eventstore::EventStoreLog;

// What the scheduling service knows about cases, from the case topic.
class CaseDirectory {
 public:
  virtual ~CaseDirectory() = default;
  // The case as of every case event committed before the call (the reader catches up with
  // the case's partition first, bounded). NOT_FOUND when no such case exists;
  // UNAVAILABLE when the case topic cannot be read up to date in time.
  virtual absl::StatusOr<CaseInfo> Lookup(const std::string& case_id) = 0;
};

struct Outcome {
  std::string id;
  int64_t version = 0;
  common::v1::LogPosition position;
  bool duplicate = false;
  std::string detail;  // the id a command created (exception id)
};

// SchedulingEngine is the application layer, independent of gRPC. It keeps every calendar
// and appointment in memory (the process owns all partitions of its topic), with an index
// of each participant's bookings, and runs the pure rules before appending.
//
// Booking rules span aggregates (a case manager's other appointments), so every command is
// serialised by one command mutex: the bookings read for a conflict check cannot change
// before the append is acknowledged. Two clients booking the same slot at once: the second
// sees the first's booking and gets FAILED_PRECONDITION naming it. Queries read under a
// separate state mutex and never wait for Kafka.
//
// Status codes: INVALID_ARGUMENT (with field violations), NOT_FOUND, ALREADY_EXISTS,
// FAILED_PRECONDITION (conflicts, closed case, illegal transition), ABORTED (expected
// version), UNAVAILABLE (broker or case topic; retry with the same command id), DATA_LOSS
// (undecodable event in the log). Thread-safe.
class SchedulingEngine {
 public:
  SchedulingEngine(EventLog& log, CaseDirectory& cases, std::string topic,
                   std::function<absl::Time()> clock, std::function<std::string()> new_id);

  // Rebuilds state from the log, before serving (events in log order).
  absl::Status Replay(const eventstore::LoggedEvent& logged);

  absl::StatusOr<Outcome> CreateCalendar(const grpcx::Caller& caller,
                                         const v1::CreateCalendarRequest& request);
  absl::StatusOr<Outcome> UpdateCalendarRules(const grpcx::Caller& caller,
                                              const v1::UpdateCalendarRulesRequest& request);
  absl::StatusOr<Outcome> AddCalendarException(const grpcx::Caller& caller,
                                               const v1::AddCalendarExceptionRequest& request);
  // Whether an appointment or calendar id belongs to a tenant other than `tenant_id`: such
  // requests are answered NOT_FOUND (a refusal) before anything else is looked at. (A case
  // of another tenant is refused by the authorization itself.)
  bool InAnotherTenant(const std::string& tenant_id, const std::string& id) const;

  absl::StatusOr<v1::Calendar> GetCalendar(const std::string& tenant_id,
                                           const v1::GetCalendarRequest& request) const;

  absl::StatusOr<v1::FindAvailableSlotsResponse> FindAvailableSlots(
      const grpcx::Caller& caller, const v1::FindAvailableSlotsRequest& request);
  absl::StatusOr<v1::BookAppointmentResponse> Book(const grpcx::Caller& caller,
                                                   const v1::BookAppointmentRequest& request);
  absl::StatusOr<v1::RescheduleAppointmentResponse> Reschedule(
      const grpcx::Caller& caller, const v1::RescheduleAppointmentRequest& request);
  absl::StatusOr<v1::CancelAppointmentResponse> Cancel(const grpcx::Caller& caller,
                                                       const v1::CancelAppointmentRequest& request);
  absl::StatusOr<v1::UpdateAppointmentStatusResponse> UpdateStatus(
      const grpcx::Caller& caller, const v1::UpdateAppointmentStatusRequest& request);
  absl::StatusOr<v1::Appointment> GetAppointment(const std::string& tenant_id,
                                                 const std::string& appointment_id) const;
  absl::StatusOr<v1::ListCaseAppointmentsResponse> ListCaseAppointments(
      const std::string& tenant_id, const std::string& case_id) const;

  // Appends a ReminderDue for every booked occurrence with a reminder due now (see
  // RemindersDue). Each has a command id derived from its identity, so running this again,
  // concurrently or after a restart, never appends one twice. Returns how many were
  // appended, or the first error (the others are retried on the next sweep).
  absl::StatusOr<int> EmitDueReminders(const std::vector<absl::Duration>& offsets);

  size_t calendar_count() const;
  size_t appointment_count() const;

  // What the access decisions need about scheduling's own resources
  // (scheduling_relations.h): an appointment's case, and the person a calendar belongs to
  // ("" for a room's or a provider's calendar: nobody's own). nullopt for an unknown id or
  // an id of the other kind.
  struct Belonging {
    std::string tenant_id;
    std::string id;
  };
  std::optional<Belonging> AppointmentCase(const std::string& appointment_id) const;
  std::optional<Belonging> CalendarOwner(const std::string& calendar_id) const;

 private:
  struct CommandRecord {
    int64_t version = 0;
    common::v1::LogPosition position;
    std::string detail;
  };
  struct Aggregate {
    std::string tenant_id;
    bool is_calendar = false;
    v1::Calendar calendar;
    v1::Appointment appointment;
    std::map<std::string, CommandRecord> commands;
    // An append's outcome is unknown: reload from the log before the next command.
    bool stale = false;
  };
  struct BusyKey {
    absl::Time start;
    absl::Time end;
    std::string appointment_id;
    int32_t index = 0;
    bool operator<(const BusyKey& o) const {
      return std::tie(start, appointment_id, index) < std::tie(o.start, o.appointment_id, o.index);
    }
  };
  // Everything needed to check one set of participants.
  struct Schedules {
    std::vector<ParticipantSchedule> list;
    std::vector<std::unique_ptr<v1::Calendar>> calendars;  // owned copies
    absl::TimeZone zone = absl::UTCTimeZone();             // first calendar's zone
  };

  // Requires mutex_.
  void Apply(const std::string& id, const std::string& tenant_id, const v1::SchedulingEvent& event,
             const common::v1::EventEnvelope& envelope, const common::v1::LogPosition& position)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Unindex(const std::string& id, const Aggregate& aggregate) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Index(const std::string& id, const Aggregate& aggregate) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Requires command_mutex_.
  absl::Status ReloadStale();
  absl::Status Reload(const std::string& id);
  absl::StatusOr<Schedules> BuildSchedules(const std::string& tenant_id, const std::string& case_id,
                                           const google::protobuf::RepeatedPtrField<v1::Participant>& participants,
                                           bool skip_patient, absl::Time from, absl::Time to) const;
  absl::StatusOr<Outcome> Commit(const grpcx::Caller& caller, const std::string& id,
                                 int64_t current_version, const std::string& command_id,
                                 const std::vector<v1::SchedulingEvent>& events,
                                 eventstore::ExpectedVersion expected);
  // The aggregate's command record, or nullopt. NOT_FOUND for another tenant or the wrong kind.
  absl::StatusOr<Aggregate> Find(const std::string& tenant_id, const std::string& id,
                                 bool calendar) const;
  absl::StatusOr<CaseInfo> BookableCase(const std::string& tenant_id, const std::string& case_id,
                                        bool must_accept_bookings);

  EventLog& log_;
  CaseDirectory& cases_;
  const std::string topic_;
  const std::function<absl::Time()> clock_;
  const std::function<std::string()> new_id_;

  std::mutex command_mutex_;  // serialises every command (see the class comment)
  mutable std::mutex mutex_;
  std::map<std::string, Aggregate> aggregates_ ABSL_GUARDED_BY(mutex_);
  std::set<std::string> stale_ ABSL_GUARDED_BY(mutex_);
  // (tenant, owner kind, owner id) -> calendar id
  std::map<std::tuple<std::string, int, std::string>, std::string> calendar_by_owner_
      ABSL_GUARDED_BY(mutex_);
  // (tenant, command id) -> the id a create command made, so a retry without a
  // client-chosen id finds it.
  std::map<std::pair<std::string, std::string>, std::string> created_by_command_
      ABSL_GUARDED_BY(mutex_);
  // (tenant, participant key) -> its active bookings.
  std::map<std::pair<std::string, std::string>, std::set<BusyKey>> busy_ ABSL_GUARDED_BY(mutex_);
  // (tenant, case id) -> appointment ids.
  std::map<std::pair<std::string, std::string>, std::set<std::string>> by_case_
      ABSL_GUARDED_BY(mutex_);
};

// "case_manager:cm-1", "patient:<case id>", "room:r-1", "provider:p-1", "family:f-1".
std::string ParticipantKey(const v1::Participant& participant, const std::string& case_id);

}  // namespace clinical::scheduling

// The scheduling service as a real process against the test run's real Kafka, driven over
// gRPC with the generated stubs, following the case service's topics (written here through
// the case service's event store, relations::testing::CaseServiceLog, so each test sets up
// exactly the assignments and teams it needs): a recurring series with conflicts, reschedule
// and no-show; a case closed refusing further bookings; two clients racing for one slot;
// reminders emitted once across a restart; who may book and manage calendars (Trust II).
#include <signal.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clinical/eventstore/event_store.h"
#include "clinical/relations/testing/case_service_log.h"
#include "clinical/scheduling/v1/scheduling_service.grpc.pb.h"
#include "clinical/testing/identity.h"
#include "clinical/testing/service_process.h"
#include "clinical/testing/grpc_status.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/service_process.h"
#include "clinical/testing/subprocess.h"
#include "clinical/testing/wait.h"
#include "google/protobuf/util/time_util.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace clinical::scheduling {
namespace {

namespace sv1 = ::clinical::scheduling::v1;
using ::clinical::testing::Subprocess;
using ::clinical::testing::FieldsOf;
using ::clinical::testing::UniqueName;
using google::protobuf::util::TimeUtil;

constexpr char kTenant[] = "tenant-s";

int ListeningPort(const std::string& line) {
  auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || parsed.value("msg", "") != "listening") return 0;
  return parsed.value("port", 0);
}

google::protobuf::Timestamp Ts(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}
absl::Time FromTs(const google::protobuf::Timestamp& t) { return absl::FromUnixSeconds(t.seconds()); }

// A service binary as a child process; waits until it listens.
class Process {
 public:
  // `service` names the principal it runs as (testing::ServiceEnvironment).
  void Start(std::vector<std::string> argv, const std::string& service) {
    auto process = Subprocess::Start(argv, testing::ServiceEnvironment(service));
    ASSERT_TRUE(process.ok()) << process.status();
    process_ = std::move(*process);
    auto line = process_->WaitForLine([](const std::string& l) { return ListeningPort(l) > 0; },
                                      absl::Seconds(90));
    ASSERT_TRUE(line.has_value()) << absl::StrJoin(process_->Lines(), "\n");
    address_ = absl::StrCat("127.0.0.1:", ListeningPort(*line));
    channel_ = testing::SecureChannel(address_);
  }
  void Stop() {
    process_->Signal(SIGTERM);
    auto status = process_->Wait(absl::Seconds(30));
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  const std::string& address() const { return address_; }
  Subprocess& subprocess() { return *process_; }

 private:
  std::unique_ptr<Subprocess> process_;
  std::shared_ptr<grpc::Channel> channel_;
  std::string address_;
};

// Calls are made by a scheduler of the tenant unless a test says otherwise: the scheduler
// may book for any case of the tenant and manage every calendar (the policies in
// scheduling_service.proto).
std::unique_ptr<grpc::ClientContext> Context(const std::string& user = "sched-s",
                                             const std::string& role = "scheduler",
                                             const std::string& tenant = kTenant) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  testing::Authenticate(*context, {user, role, tenant});
  return context;
}

class SchedulingServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    case_log_ = relations::testing::CaseServiceLog::Create(UniqueName("clinical.case.sched-test"),
                                                           UniqueName("clinical.case.organisation.sched-test"))
                    .release();
    case_topic_ = new std::string(case_log_->case_topic());
    // The team of every case here: supervised by sup-s, with the test's case managers.
    case_log_->SetTeam(kTenant, "team-s", {"sup-s"}, {});
  }
  static void TearDownTestSuite() {
    delete case_log_;
    delete case_topic_;
  }

  std::vector<std::string> SchedulingArgs(const std::string& topic, const std::string& writer,
                                          const std::string& offsets = "24h,1h") {
    return {testing::BinaryPath("services/scheduling/scheduling_service"), "--grpc-port=0",
            "--shutdown-grace=5s", "--scheduling-topic=" + topic,
            "--scheduling-topic-partitions=3", "--case-topic=" + *case_topic_,
            "--organisation-topic=" + case_log_->organisation_topic(),
            "--writer-id=" + writer, "--reminder-interval=200ms", "--reminder-offsets=" + offsets};
  }
  void StartScheduling(const std::string& offsets = "24h,1h") {
    topic_ = UniqueName("clinical.scheduling.test");
    writer_ = UniqueName("scheduling-service.test");
    ASSERT_NO_FATAL_FAILURE(scheduling_.Start(SchedulingArgs(topic_, writer_, offsets), "scheduling"));
    stub_ = sv1::SchedulingService::NewStub(scheduling_.channel());
  }

  // Opens an active case of team-s assigned to `manager` (as the case service records it).
  std::string OpenCase(const std::string& manager) { return case_log_->Open(kTenant, "team-s", manager); }

  // A calendar of `owner`, open around the clock every day (so tests do not depend on the
  // hour they run), created by `user` in `role`.
  grpc::Status NewCalendar(const std::string& owner, std::string* calendar_id, const std::string& user = "sched-s",
                           const std::string& role = "scheduler", int buffer_minutes = 0) {
    sv1::CreateCalendarRequest request;
    request.set_command_id(UniqueName("cal"));
    request.set_owner_kind(sv1::CALENDAR_OWNER_KIND_CASE_MANAGER);
    request.set_owner_id(owner);
    request.set_time_zone("America/New_York");
    for (int d = sv1::WEEKDAY_MONDAY; d <= sv1::WEEKDAY_SUNDAY; ++d) {
      sv1::WorkingHours* h = request.add_working_hours();
      h->set_weekday(static_cast<sv1::Weekday>(d));
      h->set_start_minute(0);
      h->set_end_minute(1440);
    }
    request.set_buffer_minutes(buffer_minutes);
    sv1::CreateCalendarResponse response;
    const grpc::Status status = stub_->CreateCalendar(Context(user, role).get(), request, &response);
    if (status.ok()) {
      EXPECT_EQ(response.version(), 1);
      if (calendar_id != nullptr) *calendar_id = response.calendar_id();
    }
    return status;
  }
  void CreateCalendar(const std::string& manager, int buffer_minutes = 0) {
    const grpc::Status status = NewCalendar(manager, nullptr, "sched-s", "scheduler", buffer_minutes);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  grpc::StatusCode AddTimeOff(const std::string& calendar_id, const std::string& user, const std::string& role,
                              const std::string& tenant = kTenant) {
    sv1::AddCalendarExceptionRequest request;
    request.set_command_id(UniqueName("off"));
    request.set_calendar_id(calendar_id);
    request.set_kind(sv1::CALENDAR_EXCEPTION_KIND_TIME_OFF);
    *request.mutable_start_time() = Ts(absl::Now() + absl::Hours(24 * 30));
    *request.mutable_end_time() = Ts(absl::Now() + absl::Hours(24 * 30 + 2));
    sv1::AddCalendarExceptionResponse response;
    return stub_->AddCalendarException(Context(user, role, tenant).get(), request, &response).error_code();
  }

  sv1::BookAppointmentRequest Booking(const std::string& case_id, absl::Time start,
                                      absl::Duration duration = absl::Minutes(60)) {
    sv1::BookAppointmentRequest request;
    request.set_command_id(UniqueName("book"));
    request.set_case_id(case_id);
    request.set_type(sv1::APPOINTMENT_TYPE_PHONE_FOLLOW_UP);
    *request.mutable_start_time() = Ts(start);
    request.mutable_duration()->set_seconds(absl::ToInt64Seconds(duration));
    request.set_time_zone("America/New_York");
    return request;
  }

  sv1::Appointment Get(const std::string& id) {
    sv1::GetAppointmentRequest request;
    request.set_appointment_id(id);
    sv1::GetAppointmentResponse response;
    const grpc::Status status = stub_->GetAppointment(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.appointment();
  }

  static std::string* case_topic_;
  static relations::testing::CaseServiceLog* case_log_;
  std::string topic_, writer_;
  Process scheduling_;
  std::unique_ptr<sv1::SchedulingService::Stub> stub_;
};

std::string* SchedulingServiceTest::case_topic_ = nullptr;
relations::testing::CaseServiceLog* SchedulingServiceTest::case_log_ = nullptr;

// A whole hour at least a day ahead, so every occurrence is in the future.
absl::Time Tomorrow() {
  return absl::FromUnixSeconds((absl::ToUnixSeconds(absl::Now()) / 3600 + 26) * 3600);
}

TEST_F(SchedulingServiceTest, RecurringSeriesConflictRescheduleAndNoShow) {
  ASSERT_NO_FATAL_FAILURE(StartScheduling());
  const std::string manager = UniqueName("cm");
  ASSERT_NO_FATAL_FAILURE(CreateCalendar(manager));
  const std::string case_a = OpenCase(manager);
  const std::string case_b = OpenCase(manager);

  // Invalid input: every violation named, nothing written.
  sv1::BookAppointmentRequest bad = Booking(case_a, Tomorrow());
  bad.clear_type();
  bad.mutable_duration()->set_seconds(0);
  bad.mutable_recurrence()->set_frequency(sv1::FREQUENCY_WEEKLY);  // no count, no until
  sv1::BookAppointmentResponse booked;
  grpc::Status status = stub_->BookAppointment(Context().get(), bad, &booked);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const std::vector<std::string> fields = FieldsOf(status);
  EXPECT_NE(std::find(fields.begin(), fields.end(), "type"), fields.end()) << absl::StrJoin(fields, ",");
  EXPECT_NE(std::find(fields.begin(), fields.end(), "duration"), fields.end());

  // A weekly series of 4 for case A (the assigned case manager is added by the service).
  sv1::BookAppointmentRequest series = Booking(case_a, Tomorrow());
  series.mutable_recurrence()->set_frequency(sv1::FREQUENCY_WEEKLY);
  series.mutable_recurrence()->set_count(4);
  status = stub_->BookAppointment(Context().get(), series, &booked);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(booked.occurrences_size(), 4);
  EXPECT_EQ(booked.version(), 1);
  const std::string series_id = booked.appointment_id();
  // Retried with the same command id: the same appointment, nothing new.
  sv1::BookAppointmentResponse retried;
  ASSERT_TRUE(stub_->BookAppointment(Context().get(), series, &retried).ok());
  EXPECT_EQ(retried.appointment_id(), series_id);
  EXPECT_EQ(retried.position().offset(), booked.position().offset());
  sv1::Appointment appointment = Get(series_id);
  bool manager_added = false;
  for (const auto& p : appointment.participants()) {
    manager_added |= p.kind() == sv1::PARTICIPANT_KIND_CASE_MANAGER && p.participant_id() == manager;
  }
  EXPECT_TRUE(manager_added);

  // Case B at occurrence 2's time: the case manager is double booked, named precisely.
  const absl::Time third = FromTs(booked.occurrences(2).start_time());
  sv1::BookAppointmentResponse refused;
  status = stub_->BookAppointment(Context().get(), Booking(case_b, third + absl::Minutes(30)), &refused);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find(absl::StrCat("appointment ", series_id, " occurrence 2")),
            std::string::npos)
      << status.error_message();
  // A series for case B over occurrences 1..3, checked only: conflicts per occurrence.
  sv1::BookAppointmentRequest check = Booking(case_b, FromTs(booked.occurrences(1).start_time()));
  check.mutable_recurrence()->set_frequency(sv1::FREQUENCY_WEEKLY);
  check.mutable_recurrence()->set_count(4);
  check.set_validate_only(true);
  sv1::BookAppointmentResponse checked;
  ASSERT_TRUE(stub_->BookAppointment(Context().get(), check, &checked).ok());
  ASSERT_EQ(checked.conflicts_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(checked.conflicts(i).index(), i);
    EXPECT_EQ(checked.conflicts(i).conflicting_appointment_id(), series_id);
    EXPECT_EQ(checked.conflicts(i).conflicting_index(), i + 1);
  }
  EXPECT_EQ(checked.version(), 0) << "validate_only writes nothing";

  // Reschedule occurrence 1 and the rest by one day, to 14:00 local.
  const absl::TimeZone ny = [] { absl::TimeZone z; absl::LoadTimeZone("America/New_York", &z); return z; }();
  const absl::CivilDay day1(ny.At(FromTs(booked.occurrences(1).start_time())).cs);
  const absl::Time moved_to = absl::FromCivil(absl::CivilSecond(day1.year(), day1.month(), day1.day() + 1, 14, 0, 0), ny);
  sv1::RescheduleAppointmentRequest move;
  move.set_command_id(UniqueName("move"));
  move.set_appointment_id(series_id);
  move.set_index(1);
  move.set_scope(sv1::CHANGE_SCOPE_THIS_AND_FOLLOWING);
  *move.mutable_start_time() = Ts(moved_to);
  move.set_reason("patient works Mondays now");
  move.set_expected_version(1);
  sv1::RescheduleAppointmentResponse moved;
  status = stub_->RescheduleAppointment(Context().get(), move, &moved);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(moved.version(), 2);
  appointment = Get(series_id);
  EXPECT_EQ(FromTs(appointment.occurrences(0).start_time()), FromTs(booked.occurrences(0).start_time()));
  for (int i = 1; i < 4; ++i) {
    const auto& o = appointment.occurrences(i);
    EXPECT_EQ(ny.At(FromTs(o.start_time())).cs.hour(), 14);
    ASSERT_EQ(o.reschedules_size(), 1) << "history kept";
    EXPECT_EQ(FromTs(o.reschedules(0).previous_start_time()), FromTs(booked.occurrences(i).start_time()));
  }
  // A stale expected version is refused.
  move.set_command_id(UniqueName("move"));
  EXPECT_EQ(stub_->RescheduleAppointment(Context().get(), move, &moved).error_code(), grpc::StatusCode::ABORTED);
  // The old time of occurrence 2 is free now.
  status = stub_->BookAppointment(Context().get(), Booking(case_b, third + absl::Minutes(30)), &refused);
  EXPECT_TRUE(status.ok()) << status.error_message();

  // No-show: refused before the start, recorded once it has passed.
  sv1::BookAppointmentResponse soon;
  status = stub_->BookAppointment(Context().get(), Booking(case_a, absl::Now() + absl::Seconds(2),
                                                           absl::Minutes(15)), &soon);
  ASSERT_TRUE(status.ok()) << status.error_message();
  sv1::UpdateAppointmentStatusRequest noshow;
  noshow.set_command_id(UniqueName("noshow"));
  noshow.set_appointment_id(soon.appointment_id());
  noshow.set_status(sv1::APPOINTMENT_STATUS_NOSHOW);
  noshow.set_reason("no answer at the door");
  sv1::UpdateAppointmentStatusResponse updated;
  status = stub_->UpdateAppointmentStatus(Context().get(), noshow, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << "before the start";
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return stub_->UpdateAppointmentStatus(Context().get(), noshow, &updated).ok(); },
      absl::Seconds(20), absl::Milliseconds(200)));
  EXPECT_EQ(Get(soon.appointment_id()).occurrences(0).status(), sv1::APPOINTMENT_STATUS_NOSHOW);
  // A no-show cannot be fulfilled afterwards.
  noshow.set_command_id(UniqueName("fulfil"));
  noshow.set_status(sv1::APPOINTMENT_STATUS_FULFILLED);
  EXPECT_EQ(stub_->UpdateAppointmentStatus(Context().get(), noshow, &updated).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  // The case's next appointment is the series' first occurrence.
  sv1::ListCaseAppointmentsRequest list;
  list.set_case_id(case_a);
  sv1::ListCaseAppointmentsResponse listed;
  ASSERT_TRUE(stub_->ListCaseAppointments(Context().get(), list, &listed).ok());
  EXPECT_EQ(listed.appointments_size(), 2);
  EXPECT_EQ(listed.next().appointment_id(), series_id);
  EXPECT_EQ(listed.next().occurrence().index(), 0);
  EXPECT_FALSE(listed.has_last()) << "a no-show did not take place";

  // Cancel the rest of the series from occurrence 2.
  sv1::CancelAppointmentRequest cancel;
  cancel.set_command_id(UniqueName("cancel"));
  cancel.set_appointment_id(series_id);
  cancel.set_index(2);
  cancel.set_scope(sv1::CHANGE_SCOPE_THIS_AND_FOLLOWING);
  cancel.set_reason(sv1::CANCELLATION_REASON_PATIENT_REQUEST);
  sv1::CancelAppointmentResponse cancelled;
  ASSERT_TRUE(stub_->CancelAppointment(Context().get(), cancel, &cancelled).ok());
  EXPECT_EQ(cancelled.cancelled_indexes_size(), 2);
  appointment = Get(series_id);
  EXPECT_EQ(appointment.occurrences(1).status(), sv1::APPOINTMENT_STATUS_BOOKED);
  EXPECT_EQ(appointment.occurrences(3).status(), sv1::APPOINTMENT_STATUS_CANCELLED);
  ASSERT_NO_FATAL_FAILURE(scheduling_.Stop());
}

TEST_F(SchedulingServiceTest, CaseClosedByTheCaseServiceRefusesFurtherBookings) {
  ASSERT_NO_FATAL_FAILURE(StartScheduling());
  const std::string manager = UniqueName("cm");
  ASSERT_NO_FATAL_FAILURE(CreateCalendar(manager));
  const std::string case_id = OpenCase(manager);
  sv1::BookAppointmentResponse booked;
  grpc::Status status = stub_->BookAppointment(Context().get(), Booking(case_id, Tomorrow()), &booked);
  ASSERT_TRUE(status.ok()) << status.error_message();

  case_log_->Close(kTenant, case_id);

  // Immediately after the case service acknowledged: no waiting in the test.
  status = stub_->BookAppointment(Context().get(), Booking(case_id, Tomorrow() + absl::Hours(3)), &booked);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_NE(status.error_message().find("CASE_STATUS_FINISHED"), std::string::npos) << status.error_message();
  // Unknown case: NOT_FOUND.
  status = stub_->BookAppointment(Context().get(), Booking("no-such-case", Tomorrow()), &booked);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_NO_FATAL_FAILURE(scheduling_.Stop());
}

TEST_F(SchedulingServiceTest, TwoClientsBookingTheSameSlotExactlyOneWins) {
  ASSERT_NO_FATAL_FAILURE(StartScheduling());
  const std::string manager = UniqueName("cm");
  ASSERT_NO_FATAL_FAILURE(CreateCalendar(manager, /*buffer_minutes=*/10));
  const std::string case_a = OpenCase(manager);
  const std::string case_b = OpenCase(manager);
  for (int round = 0; round < 5; ++round) {
    const absl::Time slot = Tomorrow() + absl::Hours(2 * round);
    std::atomic<int> ready{0};
    grpc::Status results[2];
    sv1::BookAppointmentResponse responses[2];
    const std::string cases[2] = {case_a, case_b};
    std::vector<std::thread> clients;
    for (int c = 0; c < 2; ++c) {
      clients.emplace_back([&, c] {
        // Each client its own channel (a private subchannel pool keeps gRPC from sharing
        // the connection), both released together.
        auto stub = sv1::SchedulingService::NewStub(testing::SecureChannel(scheduling_.address()));
        const sv1::BookAppointmentRequest request = Booking(cases[c], slot + absl::Minutes(5 * c));
        ready.fetch_add(1);
        while (ready.load() < 2) {
        }
        results[c] = stub->BookAppointment(Context().get(), request, &responses[c]);
      });
    }
    for (auto& t : clients) t.join();
    const int winners = results[0].ok() + results[1].ok();
    ASSERT_EQ(winners, 1) << results[0].error_message() << " | " << results[1].error_message();
    const int loser = results[0].ok() ? 1 : 0;
    EXPECT_EQ(results[loser].error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_NE(results[loser].error_message().find(responses[1 - loser].appointment_id()), std::string::npos)
        << "the loser is told which appointment is in the way: " << results[loser].error_message();
  }
  ASSERT_NO_FATAL_FAILURE(scheduling_.Stop());
}

TEST_F(SchedulingServiceTest, RemindersAreEmittedOnceAcrossARestart) {
  ASSERT_NO_FATAL_FAILURE(StartScheduling("24h,1h"));
  const std::string manager = UniqueName("cm");
  ASSERT_NO_FATAL_FAILURE(CreateCalendar(manager));
  const std::string case_id = OpenCase(manager);
  // 30 minutes ahead: the 1 h reminder is due at once, the 24 h one is superseded.
  sv1::BookAppointmentResponse booked;
  grpc::Status status = stub_->BookAppointment(
      Context().get(), Booking(case_id, absl::Now() + absl::Minutes(30)), &booked);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return Get(booked.appointment_id()).occurrences(0).reminders_sent_size() == 1; },
      absl::Seconds(20)));

  // Restart on the same topic and writer id: the new process replays and sweeps again.
  ASSERT_NO_FATAL_FAILURE(scheduling_.Stop());
  Process restarted;
  ASSERT_NO_FATAL_FAILURE(restarted.Start(SchedulingArgs(topic_, writer_, "24h,1h"), "scheduling"));
  auto line = restarted.subprocess().WaitForLine(
      [](const std::string& l) { return l.find("reminder scheduler running") != std::string::npos; },
      absl::Seconds(30));
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ(nlohmann::json::parse(*line).value("emitted", -1), 0) << *line;
  stub_ = sv1::SchedulingService::NewStub(restarted.channel());
  const sv1::Appointment after = Get(booked.appointment_id());
  ASSERT_EQ(after.occurrences(0).reminders_sent_size(), 1);
  EXPECT_EQ(after.occurrences(0).reminders_sent(0).seconds(), 3600);

  // The log itself holds exactly one ReminderDue for it.
  int reminders = 0;
  const absl::Status read = eventstore::ReadLog(
      testing::Platform::Get().kafka_admin, topic_, eventstore::ReplayStart{},
      [&](const eventstore::LoggedEvent& logged) {
        if (logged.envelope.aggregate_id() == booked.appointment_id() &&
            logged.envelope.event_type() == "clinical.scheduling.v1.ReminderDue") {
          ++reminders;
          EXPECT_EQ(logged.envelope.actor().role(), common::v1::ROLE_SERVICE);
        }
        return true;
      });
  ASSERT_TRUE(read.ok()) << read;
  EXPECT_EQ(reminders, 1);
  ASSERT_NO_FATAL_FAILURE(restarted.Stop());
}

}  // namespace
}  // namespace clinical::scheduling

namespace clinical::scheduling {
namespace {

// Trust II: who may book for a case and manage a calendar is decided by the policies on the
// methods, from the relationships the case service's topics record (the followed directory)
// and the appointment's case or the calendar's owner.
TEST_F(SchedulingServiceTest, BookingFollowsTheCaseRelationshipsAndCalendarsTheirOwners) {
  ASSERT_NO_FATAL_FAILURE(StartScheduling());
  const std::string manager = UniqueName("cm"), carer = UniqueName("cm"), stranger = UniqueName("cm");
  const std::string supervisor = UniqueName("sup"), team = UniqueName("team");
  case_log_->SetTeam(kTenant, team, {supervisor}, {manager, carer});
  ASSERT_NO_FATAL_FAILURE(CreateCalendar(manager));
  const std::string case_id = case_log_->Open(kTenant, team, manager);
  case_log_->AddStaff(kTenant, case_id, UniqueName("member"), carer);

  auto book = [&](const std::string& user, const std::string& role, absl::Time at,
                  const std::string& tenant = kTenant, sv1::BookAppointmentResponse* booked = nullptr) {
    sv1::BookAppointmentResponse ignored;
    return stub_->BookAppointment(Context(user, role, tenant).get(), Booking(case_id, at),
                                  booked != nullptr ? booked : &ignored)
        .error_code();
  };
  // The scheduler books for any case of the tenant; the assigned case manager, a care-team
  // member and the team's supervisor for this one; nobody else.
  sv1::BookAppointmentResponse booked;
  EXPECT_EQ(book("sched-s", "scheduler", Tomorrow(), kTenant, &booked), grpc::StatusCode::OK);
  EXPECT_EQ(book(manager, "case_manager", Tomorrow() + absl::Hours(2)), grpc::StatusCode::OK);
  EXPECT_EQ(book(carer, "case_manager", Tomorrow() + absl::Hours(4)), grpc::StatusCode::OK);
  EXPECT_EQ(book(supervisor, "supervisor", Tomorrow() + absl::Hours(6)), grpc::StatusCode::OK);
  EXPECT_EQ(book(stranger, "case_manager", Tomorrow() + absl::Hours(8)), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(book("sup-s", "supervisor", Tomorrow() + absl::Hours(8)), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(book("intake-s", "intake_coordinator", Tomorrow() + absl::Hours(8)),
            grpc::StatusCode::PERMISSION_DENIED);
  // Another tenant's case does not exist for its callers, whatever their role.
  EXPECT_EQ(book("sched-o", "scheduler", Tomorrow() + absl::Hours(8), "tenant-other"), grpc::StatusCode::NOT_FOUND);

  // An appointment is its case's: the relationships to the case decide.
  sv1::GetAppointmentRequest get;
  get.set_appointment_id(booked.appointment_id());
  sv1::GetAppointmentResponse got;
  EXPECT_TRUE(stub_->GetAppointment(Context(manager, "case_manager").get(), get, &got).ok());
  EXPECT_EQ(got.appointment().case_id(), case_id);
  EXPECT_EQ(stub_->GetAppointment(Context(stranger, "case_manager").get(), get, &got).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(stub_->GetAppointment(Context("sched-o", "scheduler", "tenant-other").get(), get, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);
  sv1::CancelAppointmentRequest cancel;
  cancel.set_command_id(UniqueName("cancel"));
  cancel.set_appointment_id(booked.appointment_id());
  cancel.set_scope(sv1::CHANGE_SCOPE_THIS_OCCURRENCE);
  cancel.set_reason(sv1::CANCELLATION_REASON_PATIENT_REQUEST);
  sv1::CancelAppointmentResponse cancelled;
  EXPECT_EQ(stub_->CancelAppointment(Context(stranger, "case_manager").get(), cancel, &cancelled).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(stub_->CancelAppointment(Context(carer, "case_manager").get(), cancel, &cancelled).ok());

  // Reassigned in the case service just now: the next decision sees it (read-your-writes).
  ASSERT_NO_FATAL_FAILURE(CreateCalendar(stranger));  // the new manager joins the booking
  case_log_->Assign(kTenant, case_id, stranger);
  EXPECT_EQ(book(stranger, "case_manager", Tomorrow() + absl::Hours(10)), grpc::StatusCode::OK);

  // Calendars: a case manager creates and changes their own, not another's; the supervisor of
  // a team the owner is in changes it too; the scheduler any of the tenant's.
  std::string own;
  EXPECT_TRUE(NewCalendar(carer, &own, carer, "case_manager").ok());
  EXPECT_EQ(NewCalendar(UniqueName("cm"), nullptr, carer, "case_manager").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(AddTimeOff(own, carer, "case_manager"), grpc::StatusCode::OK);
  EXPECT_EQ(AddTimeOff(own, manager, "case_manager"), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(AddTimeOff(own, supervisor, "supervisor"), grpc::StatusCode::OK);
  EXPECT_EQ(AddTimeOff(own, "sup-s", "supervisor"), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(AddTimeOff(own, "sched-s", "scheduler"), grpc::StatusCode::OK);
  EXPECT_EQ(AddTimeOff(own, "sched-o", "scheduler", "tenant-other"), grpc::StatusCode::NOT_FOUND);
  ASSERT_NO_FATAL_FAILURE(scheduling_.Stop());
}

}  // namespace
}  // namespace clinical::scheduling

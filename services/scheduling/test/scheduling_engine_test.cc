// The application layer without Kafka: an in-memory log with the event store's contract
// and an in-memory case directory. Idempotent retries, nothing written on bad input or a
// closed case, many threads racing for one slot, a lost acknowledgement, reminders once
// across sweeps and a rebuild from the log, and tenant isolation.
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "clinical/eventstore/testing/memory_log.h"
#include "gtest/gtest.h"
#include "scheduling_engine.h"

namespace clinical::scheduling {
namespace {

using eventstore::testing::MemoryLog;

class MemoryCases : public CaseDirectory {
 public:
  absl::StatusOr<CaseInfo> Lookup(const std::string& case_id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cases.find(case_id);
    if (it == cases.end()) return absl::NotFoundError("case not found");
    return it->second;
  }
  void Put(const std::string& id, case_::v1::CaseStatus status, const std::string& manager,
           const std::string& tenant = "tenant-a") {
    std::lock_guard<std::mutex> lock(mutex_);
    cases[id] = CaseInfo{tenant, status, manager};
  }

 private:
  std::mutex mutex_;
  std::map<std::string, CaseInfo> cases;
};

grpcx::Caller CallerOf(const std::string& tenant = "tenant-a") {
  grpcx::Caller caller;
  caller.actor.set_user_id("cm-1");
  caller.actor.set_role(common::v1::ROLE_CASE_MANAGER);
  caller.tenant_id = tenant;
  return caller;
}

const absl::Time kNow = absl::FromCivil(absl::CivilSecond(2026, 6, 1, 8, 0, 0), absl::UTCTimeZone());

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() { engine_ = MakeEngine(); }
  std::unique_ptr<SchedulingEngine> MakeEngine() {
    return std::make_unique<SchedulingEngine>(
        log_, cases_, "topic", [this] { return now_; },
        [this] { return absl::StrCat("id-", next_id_.fetch_add(1)); });
  }
  void Calendar(const std::string& manager) {
    v1::CreateCalendarRequest request;
    request.set_command_id("cal-" + manager);
    request.set_owner_kind(v1::CALENDAR_OWNER_KIND_CASE_MANAGER);
    request.set_owner_id(manager);
    request.set_time_zone("UTC");
    for (int d = v1::WEEKDAY_MONDAY; d <= v1::WEEKDAY_SUNDAY; ++d) {
      v1::WorkingHours* h = request.add_working_hours();
      h->set_weekday(static_cast<v1::Weekday>(d));
      h->set_start_minute(0);
      h->set_end_minute(1440);
    }
    ASSERT_TRUE(engine_->CreateCalendar(CallerOf(), request).ok());
  }
  v1::BookAppointmentRequest Booking(const std::string& command, const std::string& case_id,
                                     absl::Time start) {
    v1::BookAppointmentRequest request;
    request.set_command_id(command);
    request.set_case_id(case_id);
    request.set_type(v1::APPOINTMENT_TYPE_PHONE_FOLLOW_UP);
    *request.mutable_start_time() = ToProto(start);
    *request.mutable_duration() = ToProto(absl::Hours(1));
    return request;
  }

  MemoryLog log_;
  MemoryCases cases_;
  absl::Time now_ = kNow;  // written only while no other thread runs
  std::atomic<int> next_id_{1};
  std::unique_ptr<SchedulingEngine> engine_;
};

TEST_F(EngineTest, BookingRetryReturnsTheOriginalAndBadInputWritesNothing) {
  ASSERT_NO_FATAL_FAILURE(Calendar("cm-1"));
  cases_.Put("case-1", case_::v1::CASE_STATUS_ACTIVE, "cm-1");
  const int64_t before = log_.size();
  v1::BookAppointmentRequest bad = Booking("b-0", "case-1", kNow + absl::Hours(2));
  bad.clear_duration();
  EXPECT_EQ(engine_->Book(CallerOf(), bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = Booking("b-0", "case-1", kNow - absl::Hours(2));
  EXPECT_EQ(engine_->Book(CallerOf(), bad).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log_.size(), before);

  auto first = engine_->Book(CallerOf(), Booking("b-1", "case-1", kNow + absl::Hours(2)));
  ASSERT_TRUE(first.ok()) << first.status();
  auto again = engine_->Book(CallerOf(), Booking("b-1", "case-1", kNow + absl::Hours(2)));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->appointment_id(), first->appointment_id());
  EXPECT_EQ(log_.size(), before + 1);
}

TEST_F(EngineTest, ClosedOrForeignCaseIsRefusedWithoutWriting) {
  ASSERT_NO_FATAL_FAILURE(Calendar("cm-1"));
  cases_.Put("closed", case_::v1::CASE_STATUS_FINISHED, "cm-1");
  cases_.Put("foreign", case_::v1::CASE_STATUS_ACTIVE, "cm-1", "tenant-b");
  const int64_t before = log_.size();
  EXPECT_EQ(engine_->Book(CallerOf(), Booking("c-1", "closed", kNow + absl::Hours(2))).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine_->Book(CallerOf(), Booking("c-2", "foreign", kNow + absl::Hours(2))).status().code(),
            absl::StatusCode::kNotFound);
  cases_.Put("unassigned", case_::v1::CASE_STATUS_ACTIVE, "");
  EXPECT_EQ(engine_->Book(CallerOf(), Booking("c-3", "unassigned", kNow + absl::Hours(2))).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(log_.size(), before);
}

TEST_F(EngineTest, ManyThreadsRacingForOneSlotExactlyOneWins) {
  ASSERT_NO_FATAL_FAILURE(Calendar("cm-1"));
  constexpr int kThreads = 8;
  for (int i = 0; i < kThreads; ++i) cases_.Put(absl::StrCat("case-", i), case_::v1::CASE_STATUS_ACTIVE, "cm-1");
  std::atomic<int> ok{0}, conflicts{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto r = engine_->Book(CallerOf(), Booking(absl::StrCat("race-", i), absl::StrCat("case-", i),
                                                 kNow + absl::Hours(3) + absl::Minutes(i)));
      if (r.ok()) ++ok;
      if (r.status().code() == absl::StatusCode::kFailedPrecondition) ++conflicts;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(conflicts.load(), kThreads - 1);
}

TEST_F(EngineTest, LostAcknowledgementIsRecoveredFromTheLog) {
  ASSERT_NO_FATAL_FAILURE(Calendar("cm-1"));
  cases_.Put("case-1", case_::v1::CASE_STATUS_ACTIVE, "cm-1");
  cases_.Put("case-2", case_::v1::CASE_STATUS_ACTIVE, "cm-1");
  v1::BookAppointmentRequest booking = Booking("lost", "case-1", kNow + absl::Hours(2));
  booking.set_appointment_id("appt-lost");
  log_.fail_next = true;
  log_.commit_before_failing = true;  // committed, but the answer was lost
  EXPECT_EQ(engine_->Book(CallerOf(), booking).status().code(), absl::StatusCode::kUnavailable);
  // The booking exists in the log, so the slot is taken for everybody else ...
  auto other = engine_->Book(CallerOf(), Booking("other", "case-2", kNow + absl::Hours(2)));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition) << other.status();
  EXPECT_NE(other.status().message().find("appt-lost"), std::string::npos);
  // ... and the client's retry gets the original result.
  auto retried = engine_->Book(CallerOf(), booking);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->version(), 1);
}

TEST_F(EngineTest, RemindersOnceAcrossSweepsAndARebuild) {
  ASSERT_NO_FATAL_FAILURE(Calendar("cm-1"));
  cases_.Put("case-1", case_::v1::CASE_STATUS_ACTIVE, "cm-1");
  auto booked = engine_->Book(CallerOf(), Booking("r-1", "case-1", kNow + absl::Hours(30)));
  ASSERT_TRUE(booked.ok());
  const std::vector<absl::Duration> offsets = {absl::Hours(24), absl::Hours(1)};
  EXPECT_EQ(*engine_->EmitDueReminders(offsets), 0) << "30 h ahead: nothing due";
  now_ = kNow + absl::Hours(6);  // 24 h before
  EXPECT_EQ(*engine_->EmitDueReminders(offsets), 1);
  EXPECT_EQ(*engine_->EmitDueReminders(offsets), 0);
  // A new process rebuilt from the log sends nothing again ...
  auto rebuilt = MakeEngine();
  for (const auto& e : log_.All()) ASSERT_TRUE(rebuilt->Replay(e).ok());
  EXPECT_EQ(*rebuilt->EmitDueReminders(offsets), 0);
  // ... until the 1 h reminder is due, sent once.
  now_ = kNow + absl::Hours(29) + absl::Minutes(30);
  EXPECT_EQ(*rebuilt->EmitDueReminders(offsets), 1);
  EXPECT_EQ(*engine_->EmitDueReminders(offsets), 0) << "a second writer's copy is a duplicate";
  int reminders = 0;
  for (const auto& e : log_.All()) reminders += e.envelope.event_type() == "clinical.scheduling.v1.ReminderDue";
  EXPECT_EQ(reminders, 2);
}

TEST_F(EngineTest, TenantsAreIsolated) {
  ASSERT_NO_FATAL_FAILURE(Calendar("cm-1"));
  cases_.Put("case-1", case_::v1::CASE_STATUS_ACTIVE, "cm-1");
  auto booked = engine_->Book(CallerOf(), Booking("t-1", "case-1", kNow + absl::Hours(2)));
  ASSERT_TRUE(booked.ok());
  EXPECT_TRUE(engine_->GetAppointment("tenant-a", booked->appointment_id()).ok());
  EXPECT_EQ(engine_->GetAppointment("tenant-b", booked->appointment_id()).status().code(),
            absl::StatusCode::kNotFound);
  v1::CancelAppointmentRequest cancel;
  cancel.set_command_id("x");
  cancel.set_appointment_id(booked->appointment_id());
  cancel.set_scope(v1::CHANGE_SCOPE_THIS_OCCURRENCE);
  cancel.set_reason(v1::CANCELLATION_REASON_OTHER);
  EXPECT_EQ(engine_->Cancel(CallerOf("tenant-b"), cancel).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace clinical::scheduling

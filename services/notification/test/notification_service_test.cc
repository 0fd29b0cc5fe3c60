// The notification service as a real process against the test run's real Kafka, next to a
// real case service process, over gRPC (cases are opened and assigned through the case
// service's event store, relations::testing::CaseServiceLog, except where a test goes on
// with the case service's own commands): a live subscriber receives an assignment within a
// bounded time; notifications exist exactly once across SIGKILL and restart (the case topic
// is re-read from the start); read state survives a restart; bad input and someone else's
// inbox are refused; an emergency grant reaches the privacy officers and team supervisors.
#include <signal.h>

#include <algorithm>
#include <map>
#include <optional>
#include <atomic>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clinical/case/v1/case_service.grpc.pb.h"
#include "clinical/notification/v1/notification_service.grpc.pb.h"
#include "clinical/relations/testing/case_service_log.h"
#include "clinical/testing/identity.h"
#include "clinical/testing/service_process.h"
#include "clinical/testing/grpc_status.h"
#include "clinical/kafka/admin.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/service_process.h"
#include "clinical/testing/subprocess.h"
#include "clinical/testing/wait.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "clinical/eventstore/event_store.h"
#include "clinical/notification/v1/events.pb.h"
#include "test_receiver.h"

#include <filesystem>
#include <fstream>

namespace clinical::notification {
namespace {

namespace cv1 = ::clinical::case_::v1;
namespace nv1 = ::clinical::notification::v1;
using ::clinical::testing::Subprocess;
using ::clinical::testing::FieldsOf;
using ::clinical::testing::UniqueName;

constexpr char kTenant[] = "tenant-n";

int ListeningPort(const std::string& line) {
  auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || parsed.value("msg", "") != "listening") return 0;
  return parsed.value("port", 0);
}

class Process {
 public:
  // `service` names the principal it runs as (testing::ServiceEnvironment).
  void Start(std::vector<std::string> argv, const std::string& service,
             const std::vector<std::string>& extra = {}) {
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto process = Subprocess::Start(argv, testing::ServiceEnvironment(service));
    ASSERT_TRUE(process.ok()) << process.status();
    process_ = std::move(*process);
    auto line = process_->WaitForLine([](const std::string& l) { return ListeningPort(l) > 0; },
                                      absl::Seconds(90));
    ASSERT_TRUE(line.has_value()) << absl::StrJoin(process_->Lines(), "\n");
    channel_ = testing::SecureChannel(absl::StrCat("127.0.0.1:", ListeningPort(*line)));
  }
  void Stop() {
    process_->Signal(SIGTERM);
    auto status = process_->Wait(absl::Seconds(30));
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << absl::StrJoin(process_->Lines(), "\n");
  }
  void Kill() {
    process_->Signal(SIGKILL);
    ASSERT_TRUE(process_->Wait(absl::Seconds(30)).has_value());
  }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  // The first log line whose "msg" is `msg`, parsed.
  nlohmann::json WaitForLog(const std::string& msg, absl::Duration timeout) {
    auto line = process_->WaitForLine(
        [&](const std::string& l) {
          auto parsed = nlohmann::json::parse(l, nullptr, /*allow_exceptions=*/false);
          return parsed.is_object() && parsed.value("msg", "") == msg;
        },
        timeout);
    return line ? nlohmann::json::parse(*line) : nlohmann::json();
  }

 private:
  std::unique_ptr<Subprocess> process_;
  std::shared_ptr<grpc::Channel> channel_;
};

std::unique_ptr<grpc::ClientContext> Context(const std::string& user,
                                             const std::string& role = "case_manager",
                                             absl::Duration deadline = absl::Seconds(30)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  testing::Authenticate(*context, {user, role, kTenant});
  return context;
}

class NotificationServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    case_topic_ = new std::string(UniqueName("clinical.case.notif-test"));
    organisation_topic_ = new std::string(UniqueName("clinical.case.organisation.notif-test"));
    case_log_ = relations::testing::CaseServiceLog::Create(*case_topic_, *organisation_topic_).release();
    case_service_ = new Process();
    case_service_->Start({testing::BinaryPath("services/case/case_service"), "--grpc-port=0",
                          "--shutdown-grace=5s", "--case-topic-partitions=3",
                          "--case-topic=" + *case_topic_,
                          "--writer-id=" + UniqueName("case-service.notif-test")},
                         "case");
  }
  static void TearDownTestSuite() {
    case_service_->Stop();
    delete case_service_;
    delete case_topic_;
    delete organisation_topic_;
    delete case_log_;
  }

  void SetUp() override {
    topic_ = UniqueName("clinical.notification.test");
    scheduling_topic_ = UniqueName("clinical.scheduling.notif-test");
    writer_ = UniqueName("notification-service.test");
    // No scheduling service runs here: the harness creates its topic (readers never do).
    kafka::TopicSpec scheduling;
    scheduling.name = scheduling_topic_;
    scheduling.partitions = 3;
    ASSERT_TRUE(
        kafka::EnsureTopics(testing::Platform::Get().kafka_admin, {scheduling}, absl::Seconds(30)).ok());
    ASSERT_NO_FATAL_FAILURE(StartNotification());
  }
  void TearDown() override {
    if (running_) notification_.Stop();
  }

  void StartNotification() {
    ASSERT_NO_FATAL_FAILURE(notification_.Start(
        {testing::BinaryPath("services/notification/notification_service"), "--grpc-port=0",
         "--shutdown-grace=5s", "--notification-topic=" + topic_,
         "--notification-topic-partitions=3", "--case-topic=" + *case_topic_,
         "--scheduling-topic=" + scheduling_topic_, "--organisation-topic=" + *organisation_topic_,
         "--writer-id=" + writer_},
        "notification", extra_args_));
    stub_ = nv1::NotificationService::NewStub(notification_.channel());
    running_ = true;
  }

  // A case of team-n, ACTIVE, program elder_care, as the case service records it: written to
  // its topic through its event store, so a test sets up exactly the assignments it needs.
  std::string OpenCase() { return case_log_->Open(kTenant, "team-n"); }
  void Assign(const std::string& case_id, const std::string& manager) { case_log_->Assign(kTenant, case_id, manager); }

  // Through the real case service, for tests that go on with its commands (care plans,
  // tasks): it knows only the cases it opened itself.
  std::string OpenCaseInCaseService() {
    auto cases = cv1::CaseService::NewStub(case_service_->channel());
    cv1::OpenCaseRequest open;
    open.set_command_id(UniqueName("open"));
    open.mutable_patient()->set_mrn("MRN-1");
    open.mutable_patient()->set_given_name("Ada");
    open.mutable_patient()->set_family_name("Example");
    open.mutable_patient()->set_birth_date("1950-01-01");
    open.mutable_patient()->set_gender(cv1::ADMINISTRATIVE_GENDER_FEMALE);
    open.set_program("elder_care");
    open.set_priority(2);
    open.set_acuity(2);
    open.mutable_referral()->set_source(cv1::REFERRAL_SOURCE_HOSPITAL);
    open.mutable_referral()->set_reason("follow-up");
    open.set_initial_status(cv1::CASE_STATUS_ACTIVE);
    open.set_team_id("team-n");
    cv1::OpenCaseResponse opened;
    grpc::Status status = cases->OpenCase(Context("sup-1", "supervisor").get(), open, &opened);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return opened.case_id();
  }

  void AssignInCaseService(const std::string& case_id, const std::string& manager) {
    auto cases = cv1::CaseService::NewStub(case_service_->channel());
    cv1::AssignCaseRequest assign;
    assign.set_case_id(case_id);
    assign.set_command_id(UniqueName("assign"));
    assign.set_case_manager_id(manager);
    cv1::AssignCaseResponse assigned;
    grpc::Status status =
        cases->AssignCase(Context("sup-1", "supervisor").get(), assign, &assigned);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  nv1::ListInboxResponse Inbox(const std::string& recipient, const std::string& role = "case_manager") {
    nv1::ListInboxRequest request;
    request.set_recipient_id(recipient);
    nv1::ListInboxResponse response;
    grpc::Status status = stub_->ListInbox(Context(recipient, role).get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  static inline Process* case_service_ = nullptr;
  static inline std::string* case_topic_ = nullptr;
  static inline std::string* organisation_topic_ = nullptr;
  static inline relations::testing::CaseServiceLog* case_log_ = nullptr;
  Process notification_;
  bool running_ = false;
  std::string topic_, scheduling_topic_, writer_;
  std::vector<std::string> extra_args_;
  std::unique_ptr<nv1::NotificationService::Stub> stub_;
};

TEST_F(NotificationServiceTest, LiveSubscriberReceivesAssignmentWithinBoundedTime) {
  const std::string manager = UniqueName("cm-live");
  const std::string case_id = OpenCase();
  // include_unread: whatever reaches the inbox before the stream is registered is sent too,
  // so the test does not race the subscription.
  grpc::ClientContext* raw_context = nullptr;
  auto context = Context(manager, "case_manager", absl::Seconds(60));
  raw_context = context.get();
  nv1::SubscribeInboxRequest subscribe;
  subscribe.set_recipient_id(manager);
  subscribe.set_include_unread(true);
  auto reader = stub_->SubscribeInbox(raw_context, subscribe);
  std::atomic<bool> received{false};
  nv1::SubscribeInboxResponse message;
  absl::Time received_at;
  std::thread read_thread([&] {
    if (reader->Read(&message)) {
      received_at = absl::Now();
      received = true;
    }
  });
  const absl::Time assigned_at = absl::Now();
  ASSERT_NO_FATAL_FAILURE(Assign(case_id, manager));
  const bool arrived = testing::WaitUntil([&] { return received.load(); }, absl::Seconds(15));
  raw_context->TryCancel();
  read_thread.join();
  ASSERT_TRUE(arrived) << "no notification within 15 s of the assignment";
  EXPECT_LT(received_at - assigned_at, absl::Seconds(10));
  const nv1::Notification& n = message.notification();
  EXPECT_EQ(n.recipient_id(), manager);
  EXPECT_EQ(n.tenant_id(), kTenant);
  EXPECT_EQ(n.type(), "assignment");
  EXPECT_EQ(n.rule_id(), "assignment.new");
  EXPECT_EQ(n.case_id(), case_id);
  EXPECT_EQ(n.link(), "/cases/" + case_id);
  EXPECT_EQ(n.version(), 1);
  EXPECT_FALSE(n.has_read_at());
  // Minimum content: nothing of the patient.
  EXPECT_EQ(n.DebugString().find("Ada"), std::string::npos);
  EXPECT_EQ(n.DebugString().find("MRN"), std::string::npos);
}

TEST_F(NotificationServiceTest, ExactlyOnceAcrossKillAndRestartAndReadStateSurvives) {
  const std::string manager = UniqueName("cm-once");
  const std::string other = UniqueName("cm-other");
  const std::string case_id = OpenCase();
  ASSERT_NO_FATAL_FAILURE(Assign(case_id, manager));
  ASSERT_TRUE(testing::WaitUntil([&] { return Inbox(manager).notifications_size() == 1; },
                                 absl::Seconds(20)));
  const std::string first_id = Inbox(manager).notifications(0).notification_id();

  nv1::MarkReadRequest read;
  read.set_command_id(UniqueName("read"));
  read.set_recipient_id(manager);
  read.set_notification_id(first_id);
  nv1::MarkReadResponse marked;
  grpc::Status status = stub_->MarkRead(Context(manager).get(), read, &marked);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(marked.version(), 2);
  EXPECT_TRUE(marked.notification().has_read_at());
  EXPECT_EQ(marked.position().topic(), topic_);
  // A retry with the same command id changes nothing.
  nv1::MarkReadResponse again;
  ASSERT_TRUE(stub_->MarkRead(Context(manager).get(), read, &again).ok());
  EXPECT_EQ(again.version(), 2);

  ASSERT_NO_FATAL_FAILURE(notification_.Kill());
  running_ = false;
  // While the service is down: reassigned away and back. Both events follow the first
  // assignment in the case's partition, so once the restarted service shows the third
  // event's notification it has re-read the first one too.
  ASSERT_NO_FATAL_FAILURE(Assign(case_id, other));
  ASSERT_NO_FATAL_FAILURE(Assign(case_id, manager));
  ASSERT_NO_FATAL_FAILURE(StartNotification());

  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        auto inbox = Inbox(manager);
        // newest first: the reassignment back; two "previous manager"-less entries expected
        return inbox.notifications_size() >= 3;
      },
      absl::Seconds(30)))
      << "restarted service did not catch up";
  // cm-once: assigned (read), reassigned away (previous manager), assigned again.
  nv1::ListInboxResponse inbox = Inbox(manager);
  ASSERT_EQ(inbox.notifications_size(), 3);
  std::set<std::string> ids;
  for (const auto& n : inbox.notifications()) ids.insert(n.notification_id());
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(inbox.notifications(0).rule_id(), "assignment.new");
  EXPECT_EQ(inbox.notifications(1).rule_id(), "assignment.previous");
  EXPECT_EQ(inbox.notifications(2).notification_id(), first_id);
  EXPECT_TRUE(inbox.notifications(2).has_read_at());
  EXPECT_EQ(inbox.unread_count(), 2);
  // cm-other: the assignment to them; the move back is the other's "previous" notice.
  ASSERT_TRUE(testing::WaitUntil([&] { return Inbox(other).notifications_size() == 2; },
                                 absl::Seconds(10)));

  nv1::GetUnreadCountRequest count;
  count.set_recipient_id(manager);
  nv1::GetUnreadCountResponse counted;
  ASSERT_TRUE(stub_->GetUnreadCount(Context(manager).get(), count, &counted).ok());
  EXPECT_EQ(counted.unread_count(), 2);

  // A graceful restart too: still exactly three, first still read.
  ASSERT_NO_FATAL_FAILURE(notification_.Stop());
  running_ = false;
  ASSERT_NO_FATAL_FAILURE(StartNotification());
  ASSERT_TRUE(testing::WaitUntil([&] { return Inbox(manager).notifications_size() == 3; },
                                 absl::Seconds(30)));
  inbox = Inbox(manager);
  EXPECT_EQ(inbox.notifications_size(), 3);
  EXPECT_EQ(inbox.unread_count(), 2);
}

// The webhook outcomes recorded for one notification on the notification topic.
struct Outcomes {
  int failed = 0;
  int delivered = 0;
  int delivered_attempt = 0;
  std::vector<int> failed_attempts;
};
Outcomes ReadOutcomes(const std::string& topic, const std::string& id) {
  Outcomes out;
  absl::Status read = eventstore::ReadLog(
      testing::Platform::Get().kafka_admin, topic, eventstore::ReplayStart{},
      [&](const eventstore::LoggedEvent& logged) {
        if (logged.envelope.aggregate_id() != id) return true;
        nv1::NotificationDeliveryFailed failed;
        nv1::NotificationDelivered delivered;
        if (logged.envelope.payload().UnpackTo(&failed) &&
            logged.envelope.payload().Is<nv1::NotificationDeliveryFailed>()) {
          ++out.failed;
          out.failed_attempts.push_back(failed.attempt());
        } else if (logged.envelope.payload().Is<nv1::NotificationDelivered>() &&
                   logged.envelope.payload().UnpackTo(&delivered)) {
          ++out.delivered;
          out.delivered_attempt = delivered.attempt();
        }
        return true;
      },
      absl::Seconds(30));
  EXPECT_TRUE(read.ok()) << read;
  return out;
}

TEST_F(NotificationServiceTest, WebhookRetriesSurviveKillAndDeliverExactlyOnceSigned) {
  const std::string manager = UniqueName("cm-hook");
  test_support::TestReceiver receiver(/*fail_first=*/0);
  receiver.SetAccepting(false);  // 503 until told otherwise
  const std::string file =
      (std::filesystem::temp_directory_path() / (UniqueName("recipients") + ".json")).string();
  {
    std::ofstream out(file);
    out << nlohmann::json{{kTenant,
                           {{manager,
                             {{"webhook_url", receiver.url("/hook")},
                              {"webhook_secret", test_support::kSecret},
                              {"time_zone", "America/New_York"}}}}}}
               .dump();
  }
  ASSERT_NO_FATAL_FAILURE(notification_.Stop());
  running_ = false;
  extra_args_ = {"--recipients-file=" + file, "--webhook-initial-backoff=200ms",
                 "--webhook-max-backoff=1s", "--webhook-max-attempts=50",
                 "--webhook-ca-file=" + receiver.ca_file(),
                 "--webhook-allow=" + receiver.allow_entry()};
  ASSERT_NO_FATAL_FAILURE(StartNotification());

  const std::string case_id = OpenCase();
  ASSERT_NO_FATAL_FAILURE(Assign(case_id, manager));
  ASSERT_TRUE(testing::WaitUntil([&] { return receiver.requests() >= 2; }, absl::Seconds(30)));
  // Mid-delivery: attempts have failed, none accepted. Kill; the queue is in the log.
  ASSERT_NO_FATAL_FAILURE(notification_.Kill());
  running_ = false;
  EXPECT_TRUE(receiver.accepted().empty());
  ASSERT_NO_FATAL_FAILURE(StartNotification());
  receiver.SetAccepting(true);
  ASSERT_TRUE(testing::WaitUntil([&] { return receiver.accepted().size() == 1; },
                                 absl::Seconds(30)));
  const std::string id = receiver.accepted().begin()->first;
  EXPECT_EQ(Inbox(manager).notifications(0).notification_id(), id);
  // The outcome is audited on the topic; once it is there no attempt follows.
  Outcomes outcomes;
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        outcomes = ReadOutcomes(topic_, id);
        return outcomes.delivered > 0;
      },
      absl::Seconds(30)));
  EXPECT_EQ(outcomes.delivered, 1);
  EXPECT_GE(outcomes.failed, 1);
  for (size_t i = 0; i < outcomes.failed_attempts.size(); ++i) {
    EXPECT_EQ(outcomes.failed_attempts[i], static_cast<int>(i) + 1);
  }
  EXPECT_EQ(outcomes.delivered_attempt, outcomes.failed + 1);
  EXPECT_EQ(receiver.accepted().at(id), 1);
  EXPECT_EQ(receiver.duplicates(), 0);
  EXPECT_EQ(receiver.bad_signatures(), 0);

  // Resend on request: a new series; the receiver sees the same id again (and would
  // deduplicate on it); the topic records a second delivery.
  nv1::ResendRequest resend;
  resend.set_command_id(UniqueName("resend"));
  resend.set_recipient_id(manager);
  resend.set_notification_id(id);
  nv1::ResendResponse resent;
  grpc::Status status = stub_->Resend(Context(manager).get(), resend, &resent);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(testing::WaitUntil([&] { return receiver.accepted().at(id) == 2; },
                                 absl::Seconds(30)));
  ASSERT_TRUE(testing::WaitUntil([&] { return ReadOutcomes(topic_, id).delivered == 2; },
                                 absl::Seconds(30)));
  // The same command id again writes nothing.
  nv1::ResendResponse again;
  ASSERT_TRUE(stub_->Resend(Context(manager).get(), resend, &again).ok());
  EXPECT_EQ(again.version(), resent.version());
  // A recipient without a webhook cannot ask for one.
  resend.set_command_id(UniqueName("resend"));
  resend.set_recipient_id("cm-nohook");
  status = stub_->Resend(Context("cm-nohook").get(), resend, &again);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  std::filesystem::remove(file);
}

// Timer events on the notification topic, per (kind, task id).
struct TimerLog {
  std::map<std::pair<int, std::string>, int> scheduled, cancelled, fired;
};
TimerLog ReadTimers(const std::string& topic) {
  TimerLog out;
  std::map<std::string, std::pair<int, std::string>> key_of;  // timer id -> (kind, task)
  absl::Status read = eventstore::ReadLog(
      testing::Platform::Get().kafka_admin, topic, eventstore::ReplayStart{},
      [&](const eventstore::LoggedEvent& logged) {
        const auto& any = logged.envelope.payload();
        const std::string& id = logged.envelope.aggregate_id();
        nv1::TimerScheduled scheduled;
        if (any.Is<nv1::TimerScheduled>() && any.UnpackTo(&scheduled)) {
          key_of[id] = {scheduled.kind(), scheduled.subject_id()};
          ++out.scheduled[key_of[id]];
        } else if (any.Is<nv1::TimerCancelled>() && key_of.count(id) > 0) {
          ++out.cancelled[key_of[id]];
        } else if (any.Is<nv1::TimerFired>() && key_of.count(id) > 0) {
          ++out.fired[key_of[id]];
        }
        return true;
      },
      absl::Seconds(30));
  EXPECT_TRUE(read.ok()) << read;
  return out;
}

int CountRule(const nv1::ListInboxResponse& inbox, const std::string& rule,
              const std::string& subject) {
  return static_cast<int>(std::count_if(
      inbox.notifications().begin(), inbox.notifications().end(),
      [&](const nv1::Notification& n) { return n.rule_id() == rule && n.subject_id() == subject; }));
}

TEST_F(NotificationServiceTest, TimersSurviveKillFireOnceAndCancelledNeverFire) {
  const std::string manager = UniqueName("cm-timer");
  const std::string supervisor = UniqueName("sup-timer");
  const std::string rules =
      (std::filesystem::temp_directory_path() / (UniqueName("rules") + ".json")).string();
  {
    // Escalation 4 s after the due time (seconds instead of hours: a short test deployment).
    std::ofstream out(rules);
    out << nlohmann::json{
        {"defaults",
         {{"supervisors", {{"*", supervisor}}},
          {"task_escalation_after_seconds", 4},
          {"no_contact_after_hours", 24},
          {"rules",
           {{{"id", "task.overdue"}, {"trigger", "task_overdue"},
             {"audiences", {"task_owner"}}, {"type", "task_overdue"},
             {"title", "A task is overdue"}},
            {{"id", "task.overdue.escalation"}, {"trigger", "task_overdue_escalation"},
             {"audiences", {"supervisor"}}, {"type", "task_overdue"},
             {"title", "A task is still overdue"}},
            {{"id", "assignment.new"}, {"trigger", "case_assigned"},
             {"audiences", {"case_manager"}}, {"type", "assignment"},
             {"title", "A case was assigned to you"}}}}}}}
               .dump();
  }
  ASSERT_NO_FATAL_FAILURE(notification_.Stop());
  running_ = false;
  extra_args_ = {"--rules-file=" + rules};
  ASSERT_NO_FATAL_FAILURE(StartNotification());

  auto cases = cv1::CaseService::NewStub(case_service_->channel());
  const std::string case_id = OpenCaseInCaseService();
  ASSERT_NO_FATAL_FAILURE(AssignInCaseService(case_id, manager));
  cv1::CreateCarePlanRequest plan;
  plan.set_case_id(case_id);
  plan.set_command_id(UniqueName("plan"));
  plan.set_title("follow-up");
  plan.add_problems("needs a visit");
  cv1::CreateCarePlanResponse planned;
  grpc::Status status = cases->CreateCarePlan(Context(manager).get(), plan, &planned);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // Whole seconds: the due time travels as a Timestamp of seconds.
  const absl::Time due = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) + 12);
  std::vector<std::string> tasks;
  for (int i = 0; i < 2; ++i) {
    cv1::AddCareTaskRequest task;
    task.set_case_id(case_id);
    task.set_command_id(UniqueName("task"));
    task.set_description("call back");
    task.set_owner_id(manager);
    task.mutable_due_at()->set_seconds(absl::ToUnixSeconds(due));
    cv1::AddCareTaskResponse added;
    status = cases->AddCareTask(Context(manager).get(), task, &added);
    ASSERT_TRUE(status.ok()) << status.error_message();
    tasks.push_back(added.task_id());
  }
  // The second task is finished before it is due: its timers are cancelled.
  cv1::ChangeCareTaskStatusRequest done;
  done.set_case_id(case_id);
  done.set_command_id(UniqueName("done"));
  done.set_task_id(tasks[1]);
  done.set_status(cv1::TASK_STATUS_CANCELLED);
  done.set_reason("no longer needed");
  cv1::ChangeCareTaskStatusResponse changed;
  status = cases->ChangeCareTaskStatus(Context(manager).get(), done, &changed);
  ASSERT_TRUE(status.ok()) << status.error_message();

  const auto overdue = [&](const std::string& task) {
    return std::make_pair(static_cast<int>(nv1::TIMER_KIND_TASK_OVERDUE), task);
  };
  const auto escalation = [&](const std::string& task) {
    return std::make_pair(static_cast<int>(nv1::TIMER_KIND_TASK_OVERDUE_ESCALATION), task);
  };
  TimerLog log;
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        log = ReadTimers(topic_);
        return log.scheduled[overdue(tasks[0])] == 1 && log.scheduled[escalation(tasks[0])] == 1 &&
               log.cancelled[overdue(tasks[1])] == 1 && log.cancelled[escalation(tasks[1])] == 1;
      },
      absl::Seconds(20)))
      << "timers not stored";
  EXPECT_EQ(log.scheduled[overdue(tasks[1])], 1);
  // Killed before anything is due: the timers live only in the log now.
  ASSERT_LT(absl::Now(), due) << "the test machine was too slow to kill before the due time";
  ASSERT_NO_FATAL_FAILURE(notification_.Kill());
  running_ = false;
  ASSERT_NO_FATAL_FAILURE(StartNotification());

  ASSERT_TRUE(testing::WaitUntil(
      [&] { return CountRule(Inbox(manager), "task.overdue", tasks[0]) > 0; },
      absl::Seconds(60)))
      << "the overdue timer did not fire after the restart";
  EXPECT_GE(absl::Now(), due);
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return CountRule(Inbox(supervisor), "task.overdue.escalation", tasks[0]) > 0; },
      absl::Seconds(60)))
      << "the escalation timer did not fire";
  EXPECT_GE(absl::Now(), due + absl::Seconds(4));
  // Both timers of the finished task were due before the escalation fired: none fired.
  nv1::ListInboxResponse owner_inbox = Inbox(manager);
  EXPECT_EQ(CountRule(owner_inbox, "task.overdue", tasks[0]), 1);
  EXPECT_EQ(CountRule(owner_inbox, "task.overdue", tasks[1]), 0);
  nv1::ListInboxResponse supervisor_inbox = Inbox(supervisor);
  EXPECT_EQ(CountRule(supervisor_inbox, "task.overdue.escalation", tasks[0]), 1);
  EXPECT_EQ(CountRule(supervisor_inbox, "task.overdue.escalation", tasks[1]), 0);
  for (const auto& n : owner_inbox.notifications()) {
    if (n.rule_id() == "task.overdue") {
      EXPECT_EQ(n.link(), "/cases/" + case_id + "/tasks/" + tasks[0]);
    }
  }

  // Another restart re-reads the case topic from the start: nothing is scheduled or fired
  // again. Once the timers are armed, every re-read event has been handled.
  ASSERT_NO_FATAL_FAILURE(notification_.Kill());
  running_ = false;
  ASSERT_NO_FATAL_FAILURE(StartNotification());
  EXPECT_FALSE(notification_.WaitForLog("source topic read to its end; timers armed",
                                        absl::Seconds(60))
                   .is_null());
  log = ReadTimers(topic_);
  for (const std::string& task : tasks) {
    EXPECT_EQ(log.scheduled[overdue(task)], 1) << task;
    EXPECT_EQ(log.scheduled[escalation(task)], 1) << task;
  }
  EXPECT_EQ(log.fired[overdue(tasks[0])], 1);
  EXPECT_EQ(log.fired[escalation(tasks[0])], 1);
  EXPECT_EQ(log.fired[overdue(tasks[1])], 0);
  EXPECT_EQ(log.fired[escalation(tasks[1])], 0);
  EXPECT_EQ(CountRule(Inbox(manager), "task.overdue", tasks[0]), 1);
  EXPECT_EQ(CountRule(Inbox(supervisor), "task.overdue.escalation", tasks[0]), 1);
  std::filesystem::remove(rules);
}

TEST_F(NotificationServiceTest, PreferencesByRpcRouteWebhooksToANamedEndpointAndSurviveRestart) {
  const std::string manager = UniqueName("cm-prefs");
  test_support::TestReceiver receiver(/*fail_first=*/0);
  const auto dir = std::filesystem::temp_directory_path();
  const std::string secret_file = (dir / (UniqueName("secret") + ".txt")).string();
  const std::string endpoints_file = (dir / (UniqueName("endpoints") + ".json")).string();
  {
    std::ofstream(secret_file) << test_support::kSecret << "\n";
    std::ofstream(endpoints_file)
        << nlohmann::json{{kTenant,
                           {{"pager",
                             {{"url", receiver.url("/pager")},
                              {"secret_file", secret_file}}}}}}
               .dump();
  }
  ASSERT_NO_FATAL_FAILURE(notification_.Stop());
  running_ = false;
  extra_args_ = {"--webhook-endpoints-file=" + endpoints_file,
                 "--webhook-ca-file=" + receiver.ca_file(),
                 "--webhook-allow=" + receiver.allow_entry()};
  ASSERT_NO_FATAL_FAILURE(StartNotification());

  nv1::SetPreferencesRequest set;
  set.set_command_id(UniqueName("prefs"));
  set.set_recipient_id(manager);
  auto* p = set.mutable_preferences();
  p->add_channels(nv1::NOTIFICATION_CHANNEL_WEBHOOK);
  p->set_webhook_endpoint_id("no-such-endpoint");
  p->set_time_zone("Europe/Atlantis");
  p->mutable_quiet_hours()->set_start_minute(2000);
  nv1::SetPreferencesResponse stored;
  grpc::Status status = stub_->SetPreferences(Context(manager).get(), set, &stored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto fields = FieldsOf(status);
  std::sort(fields.begin(), fields.end());
  EXPECT_EQ(fields, (std::vector<std::string>{"preferences.quiet_hours.start_minute",
                                              "preferences.time_zone",
                                              "preferences.webhook_endpoint_id"}));
  // Nothing was written: the recipient still has the deployment's defaults.
  nv1::GetPreferencesRequest get;
  get.set_recipient_id(manager);
  nv1::GetPreferencesResponse got;
  ASSERT_TRUE(stub_->GetPreferences(Context(manager).get(), get, &got).ok());
  EXPECT_EQ(got.version(), 0);

  p->set_webhook_endpoint_id("pager");
  p->set_time_zone("Europe/Berlin");
  p->mutable_quiet_hours()->set_start_minute(0);
  p->add_opted_out_types("reminder");
  status = stub_->SetPreferences(Context(manager).get(), set, &stored);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(stored.version(), 1);
  EXPECT_EQ(stored.position().topic(), topic_);
  // Someone else's preferences are not theirs to change.
  status = stub_->SetPreferences(Context("cm-intruder").get(), set, &stored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // An assignment now reaches the pager endpoint, signed with the secret from its file.
  const std::string case_id = OpenCase();
  ASSERT_NO_FATAL_FAILURE(Assign(case_id, manager));
  ASSERT_TRUE(testing::WaitUntil([&] { return receiver.accepted().size() == 1; },
                                 absl::Seconds(30)));
  EXPECT_EQ(receiver.accepted().begin()->first, Inbox(manager).notifications(0).notification_id());
  EXPECT_EQ(receiver.bad_signatures(), 0);

  // The preferences are events: a restart replays them.
  ASSERT_NO_FATAL_FAILURE(notification_.Stop());
  running_ = false;
  ASSERT_NO_FATAL_FAILURE(StartNotification());
  ASSERT_TRUE(stub_->GetPreferences(Context(manager).get(), get, &got).ok());
  EXPECT_EQ(got.version(), 1);
  EXPECT_EQ(got.preferences().time_zone(), "Europe/Berlin");
  EXPECT_EQ(got.preferences().webhook_endpoint_id(), "pager");
  ASSERT_EQ(got.preferences().opted_out_types_size(), 1);
  EXPECT_EQ(got.preferences().opted_out_types(0), "reminder");
  // The secret is nowhere on the topic.
  absl::Status read = eventstore::ReadLog(
      testing::Platform::Get().kafka_admin, topic_, eventstore::ReplayStart{},
      [&](const eventstore::LoggedEvent& logged) {
        EXPECT_EQ(logged.envelope.SerializeAsString().find(test_support::kSecret),
                  std::string::npos);
        return true;
      },
      absl::Seconds(30));
  EXPECT_TRUE(read.ok()) << read;
  std::filesystem::remove(secret_file);
  std::filesystem::remove(endpoints_file);
}

TEST_F(NotificationServiceTest, BadInputAndSomeoneElsesInboxAreRefused) {
  nv1::MarkReadRequest read;  // everything missing
  nv1::MarkReadResponse marked;
  grpc::Status status = stub_->MarkRead(Context("cm-a").get(), read, &marked);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto fields = FieldsOf(status);
  EXPECT_NE(std::find(fields.begin(), fields.end(), "command_id"), fields.end());
  EXPECT_NE(std::find(fields.begin(), fields.end(), "notification_id"), fields.end());

  nv1::ListInboxRequest list;
  list.set_recipient_id("cm-b");
  nv1::ListInboxResponse listed;
  status = stub_->ListInbox(Context("cm-a").get(), list, &listed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  read.set_command_id("c1");
  read.set_recipient_id("cm-a");
  read.set_notification_id("no-such-notification");
  status = stub_->MarkRead(Context("cm-a").get(), read, &marked);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);

  auto no_identity = std::make_unique<grpc::ClientContext>();
  status = stub_->ListInbox(no_identity.get(), list, &listed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// Break-glass: the case service records an emergency grant; the tenant's privacy officers
// and the supervisors of the case's team (from the organisation topic) find an urgent
// notification in their inboxes, with ids and times only. The case service's topics are
// written through its event store (relations::testing::CaseServiceLog), as it writes them.
TEST_F(NotificationServiceTest, EmergencyAccessReachesPrivacyOfficersAndTeamSupervisorsAtOnce) {
  relations::testing::CaseServiceLog* log = case_log_;
  const std::string officer = UniqueName("po"), supervisor = UniqueName("sup"), other = UniqueName("sup");
  const std::string team = UniqueName("team"), user = UniqueName("cm");
  log->Configure(kTenant, {officer});
  log->SetTeam(kTenant, team, {supervisor}, {user});
  log->SetTeam(kTenant, UniqueName("team"), {other}, {});
  const std::string case_id = log->Open(kTenant, team);
  const absl::Time until = absl::FromUnixSeconds((absl::ToUnixSeconds(absl::Now()) / 60 + 30) * 60);
  log->Grant(kTenant, case_id, "emergency-1", user, team, until);

  auto find = [&](const std::string& recipient, const std::string& role) -> std::optional<nv1::Notification> {
    const nv1::ListInboxResponse inbox = Inbox(recipient, role);
    for (const nv1::Notification& n : inbox.notifications()) {
      if (n.rule_id() == "emergency.access" && n.case_id() == case_id) return n;
    }
    return std::nullopt;
  };
  std::optional<nv1::Notification> to_officer, to_supervisor;
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        if (!to_officer) to_officer = find(officer, "privacy_officer");
        if (!to_supervisor) to_supervisor = find(supervisor, "supervisor");
        return to_officer.has_value() && to_supervisor.has_value();
      },
      absl::Seconds(30)));
  for (const nv1::Notification* n : {&*to_officer, &*to_supervisor}) {
    EXPECT_EQ(n->priority(), nv1::NOTIFICATION_PRIORITY_URGENT);
    EXPECT_EQ(n->subject_id(), "emergency-1");
    EXPECT_EQ(n->type(), "emergency_access");
    EXPECT_EQ(n->detail(), absl::StrCat("grant emergency-1 to ", user, " (ROLE_CASE_MANAGER) until ",
                                        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", until, absl::UTCTimeZone())));
  }
  // Nobody else: not the supervisor of another team, not the one who broke the glass.
  EXPECT_FALSE(find(other, "supervisor").has_value());
  EXPECT_FALSE(find(user, "case_manager").has_value());
  // The inbox is its recipient's: the supervisor cannot read the privacy officer's.
  nv1::ListInboxRequest foreign;
  foreign.set_recipient_id(officer);
  nv1::ListInboxResponse listed;
  EXPECT_EQ(stub_->ListInbox(Context(supervisor, "supervisor").get(), foreign, &listed).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace clinical::notification

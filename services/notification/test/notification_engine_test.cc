// Unit tests of NotificationEngine against an in-memory log (no Kafka): durable timers
// (stored once per cause, moved, cancelled, fired once, rebuilt by replay, armed only after
// the source re-read) and preferences (validation with field violations, endpoint ids
// instead of secrets, replayed).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <sstream>

#include "clinical/case/v1/events.pb.h"
#include "clinical/grpcx/status.h"
#include "notification_engine.h"

namespace clinical::notification {
namespace {

namespace cv1 = clinical::case_::v1;
namespace nv1 = clinical::notification::v1;
using ::testing::UnorderedElementsAre;

// An append-only log with the event store's rules that matter here: command-id idempotency,
// expected version (no stream / exactly).
class FakeLog {
 public:
  absl::StatusOr<eventstore::AppendResult> Append(eventstore::AppendRequest request) {
    if (auto it = results_.find(request.command_id); it != results_.end()) {
      eventstore::AppendResult again = it->second;
      again.duplicate = true;
      return again;
    }
    int64_t& version = versions_[request.aggregate_id];
    if (!request.expected_version.Matches(version)) {
      return absl::AbortedError("version mismatch");
    }
    eventstore::AppendResult result;
    result.first_version = version + 1;
    for (auto& event : request.events) {
      event.set_aggregate_id(request.aggregate_id);
      event.set_aggregate_version(++version);
      event.set_event_id(absl::StrCat("n-", events_.size()));
      events_.push_back(event);
    }
    result.last_version = version;
    results_[request.command_id] = result;
    return result;
  }
  const std::vector<common::v1::EventEnvelope>& events() const { return events_; }
  template <typename T>
  int Count() const {
    int n = 0;
    for (const auto& e : events_) n += e.payload().Is<T>() ? 1 : 0;
    return n;
  }

 private:
  std::map<std::string, int64_t> versions_;
  std::map<std::string, eventstore::AppendResult> results_;
  std::vector<common::v1::EventEnvelope> events_;
};

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

class NotificationEngineTest : public ::testing::Test {
 protected:
  NotificationEngineTest() : logger_("notification-test", log_output_) {
    options_.rules.defaults.supervisor_by_team["*"] = "sup-1";
    options_.rules.defaults.no_contact_after = absl::Hours(1);
    options_.endpoints[NotificationEngine::RecipientKey("t1", "sms")] =
        WebhookEndpoint{"https://127.0.0.1:9/sms", "endpoint-secret"};
    engine_ = MakeEngine();
  }

  std::unique_ptr<NotificationEngine> MakeEngine() {
    return std::make_unique<NotificationEngine>(
        [this](eventstore::AppendRequest request) { return log_.Append(std::move(request)); },
        options_, [this] { return now_; }, logger_);
  }

  // A fresh engine rebuilt from the log, as after a restart. `first` are replayed before
  // the rest (the topic's partitions interleave in any order).
  std::unique_ptr<NotificationEngine> Restarted(
      const std::function<bool(const common::v1::EventEnvelope&)>& first = nullptr) {
    auto engine = MakeEngine();
    for (bool early : {true, false}) {
      for (const auto& event : log_.events()) {
        if ((first && first(event)) != early) continue;
        eventstore::LoggedEvent logged;
        logged.envelope = event;
        EXPECT_TRUE(engine->Replay(logged).ok());
      }
    }
    engine->FinishReplay();
    return engine;
  }

  template <typename T>
  common::v1::EventEnvelope CaseEvent(const T& payload, const std::string& event_id) {
    common::v1::EventEnvelope envelope;
    envelope.set_event_id(event_id);
    envelope.set_aggregate_id("case-1");
    envelope.set_aggregate_type("case");
    envelope.set_tenant_id("t1");
    envelope.mutable_actor()->set_user_id("sup-1");
    envelope.mutable_occurred_at()->set_seconds(absl::ToUnixSeconds(now_));
    envelope.mutable_payload()->PackFrom(payload);
    return envelope;
  }

  // Opens case-1 (ev-open) and assigns it to cm-1 (ev-assign) at the current time.
  void OpenAndAssign(NotificationEngine& engine) {
    cv1::CaseOpened opened;
    opened.set_program("elder_care");
    opened.set_team_id("team-a");
    ASSERT_TRUE(engine.OnSourceEvent(CaseEvent(opened, "ev-open")).ok());
    cv1::CaseAssigned assigned;
    assigned.set_case_manager_id("cm-1");
    ASSERT_TRUE(engine.OnSourceEvent(CaseEvent(assigned, "ev-assign")).ok());
  }

  std::vector<std::string> Rules(NotificationEngine& engine, const std::string& recipient) {
    grpcx::Caller caller;
    caller.actor.set_user_id(recipient);
    caller.tenant_id = "t1";
    nv1::ListInboxRequest request;
    request.set_recipient_id(recipient);
    auto inbox = engine.ListInbox(caller, request);
    EXPECT_TRUE(inbox.ok());
    std::vector<std::string> out;
    for (const auto& n : inbox->notifications()) out.push_back(n.rule_id());
    return out;
  }

  static grpcx::Caller Caller(const std::string& user) {
    grpcx::Caller caller;
    caller.actor.set_user_id(user);
    caller.actor.set_role(common::v1::ROLE_CASE_MANAGER);
    caller.tenant_id = "t1";
    return caller;
  }

  std::ostringstream log_output_;
  logging::Logger logger_;
  FakeLog log_;
  absl::Time now_ = kT0;
  EngineOptions options_;
  std::unique_ptr<NotificationEngine> engine_;
};

TEST_F(NotificationEngineTest, TimersAreNotHandedOutBeforeTheSourceReReadEnds) {
  ASSERT_NO_FATAL_FAILURE(OpenAndAssign(*engine_));
  absl::Time next;
  EXPECT_FALSE(engine_->NextDueTimer(kT0 + absl::Hours(2), &next).has_value());
  engine_->SetTimersReady();
  EXPECT_TRUE(engine_->NextDueTimer(kT0 + absl::Hours(2), &next).has_value());
}

TEST_F(NotificationEngineTest, NoContactTimerMovesWithContactFiresOnceAndSurvivesRestart) {
  ASSERT_NO_FATAL_FAILURE(OpenAndAssign(*engine_));
  engine_->SetTimersReady();
  EXPECT_EQ(log_.Count<nv1::TimerScheduled>(), 1);
  absl::Time next;
  EXPECT_FALSE(engine_->NextDueTimer(kT0 + absl::Minutes(30), &next).has_value());
  EXPECT_EQ(next, kT0 + absl::Hours(1));
  EXPECT_EQ(engine_->timer_stats().earliest_due, kT0 + absl::Hours(1));

  // A contact at +30 min starts a new period: due at +90 min, the old one never fires.
  now_ = kT0 + absl::Minutes(30);
  cv1::NoteAdded contact;
  contact.set_kind(cv1::NOTE_KIND_CONTACT);
  const auto contact_event = CaseEvent(contact, "ev-contact");
  ASSERT_TRUE(engine_->OnSourceEvent(contact_event).ok());
  EXPECT_EQ(engine_->pending_timer_count(), 1u);
  EXPECT_FALSE(engine_->NextDueTimer(kT0 + absl::Hours(1), &next).has_value());
  EXPECT_EQ(next, kT0 + absl::Minutes(90));

  now_ = kT0 + absl::Minutes(91);
  auto timer = engine_->NextDueTimer(now_, &next);
  ASSERT_TRUE(timer.has_value());
  EXPECT_EQ(timer->trigger, Trigger::kNoContact);
  ASSERT_TRUE(engine_->FireTimer(*timer).ok());
  EXPECT_EQ(Rules(*engine_, "cm-1"),
            (std::vector<std::string>{"contact.none", "assignment.new"}));
  EXPECT_EQ(engine_->pending_timer_count(), 0u);
  // Firing the same timer again (a worker racing itself) appends nothing.
  const size_t appended = log_.events().size();
  ASSERT_TRUE(engine_->FireTimer(*timer).ok());
  EXPECT_EQ(log_.events().size(), appended);
  const auto stats = engine_->timer_stats();  // what the metrics publish
  EXPECT_TRUE(stats.armed);
  EXPECT_EQ(stats.pending, 0u);
  EXPECT_EQ(stats.fired_here, 1);
  EXPECT_EQ(stats.earliest_due, absl::InfiniteFuture());

  // Restart: the replay knows the timer fired; re-reading the source topic stores nothing.
  auto restarted = Restarted();
  ASSERT_NO_FATAL_FAILURE(OpenAndAssign(*restarted));
  ASSERT_TRUE(restarted->OnSourceEvent(contact_event).ok());
  restarted->SetTimersReady();
  EXPECT_EQ(log_.events().size(), appended);
  EXPECT_EQ(restarted->pending_timer_count(), 0u);
  EXPECT_EQ(restarted->timer_stats().fired_here, 0);
  EXPECT_FALSE(restarted->NextDueTimer(now_ + absl::Hours(10), &next).has_value());
  EXPECT_EQ(Rules(*restarted, "cm-1"),
            (std::vector<std::string>{"contact.none", "assignment.new"}));
}

TEST_F(NotificationEngineTest, ClosureCancelsAndACancelledTimerNeverFires) {
  ASSERT_NO_FATAL_FAILURE(OpenAndAssign(*engine_));
  engine_->SetTimersReady();
  now_ = kT0 + absl::Minutes(10);
  ASSERT_TRUE(engine_->OnSourceEvent(CaseEvent(cv1::CaseClosed(), "ev-closed")).ok());
  EXPECT_EQ(log_.Count<nv1::TimerCancelled>(), 1);
  EXPECT_EQ(engine_->pending_timer_count(), 0u);
  absl::Time next;
  EXPECT_FALSE(engine_->NextDueTimer(kT0 + absl::Hours(5), &next).has_value());
  EXPECT_EQ(next, absl::InfiniteFuture());
  // The same closure re-read after a restart cancels nothing twice.
  auto restarted = Restarted();
  ASSERT_TRUE(restarted->OnSourceEvent(CaseEvent(cv1::CaseClosed(), "ev-closed")).ok());
  EXPECT_EQ(log_.Count<nv1::TimerCancelled>(), 1);
  EXPECT_EQ(log_.Count<nv1::TimerFired>(), 0);
}

TEST_F(NotificationEngineTest, OverdueTaskGoesToItsCurrentOwnerAfterAHandOver) {
  ASSERT_NO_FATAL_FAILURE(OpenAndAssign(*engine_));
  engine_->SetTimersReady();
  cv1::CareTaskAdded task;
  task.set_task_id("task-1");
  task.set_owner_id("cm-1");
  task.mutable_due_at()->set_seconds(absl::ToUnixSeconds(kT0 + absl::Minutes(5)));
  ASSERT_TRUE(engine_->OnSourceEvent(CaseEvent(task, "ev-task")).ok());
  cv1::CareTaskStatusChanged handed;
  handed.set_task_id("task-1");
  handed.set_to(cv1::TASK_STATUS_IN_PROGRESS);
  handed.set_owner_id("cm-2");
  ASSERT_TRUE(engine_->OnSourceEvent(CaseEvent(handed, "ev-hand")).ok());
  now_ = kT0 + absl::Minutes(6);
  absl::Time next;
  auto timer = engine_->NextDueTimer(now_, &next);
  ASSERT_TRUE(timer.has_value());
  EXPECT_EQ(timer->trigger, Trigger::kTaskOverdue);
  ASSERT_TRUE(engine_->FireTimer(*timer).ok());
  EXPECT_EQ(Rules(*engine_, "cm-2"), (std::vector<std::string>{"task.overdue"}));
  EXPECT_EQ(Rules(*engine_, "cm-1"), (std::vector<std::string>{"assignment.new"}));
}

TEST_F(NotificationEngineTest, TimersLongPastAreHistoryNotScheduled) {
  options_.max_event_age = absl::Hours(24);
  engine_ = MakeEngine();
  cv1::CareTaskAdded task;
  task.set_task_id("task-old");
  task.set_owner_id("cm-1");
  task.mutable_due_at()->set_seconds(absl::ToUnixSeconds(kT0 - absl::Hours(24 * 30)));
  ASSERT_TRUE(engine_->OnSourceEvent(CaseEvent(task, "ev-old")).ok());
  EXPECT_EQ(log_.Count<nv1::TimerScheduled>(), 0);
}

std::vector<std::string> Fields(const absl::Status& status) {
  std::vector<std::string> out;
  for (const auto& v : grpcx::FieldViolationsOf(status)) out.push_back(v.field);
  return out;
}

TEST_F(NotificationEngineTest, PreferencesAreValidatedWithFieldViolationsAndNothingWritten) {
  nv1::SetPreferencesRequest request;
  request.set_command_id("c1");
  request.set_recipient_id("cm-1");
  auto* p = request.mutable_preferences();
  p->add_channels(nv1::NOTIFICATION_CHANNEL_UNSPECIFIED);
  p->add_channels(nv1::NOTIFICATION_CHANNEL_WEBHOOK);
  p->set_time_zone("Mars/Olympus_Mons");
  p->mutable_quiet_hours()->set_start_minute(1440);
  p->mutable_quiet_hours()->set_end_minute(-1);
  p->add_opted_out_types("no_such_type");
  p->add_opted_out_types("reminder");
  p->add_opted_out_types("reminder");
  auto result = engine_->SetPreferences(Caller("cm-1"), request);
  ASSERT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Fields(result.status()),
              UnorderedElementsAre("preferences.channels[0]", "preferences.time_zone",
                                   "preferences.quiet_hours.start_minute",
                                   "preferences.quiet_hours.end_minute",
                                   "preferences.opted_out_types[0]",
                                   "preferences.opted_out_types[2]",
                                   "preferences.webhook_endpoint_id"));
  // Zone names that are not IANA names (the server's zone, fixed offsets, paths).
  for (const std::string zone : {"localtime", "Fixed/UTC+01:00:00", "../../etc/passwd"}) {
    nv1::SetPreferencesRequest bad;
    bad.set_command_id("c2");
    bad.set_recipient_id("cm-1");
    bad.mutable_preferences()->set_time_zone(zone);
    EXPECT_THAT(Fields(engine_->SetPreferences(Caller("cm-1"), bad).status()),
                UnorderedElementsAre("preferences.time_zone"))
        << zone;
  }
  // Another tenant's endpoint is unknown here.
  nv1::SetPreferencesRequest other = request;
  other.clear_preferences();
  other.mutable_preferences()->add_channels(nv1::NOTIFICATION_CHANNEL_WEBHOOK);
  other.mutable_preferences()->set_webhook_endpoint_id("sms");
  grpcx::Caller t2 = Caller("cm-1");
  t2.tenant_id = "t2";
  EXPECT_THAT(Fields(engine_->SetPreferences(t2, other).status()),
              UnorderedElementsAre("preferences.webhook_endpoint_id"));
  EXPECT_THAT(Fields(engine_->SetPreferences(Caller("cm-1"), nv1::SetPreferencesRequest())
                         .status()),
              UnorderedElementsAre("command_id", "recipient_id", "preferences"));
  EXPECT_TRUE(log_.events().empty());
}

TEST_F(NotificationEngineTest, PreferencesNameAnEndpointDriveTheWebhookAndSurviveRestart) {
  nv1::GetPreferencesRequest get;
  get.set_recipient_id("cm-1");
  auto defaults = engine_->GetPreferences(Caller("cm-1"), get);
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->version(), 0);
  EXPECT_EQ(defaults->preferences().time_zone(), "UTC");

  nv1::SetPreferencesRequest set;
  set.set_command_id("c1");
  set.set_recipient_id("cm-1");
  set.mutable_preferences()->add_channels(nv1::NOTIFICATION_CHANNEL_WEBHOOK);
  set.mutable_preferences()->set_webhook_endpoint_id("sms");
  set.mutable_preferences()->set_time_zone("Asia/Tokyo");
  set.mutable_preferences()->add_opted_out_types("reminder");
  auto stored = engine_->SetPreferences(Caller("cm-1"), set);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->version(), 1);
  // The inbox is always on; the event names the endpoint, never its URL or secret.
  EXPECT_THAT(stored->preferences().channels(),
              UnorderedElementsAre(nv1::NOTIFICATION_CHANNEL_WEBHOOK,
                                   nv1::NOTIFICATION_CHANNEL_IN_APP));
  ASSERT_EQ(log_.Count<nv1::PreferencesSet>(), 1);
  const std::string event = log_.events().back().DebugString();
  EXPECT_EQ(event.find("endpoint-secret"), std::string::npos);
  EXPECT_EQ(event.find("127.0.0.1"), std::string::npos);
  // The same command again writes nothing; a stale expected version is refused.
  ASSERT_TRUE(engine_->SetPreferences(Caller("cm-1"), set).ok());
  EXPECT_EQ(log_.Count<nv1::PreferencesSet>(), 1);
  set.set_command_id("c2");
  set.set_expected_version(7);
  EXPECT_EQ(engine_->SetPreferences(Caller("cm-1"), set).status().code(),
            absl::StatusCode::kAborted);

  // A notification for cm-1 now goes to the endpoint, signed with its secret.
  ASSERT_NO_FATAL_FAILURE(OpenAndAssign(*engine_));
  absl::Time next;
  auto due = engine_->NextDueWebhook(now_, &next);
  ASSERT_TRUE(due.has_value());
  EXPECT_EQ(due->webhook_url, "https://127.0.0.1:9/sms");
  EXPECT_EQ(due->webhook_secret, "endpoint-secret");
  EXPECT_EQ(due->notification.recipient_id, "cm-1");

  // Restarted with the notification replayed before the preferences (another partition):
  // the webhook is still queued, from the final preferences.
  auto restarted = Restarted([](const common::v1::EventEnvelope& e) {
    return e.payload().Is<nv1::NotificationCreated>();
  });
  auto requeued = restarted->NextDueWebhook(now_, &next);
  ASSERT_TRUE(requeued.has_value());
  EXPECT_EQ(requeued->notification.notification_id, due->notification.notification_id);
  EXPECT_EQ(requeued->webhook_secret, "endpoint-secret");
  auto after = restarted->GetPreferences(Caller("cm-1"), get);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->version(), 1);
  EXPECT_EQ(after->preferences().time_zone(), "Asia/Tokyo");
  EXPECT_EQ(after->preferences().webhook_endpoint_id(), "sms");
}

TEST(EmergencyRecipientsTest, PrivacyOfficersAndTheSupervisorsOfTheGrantsTeam) {
  relations::OrganisationFacts organisation;
  organisation.privacy_officer_ids = {"po-1"};
  cv1::Team north;
  north.set_team_id("north");
  north.add_supervisor_ids("sup-n");
  north.add_member_ids("cm-1");
  organisation.teams["north"] = north;
  cv1::Team south;
  south.set_team_id("south");
  south.add_supervisor_ids("sup-s");
  organisation.teams["south"] = south;

  Fact fact;
  fact.trigger = Trigger::kEmergencyAccessGranted;
  fact.team_id = "north";
  EnrichFromOrganisation(fact, organisation);
  EXPECT_EQ(fact.privacy_officer_ids, std::vector<std::string>{"po-1"});
  EXPECT_EQ(fact.team_supervisor_ids, std::vector<std::string>{"sup-n"});

  // Other facts are not addressed to the organisation.
  Fact other;
  other.trigger = Trigger::kEscalation;
  other.team_id = "north";
  EnrichFromOrganisation(other, organisation);
  EXPECT_TRUE(other.privacy_officer_ids.empty());
  EXPECT_TRUE(other.team_supervisor_ids.empty());
}

}  // namespace
}  // namespace clinical::notification

// The application layer without Kafka: an in-memory log with the event store's contract.
// Idempotent retries, optimistic concurrency, the cross-case caseload index, stale-state
// recovery after an unacknowledged append, and tenant isolation.
#include <map>

#include "absl/strings/str_cat.h"
#include "case_engine.h"
#include "gtest/gtest.h"

namespace clinical::case_service {
namespace {

class MemoryLog : public EventLog {
 public:
  absl::StatusOr<eventstore::AppendResult> Append(eventstore::AppendRequest request) override {
    ++appends;
    if (fail_next) {
      fail_next = false;
      if (commit_before_failing) Commit(request);
      return absl::UnavailableError("broker did not answer");
    }
    auto& done = commands_[{request.aggregate_id, request.command_id}];
    if (done.last_version > 0) {
      eventstore::AppendResult again = done;
      again.duplicate = true;
      return again;
    }
    auto& events = log_[request.aggregate_id];
    if (!request.expected_version.Matches(static_cast<int64_t>(events.size()))) {
      return absl::AbortedError("version conflict");
    }
    done = Commit(request);
    return done;
  }
  absl::StatusOr<std::vector<eventstore::LoggedEvent>> Load(const std::string& id,
                                                            int64_t from) const override {
    std::vector<eventstore::LoggedEvent> out;
    auto it = log_.find(id);
    if (it == log_.end()) return out;
    for (const auto& e : it->second) {
      if (e.envelope.aggregate_version() >= from) out.push_back(e);
    }
    return out;
  }
  int64_t Events(const std::string& id) const {
    auto it = log_.find(id);
    return it == log_.end() ? 0 : static_cast<int64_t>(it->second.size());
  }

  int appends = 0;
  bool fail_next = false;
  bool commit_before_failing = false;

 private:
  eventstore::AppendResult Commit(const eventstore::AppendRequest& request) {
    auto& events = log_[request.aggregate_id];
    eventstore::AppendResult result;
    result.first_version = static_cast<int64_t>(events.size()) + 1;
    for (auto envelope : request.events) {
      envelope.set_aggregate_id(request.aggregate_id);
      envelope.set_aggregate_version(static_cast<int64_t>(events.size()) + 1);
      envelope.set_command_id(request.command_id);
      events.push_back({envelope, 0, next_offset_++});
    }
    result.last_version = static_cast<int64_t>(events.size());
    result.position.set_offset(next_offset_ - 1);
    commands_[{request.aggregate_id, request.command_id}] = result;
    return result;
  }
  std::map<std::string, std::vector<eventstore::LoggedEvent>> log_;
  std::map<std::pair<std::string, std::string>, eventstore::AppendResult> commands_;
  int64_t next_offset_ = 0;
};

grpcx::Caller CallerOf(const std::string& user, common::v1::Role role = common::v1::ROLE_CASE_MANAGER,
                       const std::string& tenant = "tenant-a") {
  grpcx::Caller caller;
  caller.actor.set_user_id(user);
  caller.actor.set_role(role);
  caller.tenant_id = tenant;
  return caller;
}

class CaseEngineTest : public ::testing::Test {
 protected:
  CaseEngineTest()
      : programs_(*ProgramCatalog::Parse(
            R"({"default": {"programs": {"hiv": {"caseload_limit": 8, "closure_requires_approval": false}}}})")),
        engine_(log_, programs_, "topic", [] { return absl::FromUnixSeconds(1'767'225'600); },
                [this] { return absl::StrCat("00000000-0000-4000-8000-00000000000", next_id_++); }) {}

  std::string Open(const std::string& command_id, int acuity = 3) {
    v1::OpenCaseRequest open;
    open.set_command_id(command_id);
    open.mutable_patient()->set_mrn("M1");
    open.set_program("hiv");
    open.set_priority(1);
    open.set_acuity(acuity);
    open.set_initial_status(v1::CASE_STATUS_ACTIVE);
    auto outcome = engine_.Open(CallerOf("cm-1"), open);
    EXPECT_TRUE(outcome.ok()) << outcome.status();
    return outcome.ok() ? outcome->case_id : "";
  }
  absl::StatusOr<CommandOutcome> Assign(const std::string& id, const std::string& command_id,
                                        const std::string& manager) {
    v1::AssignCaseRequest assign;
    assign.set_case_manager_id(manager);
    return engine_.Execute(CallerOf("sup-1", common::v1::ROLE_SUPERVISOR), id, command_id,
                           std::nullopt, assign);
  }

  MemoryLog log_;
  ProgramCatalog programs_;
  int next_id_ = 1;
  CaseEngine engine_;
};

TEST_F(CaseEngineTest, RetriedCommandReturnsTheOriginalResultAndWritesNothing) {
  const std::string id = Open("open-1");
  v1::AddNoteRequest note;
  note.set_kind(v1::NOTE_KIND_PROGRESS);
  note.set_text("first");
  auto first = engine_.Execute(CallerOf("cm-1"), id, "note-a", std::nullopt, note);
  ASSERT_TRUE(first.ok());
  auto more = engine_.Execute(CallerOf("cm-1"), id, "note-b", std::nullopt, note);
  ASSERT_TRUE(more.ok());
  const int appends = log_.appends;
  auto retry = engine_.Execute(CallerOf("cm-1"), id, "note-a", std::nullopt, note);
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->version, first->version);
  EXPECT_EQ(retry->detail, "note-1");
  EXPECT_EQ(retry->position.offset(), first->position.offset());
  EXPECT_EQ(log_.appends, appends) << "answered without touching the log";
  EXPECT_EQ(log_.Events(id), 3);
}

TEST_F(CaseEngineTest, RetriedOpenWithoutCaseIdFindsTheSameCase) {
  const std::string id = Open("open-1");
  EXPECT_EQ(Open("open-1"), id);
  EXPECT_EQ(engine_.case_count(), 1u);
  EXPECT_NE(Open("open-2"), id);
}

TEST_F(CaseEngineTest, ExpectedVersionMismatchIsAbortedWithTheCurrentVersion) {
  const std::string id = Open("open-1");
  v1::ChangeCaseStageRequest stage;
  stage.set_stage(v1::CASE_STAGE_ASSESSMENT);
  auto stale = engine_.Execute(CallerOf("cm-1"), id, "s1", 0, stage);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(std::string(stale.status().message()).find("case is at version 1"), std::string::npos);
  EXPECT_TRUE(engine_.Execute(CallerOf("cm-1"), id, "s1", 1, stage).ok());
}

TEST_F(CaseEngineTest, CaseloadIndexSpansCasesAndFollowsClosure) {
  const std::string a = Open("open-a", 4), b = Open("open-b", 4), c = Open("open-c", 1);
  ASSERT_TRUE(Assign(a, "as-a", "cm-2").ok());
  ASSERT_TRUE(Assign(b, "as-b", "cm-2").ok());
  EXPECT_EQ(engine_.LoadOf("tenant-a", "cm-2"), 8);
  EXPECT_EQ(Assign(c, "as-c", "cm-2").status().code(), absl::StatusCode::kFailedPrecondition);
  v1::RequestClosureRequest close;
  close.set_reason(v1::CLOSURE_REASON_MOVED);
  close.set_outcome_summary("moved away");
  ASSERT_TRUE(engine_.Execute(CallerOf("cm-2"), a, "close-a", std::nullopt, close).ok());
  EXPECT_EQ(engine_.LoadOf("tenant-a", "cm-2"), 4) << "finished cases leave the caseload";
  EXPECT_TRUE(Assign(c, "as-c2", "cm-2").ok());
  EXPECT_EQ(engine_.LoadOf("tenant-a", "cm-2"), 5);
  EXPECT_EQ(engine_.LoadOf("tenant-b", "cm-2"), 0);
}

TEST_F(CaseEngineTest, UnacknowledgedAppendThatCommittedIsFoundOnRetry) {
  const std::string id = Open("open-1");
  log_.fail_next = true;
  log_.commit_before_failing = true;
  v1::AddNoteRequest note;
  note.set_kind(v1::NOTE_KIND_PROGRESS);
  note.set_text("lost ack");
  auto lost = engine_.Execute(CallerOf("cm-1"), id, "n1", std::nullopt, note);
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable);
  auto retry = engine_.Execute(CallerOf("cm-1"), id, "n1", std::nullopt, note);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->version, 2);
  EXPECT_EQ(log_.Events(id), 2);
  auto next = engine_.Execute(CallerOf("cm-1"), id, "n2", std::nullopt, note);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->version, 3) << "state was rebuilt from the log";
}

TEST_F(CaseEngineTest, UnacknowledgedAppendThatDidNotCommitIsAppliedOnRetry) {
  const std::string id = Open("open-1");
  log_.fail_next = true;
  v1::AddNoteRequest note;
  note.set_kind(v1::NOTE_KIND_PROGRESS);
  note.set_text("lost");
  EXPECT_FALSE(engine_.Execute(CallerOf("cm-1"), id, "n1", std::nullopt, note).ok());
  auto retry = engine_.Execute(CallerOf("cm-1"), id, "n1", std::nullopt, note);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_FALSE(retry->duplicate);
  EXPECT_EQ(retry->version, 2);
}

TEST_F(CaseEngineTest, AnotherTenantGetsNotFoundAndCannotWrite) {
  const std::string id = Open("open-1");
  EXPECT_EQ(engine_.Get("tenant-b", id).status().code(), absl::StatusCode::kNotFound);
  v1::AddNoteRequest note;
  note.set_kind(v1::NOTE_KIND_PROGRESS);
  note.set_text("x");
  EXPECT_EQ(engine_.Execute(CallerOf("cm-9", common::v1::ROLE_CASE_MANAGER, "tenant-b"), id, "n",
                            std::nullopt, note).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(log_.Events(id), 1);
}

TEST_F(CaseEngineTest, ReplayRebuildsStatesLedgerAndCaseloads) {
  const std::string id = Open("open-1", 2);
  ASSERT_TRUE(Assign(id, "as-1", "cm-2").ok());
  CaseEngine rebuilt(log_, programs_, "topic", [] { return absl::FromUnixSeconds(1'767'225'600); },
                     [] { return std::string("00000000-0000-4000-8000-000000000099"); });
  const auto logged = log_.Load(id, 1);
  ASSERT_TRUE(logged.ok());
  for (const auto& e : *logged) ASSERT_TRUE(rebuilt.Replay(e).ok());
  EXPECT_EQ(rebuilt.Get("tenant-a", id)->SerializeAsString(),
            engine_.Get("tenant-a", id)->SerializeAsString());
  EXPECT_EQ(rebuilt.LoadOf("tenant-a", "cm-2"), 2);
  auto retry = Assign(id, "as-1", "cm-2");
  ASSERT_TRUE(retry.ok());
  v1::AssignCaseRequest assign;
  assign.set_case_manager_id("cm-2");
  auto again = rebuilt.Execute(CallerOf("sup-1", common::v1::ROLE_SUPERVISOR), id, "as-1",
                               std::nullopt, assign);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->version, 2);
}

}  // namespace
}  // namespace clinical::case_service

// The application layer without Kafka: an in-memory log with the event store's contract.
// Idempotent retries, optimistic concurrency, the cross-case caseload index, stale-state
// recovery after an unacknowledged append, and tenant isolation.
#include <map>

#include "absl/strings/str_cat.h"
#include "clinical/eventstore/testing/memory_log.h"
#include "case_engine.h"
#include "organisation_engine.h"
#include "gtest/gtest.h"

namespace clinical::case_service {
namespace {

using eventstore::testing::MemoryLog;

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
                [this] { return absl::StrCat("00000000-0000-4000-8000-00000000000", next_id_++); }, &directory_),
        organisations_(organisation_log_, "organisation-topic", [] { return absl::FromUnixSeconds(1'767'225'600); },
                       directory_) {}

  std::string Open(const std::string& command_id, int acuity = 3) {
    v1::OpenCaseRequest open;
    open.set_command_id(command_id);
    open.mutable_patient()->set_mrn("M1");
    open.set_program("hiv");
    open.set_priority(1);
    open.set_acuity(acuity);
    open.set_initial_status(v1::CASE_STATUS_ACTIVE);
    open.set_team_id("team-north");
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

  // team-north, supervised by sup-1 (through the organisation engine).
  void SetTeam(int32_t emergency_max_minutes = 0) {
    const grpcx::Caller admin = CallerOf("admin-1", common::v1::ROLE_ADMINISTRATOR);
    v1::ConfigureOrganisationRequest configure;
    configure.add_privacy_officer_ids("privacy-1");
    configure.set_emergency_access_max_minutes(emergency_max_minutes);
    ASSERT_TRUE(organisations_.Execute(admin, "configure-1", std::nullopt, configure).ok());
    v1::SetTeamRequest team;
    team.mutable_team()->set_team_id("team-north");
    team.mutable_team()->set_name("North");
    team.mutable_team()->add_supervisor_ids("sup-1");
    team.mutable_team()->add_member_ids("cm-1");
    ASSERT_TRUE(organisations_.Execute(admin, "team-1", std::nullopt, team).ok());
  }
  static access::Principal PrincipalOf(const std::string& user, common::v1::Role role = common::v1::ROLE_CASE_MANAGER) {
    return access::Principal{user, "tenant-a", role};
  }

  MemoryLog log_;
  MemoryLog organisation_log_;
  ProgramCatalog programs_;
  int next_id_ = 1;
  // The access decisions' facts: fed by both engines (declared before them).
  relations::Directory directory_{[] { return absl::FromUnixSeconds(1'767'225'600); }};
  CaseEngine engine_;
  OrganisationEngine organisations_;
};

TEST_F(CaseEngineTest, TheDirectoryHasEveryAppendBeforeTheCommandReturns) {
  const std::string id = Open("open-1");
  auto before = directory_.RelationsTo(PrincipalOf("cm-2"), id);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->where, access::CaseRelations::Where::kInTenant);
  EXPECT_FALSE(before->assigned);
  EXPECT_TRUE(before->unassigned);
  ASSERT_TRUE(Assign(id, "assign-1", "cm-2").ok());
  auto after = directory_.RelationsTo(PrincipalOf("cm-2"), id);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->assigned);
  auto elsewhere = directory_.RelationsTo(access::Principal{"cm-2", "tenant-b", common::v1::ROLE_CASE_MANAGER}, id);
  ASSERT_TRUE(elsewhere.ok());
  EXPECT_EQ(elsewhere->where, access::CaseRelations::Where::kOtherTenant);
}

TEST_F(CaseEngineTest, OrganisationCommandsAreIdempotentVersionedAndFoldedIntoTheDirectory) {
  const grpcx::Caller admin = CallerOf("admin-1", common::v1::ROLE_ADMINISTRATOR);
  v1::ConfigureOrganisationRequest configure;
  configure.add_privacy_officer_ids("privacy-1");
  auto stale = organisations_.Execute(admin, "c-1", 1, configure);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  auto first = organisations_.Execute(admin, "c-1", 0, configure);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->version, 1);
  auto retry = organisations_.Execute(admin, "c-1", 0, configure);
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->version, 1);
  EXPECT_EQ(organisation_log_.appends, 1) << "the retry wrote nothing";
  ASSERT_NO_FATAL_FAILURE(SetTeam());
  const v1::Organisation organisation = organisations_.Get("tenant-a");
  EXPECT_EQ(organisation.version(), 3);
  ASSERT_EQ(organisation.teams_size(), 1);
  EXPECT_EQ(organisation.teams(0).supervisor_ids(0), "sup-1");
  EXPECT_EQ(organisations_.Get("tenant-b").version(), 0) << "another tenant's is its own";
  EXPECT_EQ(directory_.Organisation("tenant-a").version, 3);

  const std::string id = Open("open-1");
  auto supervisor = directory_.RelationsTo(PrincipalOf("sup-1", common::v1::ROLE_SUPERVISOR), id);
  ASSERT_TRUE(supervisor.ok());
  EXPECT_TRUE(supervisor->team_supervisor);
}

TEST_F(CaseEngineTest, EmergencyAccessOnlyWithoutARelationshipAndWithinTheTenantsLimit) {
  ASSERT_NO_FATAL_FAILURE(SetTeam(/*emergency_max_minutes=*/30));
  const std::string id = Open("open-1");
  v1::RequestEmergencyAccessRequest request;
  request.set_reason("patient in ED");
  request.set_duration_minutes(30);
  auto related = engine_.Execute(CallerOf("sup-1", common::v1::ROLE_SUPERVISOR), id, "e-1", std::nullopt, request);
  EXPECT_EQ(related.status().code(), absl::StatusCode::kFailedPrecondition) << "sup-1 supervises the case's team";
  request.set_duration_minutes(45);
  auto too_long = engine_.Execute(CallerOf("cm-9"), id, "e-2", std::nullopt, request);
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kInvalidArgument);
  request.set_duration_minutes(30);
  auto granted = engine_.Execute(CallerOf("cm-9"), id, "e-3", std::nullopt, request);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_EQ(granted->detail, "emergency-1");
  auto relations = directory_.RelationsTo(PrincipalOf("cm-9"), id);
  ASSERT_TRUE(relations.ok());
  EXPECT_EQ(relations->emergency_grant_id, "emergency-1") << "in force before the call returned";
  const auto grants = engine_.EmergencyGrants("tenant-a");
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0].case_id(), id);
  EXPECT_TRUE(engine_.EmergencyGrants("tenant-b").empty());
}

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

TEST_F(CaseEngineTest, TheDirectoryFoldsAnUnacknowledgedCommittedAppendOnceWhenTheCaseIsRebuilt) {
  const std::string id = Open("open-1");
  v1::RequestEmergencyAccessRequest request;
  request.set_reason("patient in ED");
  request.set_duration_minutes(30);
  log_.fail_next = true;
  log_.commit_before_failing = true;
  EXPECT_EQ(engine_.Execute(CallerOf("cm-9"), id, "e-1", std::nullopt, request).status().code(),
            absl::StatusCode::kUnavailable);
  auto retry = engine_.Execute(CallerOf("cm-9"), id, "e-1", std::nullopt, request);
  ASSERT_TRUE(retry.ok()) << retry.status();
  auto relations = directory_.RelationsTo(PrincipalOf("cm-9"), id);
  ASSERT_TRUE(relations.ok());
  EXPECT_EQ(relations->emergency_grant_id, "emergency-1") << "the committed grant, folded on the rebuild";
  // Another rebuild hands the directory nothing it already has.
  v1::AddNoteRequest note;
  note.set_kind(v1::NOTE_KIND_PROGRESS);
  note.set_text("lost ack");
  log_.fail_next = true;
  log_.commit_before_failing = true;
  EXPECT_FALSE(engine_.Execute(CallerOf("cm-1"), id, "n1", std::nullopt, note).ok());
  ASSERT_TRUE(engine_.Execute(CallerOf("cm-1"), id, "n1", std::nullopt, note).ok());
  const auto facts = directory_.Case(id);
  ASSERT_TRUE(facts.has_value());
  EXPECT_EQ(facts->grants.size(), 1u);
  EXPECT_EQ(facts->version, 3);
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

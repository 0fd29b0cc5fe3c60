// The Case aggregate's rules, as plain tests of Decide and Evolve.
#include <string>

#include "case_domain.h"
#include "gtest/gtest.h"
#include "google/protobuf/util/time_util.h"

namespace clinical::case_service {
namespace {

using S = v1::CaseStatus;

constexpr char kTenant[] = "tenant-a";

common::v1::Actor Actor(const std::string& user, common::v1::Role role = common::v1::ROLE_CASE_MANAGER) {
  common::v1::Actor actor;
  actor.set_user_id(user);
  actor.set_role(role);
  return actor;
}

v1::OpenCaseRequest Intake(S status = S::CASE_STATUS_UNSPECIFIED, int acuity = 3) {
  v1::OpenCaseRequest open;
  open.mutable_patient()->set_mrn("MRN-0001");
  open.mutable_patient()->set_given_name("Ada");
  open.mutable_patient()->set_family_name("Example");
  open.mutable_patient()->set_birth_date("1941-02-03");
  open.set_program("elder_care");
  open.set_priority(2);
  open.set_acuity(acuity);
  open.mutable_referral()->set_source(v1::REFERRAL_SOURCE_HOSPITAL);
  open.mutable_referral()->set_reason("discharge follow-up");
  open.set_initial_status(status);
  open.set_team_id("team-north");
  return open;
}

// A case driven through commands, as the application layer would.
class CaseDeciderTest : public ::testing::Test {
 protected:
  CaseDeciderTest() : state_(NewCase("case-1", kTenant)) {
    context_.now = absl::FromUnixSeconds(1'767'225'600);
    context_.actor = Actor("cm-1");
    context_.tenant_id = kTenant;
    context_.case_id = "case-1";
    context_.program = {"elder_care", 10, true};
  }

  absl::StatusOr<std::vector<Event>> Run(const Command& command) {
    auto events = Decide(state_, command, context_);
    if (events.ok()) {
      for (const Event& e : *events) state_ = Evolve(std::move(state_), e);
      context_.now += absl::Minutes(1);
    }
    return events;
  }
  void Ok(const Command& command) {
    auto events = Run(command);
    ASSERT_TRUE(events.ok()) << events.status();
  }
  absl::StatusCode Code(const Command& command) { return Run(command).status().code(); }
  void As(const std::string& user, common::v1::Role role) { context_.actor = Actor(user, role); }

  void OpenActive() { Ok(Intake(S::CASE_STATUS_ACTIVE)); }
  template <typename T>
  static T WithReason(const std::string& reason) {
    T t;
    t.set_reason(reason);
    return t;
  }
  static v1::ChangeCaseStatusRequest ToStatus(S status) {
    v1::ChangeCaseStatusRequest c;
    c.set_status(status);
    c.set_reason("r");
    return c;
  }
  static v1::AssignCaseRequest AssignTo(const std::string& manager) {
    v1::AssignCaseRequest c;
    c.set_case_manager_id(manager);
    return c;
  }
  v1::RequestClosureRequest Closure() {
    v1::RequestClosureRequest c;
    c.set_reason(v1::CLOSURE_REASON_GOALS_MET);
    c.set_outcome_summary("stable at home");
    c.set_satisfaction(v1::SATISFACTION_SATISFIED);
    return c;
  }
  v1::AddNoteRequest ContactNote(absl::Time at, v1::ContactChannel channel = v1::CONTACT_CHANNEL_PHONE) {
    v1::AddNoteRequest c;
    c.set_kind(v1::NOTE_KIND_CONTACT);
    c.set_channel(channel);
    c.mutable_occurred_at()->set_seconds(absl::ToUnixSeconds(at));
    c.set_text("called patient");
    return c;
  }

  CaseState state_;
  DecisionContext context_;
};

TEST_F(CaseDeciderTest, OpenRecordsIntakeAndStartsPlannedAtIntake) {
  auto events = Run(Intake());
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ(EventTypeOf((*events)[0].body), "clinical.case.v1.CaseOpened");
  EXPECT_EQ(state_.version(), 1);
  EXPECT_EQ(state_.status(), S::CASE_STATUS_PLANNED);
  EXPECT_EQ(state_.stage(), v1::CASE_STAGE_INTAKE);
  EXPECT_EQ(state_.patient().mrn(), "MRN-0001");
  EXPECT_EQ(state_.acuity(), 3);
  EXPECT_EQ(state_.program(), "elder_care");
  ASSERT_EQ(state_.status_history_size(), 1);
  EXPECT_EQ(state_.status_history(0).by(), "cm-1");
  EXPECT_EQ(state_.opened_by(), "cm-1");
}

TEST_F(CaseDeciderTest, OpenTwiceIsAlreadyExists) {
  Ok(Intake());
  EXPECT_EQ(Code(Intake()), absl::StatusCode::kAlreadyExists);
}

TEST_F(CaseDeciderTest, OpenRejectsTerminalInitialStatus) {
  EXPECT_EQ(Code(Intake(S::CASE_STATUS_FINISHED)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(state_.version(), 0);
}

TEST_F(CaseDeciderTest, CommandsOnMissingCaseAreNotFound) {
  EXPECT_EQ(Code(ToStatus(S::CASE_STATUS_ACTIVE)), absl::StatusCode::kNotFound);
  EXPECT_EQ(Code(AssignTo("cm-2")), absl::StatusCode::kNotFound);
}

TEST_F(CaseDeciderTest, AnotherTenantCannotSeeTheCase) {
  Ok(Intake());
  context_.tenant_id = "tenant-b";
  EXPECT_EQ(Code(ToStatus(S::CASE_STATUS_ACTIVE)), absl::StatusCode::kNotFound);
}

TEST_F(CaseDeciderTest, StatusTransitionsFollowTheTable) {
  Ok(Intake());
  Ok(ToStatus(S::CASE_STATUS_WAITLIST));
  Ok(ToStatus(S::CASE_STATUS_ACTIVE));
  EXPECT_EQ(Code(ToStatus(S::CASE_STATUS_ACTIVE)), absl::StatusCode::kFailedPrecondition);
  // Hold, closure and cancellation have their own commands.
  EXPECT_EQ(Code(ToStatus(S::CASE_STATUS_ONHOLD)), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Code(ToStatus(S::CASE_STATUS_FINISHED)), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Code(ToStatus(S::CASE_STATUS_PLANNED)), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(state_.status(), S::CASE_STATUS_ACTIVE);
  ASSERT_EQ(state_.status_history_size(), 3);
  EXPECT_EQ(state_.status_history(2).from(), S::CASE_STATUS_WAITLIST);
  EXPECT_EQ(state_.status_history(2).to(), S::CASE_STATUS_ACTIVE);
}

TEST_F(CaseDeciderTest, IllegalTransitionNamesTheStatusesInItsReason) {
  Ok(Intake(S::CASE_STATUS_ACTIVE));
  auto result = Run(WithReason<v1::CancelCaseRequest>("duplicate referral"));
  ASSERT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(result.status().message());
  EXPECT_NE(message.find("CASE_STATUS_ACTIVE"), std::string::npos) << message;
  EXPECT_NE(message.find("CASE_STATUS_PLANNED"), std::string::npos) << message;
}

TEST_F(CaseDeciderTest, CancelOnlyBeforeCareStarts) {
  Ok(Intake(S::CASE_STATUS_WAITLIST));
  Ok(WithReason<v1::CancelCaseRequest>("duplicate referral"));
  EXPECT_EQ(state_.status(), S::CASE_STATUS_CANCELLED);
  EXPECT_EQ(Code(ToStatus(S::CASE_STATUS_ACTIVE)), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Code(WithReason<v1::ReopenCaseRequest>("x")), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CaseDeciderTest, EnteredInErrorFromAnyStatusAndThenFrozen) {
  OpenActive();
  Ok(WithReason<v1::MarkCaseEnteredInErrorRequest>("wrong patient"));
  EXPECT_EQ(state_.status(), S::CASE_STATUS_ENTERED_IN_ERROR);
  EXPECT_EQ(Code(WithReason<v1::MarkCaseEnteredInErrorRequest>("again")),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Code(ContactNote(context_.now)), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Code(AssignTo("cm-2")), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CaseDeciderTest, StagesMoveForwardOneAtATimeAndBackForReassessment) {
  OpenActive();
  v1::ChangeCaseStageRequest stage;
  stage.set_stage(v1::CASE_STAGE_CARE_PLANNING);
  EXPECT_EQ(Code(stage), absl::StatusCode::kFailedPrecondition) << "skipping assessment";
  for (auto s : {v1::CASE_STAGE_ASSESSMENT, v1::CASE_STAGE_CARE_PLANNING,
                 v1::CASE_STAGE_SERVICE_DELIVERY, v1::CASE_STAGE_MONITORING}) {
    stage.set_stage(s);
    Ok(stage);
  }
  stage.set_stage(v1::CASE_STAGE_ASSESSMENT);
  Ok(stage);
  EXPECT_EQ(state_.stage(), v1::CASE_STAGE_ASSESSMENT);
  EXPECT_EQ(state_.stage_history_size(), 5);
  stage.set_stage(v1::CASE_STAGE_INTAKE);
  EXPECT_EQ(Code(stage), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CaseDeciderTest, StagesBeyondAssessmentNeedAnActiveCase) {
  Ok(Intake(S::CASE_STATUS_PLANNED));
  v1::ChangeCaseStageRequest stage;
  stage.set_stage(v1::CASE_STAGE_ASSESSMENT);
  Ok(stage);
  stage.set_stage(v1::CASE_STAGE_CARE_PLANNING);
  EXPECT_EQ(Code(stage), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CaseDeciderTest, AssignmentWithinCapacityIsPendingUntilAccepted) {
  OpenActive();
  context_.assignee_load = 7;  // 7 + acuity 3 = 10 = limit
  auto events = Run(AssignTo("cm-2"));
  ASSERT_TRUE(events.ok()) << events.status();
  const auto& assigned = (*events)[0].body.case_assigned();
  EXPECT_EQ(assigned.load_before(), 7);
  EXPECT_EQ(assigned.weight(), 3);
  EXPECT_EQ(assigned.caseload_limit(), 10);
  EXPECT_FALSE(assigned.has_capacity_override());
  EXPECT_EQ(state_.assignment().state(), v1::ASSIGNMENT_STATE_PENDING);
  EXPECT_EQ(ContributionOf(state_).case_manager_id, "cm-2");
  EXPECT_EQ(ContributionOf(state_).weight, 3);

  As("cm-3", common::v1::ROLE_CASE_MANAGER);
  EXPECT_EQ(Code(v1::AcceptAssignmentRequest()), absl::StatusCode::kPermissionDenied);
  As("cm-2", common::v1::ROLE_CASE_MANAGER);
  Ok(v1::AcceptAssignmentRequest());
  EXPECT_EQ(state_.assignment().state(), v1::ASSIGNMENT_STATE_ACCEPTED);
  EXPECT_EQ(Code(v1::AcceptAssignmentRequest()), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CaseDeciderTest, AssignmentOverCapacityIsRefusedWithTheFigures) {
  OpenActive();
  context_.assignee_load = 8;
  auto result = Run(AssignTo("cm-2"));
  ASSERT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(result.status().message()).find("8 plus 3 is over the program limit 10"),
            std::string::npos)
      << result.status();
  EXPECT_FALSE(state_.has_assignment());
}

TEST_F(CaseDeciderTest, CapacityOverrideNeedsASupervisorAndAReason) {
  OpenActive();
  context_.assignee_load = 9;
  v1::AssignCaseRequest assign = AssignTo("cm-2");
  assign.mutable_capacity_override()->set_reason("only Spanish speaker");
  EXPECT_EQ(Code(assign), absl::StatusCode::kPermissionDenied);
  As("sup-1", common::v1::ROLE_SUPERVISOR);
  assign.mutable_capacity_override()->clear_reason();
  EXPECT_EQ(Code(assign), absl::StatusCode::kInvalidArgument);
  assign.mutable_capacity_override()->set_reason("only Spanish speaker");
  auto events = Run(assign);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ((*events)[0].body.case_assigned().capacity_override().reason(), "only Spanish speaker");
  EXPECT_EQ(state_.assignment().capacity_override().reason(), "only Spanish speaker");
}

TEST_F(CaseDeciderTest, OverrideWithinCapacityIsNotRecorded) {
  OpenActive();
  As("sup-1", common::v1::ROLE_SUPERVISOR);
  v1::AssignCaseRequest assign = AssignTo("cm-2");
  assign.mutable_capacity_override()->set_reason("just in case");
  auto events = Run(assign);
  ASSERT_TRUE(events.ok());
  EXPECT_FALSE((*events)[0].body.case_assigned().has_capacity_override());
}

TEST_F(CaseDeciderTest, ReassignmentRecordsThePreviousManagerAndSameManagerIsRefused) {
  OpenActive();
  Ok(AssignTo("cm-2"));
  EXPECT_EQ(Code(AssignTo("cm-2")), absl::StatusCode::kFailedPrecondition);
  auto events = Run(AssignTo("cm-3"));
  ASSERT_TRUE(events.ok());
  EXPECT_EQ((*events)[0].body.case_assigned().previous_case_manager_id(), "cm-2");
  EXPECT_EQ(state_.assignment().case_manager_id(), "cm-3");
}

TEST_F(CaseDeciderTest, DeclineUnassignsAndNeedsAReason) {
  OpenActive();
  Ok(AssignTo("cm-2"));
  As("cm-2", common::v1::ROLE_CASE_MANAGER);
  EXPECT_EQ(Code(v1::DeclineAssignmentRequest()), absl::StatusCode::kInvalidArgument);
  Ok(WithReason<v1::DeclineAssignmentRequest>("on leave"));
  EXPECT_FALSE(state_.has_assignment());
  EXPECT_TRUE(ContributionOf(state_).case_manager_id.empty());
}

TEST_F(CaseDeciderTest, TransferReleasesTheAssignmentAndMayAssignInTheNewProgram) {
  OpenActive();
  Ok(AssignTo("cm-2"));
  v1::TransferCaseRequest transfer;
  transfer.set_to_program("behavioral_health");
  transfer.set_case_manager_id("cm-9");
  transfer.set_reason("primary need is behavioural");
  context_.program = {"behavioral_health", 3, false};  // target program's limit
  context_.assignee_load = 1;
  EXPECT_EQ(Code(transfer), absl::StatusCode::kFailedPrecondition) << "1 + 3 > 3";
  context_.assignee_load = 0;
  auto events = Run(transfer);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].body.case_transferred().released_case_manager_id(), "cm-2");
  EXPECT_EQ((*events)[1].body.case_assigned().previous_case_manager_id(), "");
  EXPECT_EQ(state_.program(), "behavioral_health");
  EXPECT_EQ(state_.assignment().case_manager_id(), "cm-9");
  v1::TransferCaseRequest same;
  same.set_to_program("behavioral_health");
  same.set_reason("again");
  EXPECT_EQ(Code(same), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CaseDeciderTest, DelegationIsRecordedWithAnId) {
  OpenActive();
  v1::DelegateTasksRequest delegate;
  delegate.set_delegate_id("chw-4");
  delegate.set_scope("medication pickup");
  auto events = Run(delegate);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ((*events)[0].body.tasks_delegated().delegation_id(), "delegation-1");
  ASSERT_EQ(state_.delegations_size(), 1);
  EXPECT_EQ(state_.delegations(0).delegate_id(), "chw-4");
  EXPECT_EQ(state_.delegations(0).delegated_by(), "cm-1");
}

TEST_F(CaseDeciderTest, ContactNotesTrackLastContactAndCorrectionsAreNewEvents) {
  OpenActive();
  const absl::Time early = context_.now - absl::Hours(48);
  const absl::Time late = context_.now - absl::Hours(1);
  Ok(ContactNote(late, v1::CONTACT_CHANNEL_HOME_VISIT));
  Ok(ContactNote(early));
  EXPECT_EQ(state_.last_contact_at().seconds(), absl::ToUnixSeconds(late));
  v1::AddNoteRequest progress;
  progress.set_kind(v1::NOTE_KIND_PROGRESS);
  progress.set_text("plan on track");
  Ok(progress);
  EXPECT_EQ(state_.last_contact_at().seconds(), absl::ToUnixSeconds(late)) << "progress is not contact";

  v1::AmendNoteRequest amend;
  amend.set_note_id("note-1");
  amend.set_text("home visit, patient well");
  amend.set_reason("typo");
  Ok(amend);
  ASSERT_EQ(state_.notes(0).revisions_size(), 2);
  EXPECT_EQ(state_.notes(0).revisions(0).text(), "called patient") << "the original stays";
  EXPECT_EQ(state_.notes(0).revisions(1).reason(), "typo");
  EXPECT_EQ(Code(amend), absl::StatusCode::kFailedPrecondition) << "no-op amendment";

  v1::MarkNoteEnteredInErrorRequest wrong;
  wrong.set_note_id("note-1");
  wrong.set_reason("wrong case");
  Ok(wrong);
  EXPECT_TRUE(state_.notes(0).entered_in_error());
  EXPECT_EQ(state_.last_contact_at().seconds(), absl::ToUnixSeconds(early));
  EXPECT_EQ(Code(wrong), absl::StatusCode::kFailedPrecondition);
  amend.set_text("another");
  EXPECT_EQ(Code(amend), absl::StatusCode::kFailedPrecondition) << "entered-in-error is final";
  amend.set_note_id("note-99");
  EXPECT_EQ(Code(amend), absl::StatusCode::kNotFound);
}

TEST_F(CaseDeciderTest, NotesCannotBeInTheFutureAndContactNeedsAChannel) {
  OpenActive();
  EXPECT_EQ(Code(ContactNote(context_.now + absl::Hours(1))), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(ContactNote(context_.now, v1::CONTACT_CHANNEL_NONE)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(state_.notes_size(), 0);
}

TEST_F(CaseDeciderTest, ClosureWithApprovalWaitsForASupervisor) {
  OpenActive();
  auto requested = Run(Closure());
  ASSERT_TRUE(requested.ok()) << requested.status();
  ASSERT_EQ(requested->size(), 1u);
  EXPECT_TRUE((*requested)[0].body.closure_requested().requires_approval());
  EXPECT_EQ(state_.status(), S::CASE_STATUS_ACTIVE);
  EXPECT_EQ(state_.closure().state(), v1::CLOSURE_STATE_PENDING_APPROVAL);
  EXPECT_EQ(state_.stage(), v1::CASE_STAGE_TRANSITION_CLOSURE);
  EXPECT_EQ(Code(Closure()), absl::StatusCode::kFailedPrecondition) << "already pending";
  EXPECT_EQ(Code(WithReason<v1::PutCaseOnHoldRequest>("x")), absl::StatusCode::kFailedPrecondition);

  EXPECT_EQ(Code(v1::ApproveClosureRequest()), absl::StatusCode::kPermissionDenied)
      << "its requester may not approve it";
  As("sup-1", common::v1::ROLE_SUPERVISOR);
  auto approved = Run(v1::ApproveClosureRequest());
  ASSERT_TRUE(approved.ok()) << approved.status();
  ASSERT_EQ(approved->size(), 2u);
  EXPECT_EQ(EventTypeOf((*approved)[1].body), "clinical.case.v1.CaseClosed");
  EXPECT_EQ(state_.status(), S::CASE_STATUS_FINISHED);
  EXPECT_EQ(state_.closure().state(), v1::CLOSURE_STATE_CLOSED);
  EXPECT_EQ(state_.closure().decided_by(), "sup-1");
  EXPECT_EQ(state_.closure().outcome_summary(), "stable at home");
  EXPECT_EQ(Code(v1::ApproveClosureRequest()), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CaseDeciderTest, SupervisorCannotApproveTheirOwnClosureRequest) {
  OpenActive();
  As("sup-1", common::v1::ROLE_SUPERVISOR);
  Ok(Closure());
  EXPECT_EQ(Code(v1::ApproveClosureRequest()), absl::StatusCode::kPermissionDenied);
}

TEST_F(CaseDeciderTest, RejectedClosureKeepsTheCaseOpenAtItsStage) {
  OpenActive();
  v1::ChangeCaseStageRequest stage;
  stage.set_stage(v1::CASE_STAGE_ASSESSMENT);
  Ok(stage);
  Ok(Closure());
  As("sup-1", common::v1::ROLE_SUPERVISOR);
  EXPECT_EQ(Code(v1::RejectClosureRequest()), absl::StatusCode::kInvalidArgument) << "needs a reason";
  Ok(WithReason<v1::RejectClosureRequest>("goals not met yet"));
  EXPECT_EQ(state_.status(), S::CASE_STATUS_ACTIVE);
  EXPECT_EQ(state_.closure().state(), v1::CLOSURE_STATE_REJECTED);
  EXPECT_EQ(state_.stage(), v1::CASE_STAGE_ASSESSMENT);
  Ok(Closure());  // may ask again
}

TEST_F(CaseDeciderTest, ClosureWithoutApprovalClosesAtOnce) {
  context_.program.closure_requires_approval = false;
  OpenActive();
  auto events = Run(Closure());
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ(state_.status(), S::CASE_STATUS_FINISHED);
}

TEST_F(CaseDeciderTest, ClosureOnlyFromActiveOrOnHold) {
  Ok(Intake(S::CASE_STATUS_PLANNED));
  EXPECT_EQ(Code(Closure()), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CaseDeciderTest, ReopenKeepsTheWholeStatusHistory) {
  context_.program.closure_requires_approval = false;
  OpenActive();
  Ok(Closure());
  EXPECT_EQ(Code(Closure()), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Code(v1::ReopenCaseRequest()), absl::StatusCode::kInvalidArgument) << "needs a reason";
  Ok(WithReason<v1::ReopenCaseRequest>("readmitted"));
  EXPECT_EQ(state_.status(), S::CASE_STATUS_ACTIVE);
  EXPECT_EQ(state_.stage(), v1::CASE_STAGE_ASSESSMENT);
  EXPECT_EQ(state_.closure().state(), v1::CLOSURE_STATE_REOPENED);
  ASSERT_EQ(state_.status_history_size(), 3);
  EXPECT_EQ(state_.status_history(1).to(), S::CASE_STATUS_FINISHED);
  EXPECT_EQ(state_.status_history(2).from(), S::CASE_STATUS_FINISHED);
  EXPECT_EQ(state_.status_history(2).reason(), "readmitted");
  EXPECT_EQ(state_.status_history(2).event_type(), "clinical.case.v1.CaseReopened");
  EXPECT_EQ(Code(WithReason<v1::ReopenCaseRequest>("again")), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CaseDeciderTest, FinishedCaseNoLongerCountsAgainstTheCaseload) {
  context_.program.closure_requires_approval = false;
  OpenActive();
  Ok(AssignTo("cm-2"));
  EXPECT_EQ(ContributionOf(state_).weight, 3);
  Ok(Closure());
  EXPECT_TRUE(ContributionOf(state_).case_manager_id.empty());
  Ok(WithReason<v1::ReopenCaseRequest>("readmitted"));
  EXPECT_EQ(ContributionOf(state_).case_manager_id, "cm-2");
}

TEST_F(CaseDeciderTest, HoldNeedsAFutureReviewDateAndResumesToActive) {
  OpenActive();
  v1::PutCaseOnHoldRequest hold;
  hold.set_reason("inpatient stay");
  hold.mutable_review_at()->set_seconds(absl::ToUnixSeconds(context_.now - absl::Hours(1)));
  EXPECT_EQ(Code(hold), absl::StatusCode::kInvalidArgument);
  hold.mutable_review_at()->set_seconds(absl::ToUnixSeconds(context_.now + absl::Hours(24 * 14)));
  Ok(hold);
  EXPECT_EQ(state_.status(), S::CASE_STATUS_ONHOLD);
  EXPECT_EQ(state_.hold().reason(), "inpatient stay");
  EXPECT_EQ(Code(hold), absl::StatusCode::kFailedPrecondition) << "already on hold";
  Ok(ToStatus(S::CASE_STATUS_ACTIVE));
  EXPECT_FALSE(state_.has_hold());
}

TEST_F(CaseDeciderTest, EscalationCarriesRoutingFactsAndCanBeResolvedOnce) {
  OpenActive();
  Ok(AssignTo("cm-2"));
  v1::EscalateCaseRequest escalate;
  escalate.set_kind(v1::ESCALATION_KIND_SAFETY_CONCERN);
  escalate.set_severity(v1::ESCALATION_SEVERITY_URGENT);
  escalate.set_description("fall risk, lives alone");
  auto events = Run(escalate);
  ASSERT_TRUE(events.ok());
  const auto& escalated = (*events)[0].body.case_escalated();
  EXPECT_EQ(escalated.escalation_id(), "escalation-1");
  EXPECT_EQ(escalated.case_manager_id(), "cm-2");
  EXPECT_EQ(escalated.program(), "elder_care");
  v1::ResolveEscalationRequest resolve;
  resolve.set_escalation_id("escalation-1");
  resolve.set_resolution("alarm installed");
  Ok(resolve);
  EXPECT_TRUE(state_.escalations(0).resolved());
  EXPECT_EQ(Code(resolve), absl::StatusCode::kFailedPrecondition);
  resolve.set_escalation_id("escalation-7");
  EXPECT_EQ(Code(resolve), absl::StatusCode::kNotFound);
}

TEST_F(CaseDeciderTest, ErrorsWriteNothing) {
  OpenActive();
  const CaseState before = state_;
  context_.assignee_load = 100;
  EXPECT_FALSE(Run(AssignTo("cm-2")).ok());
  EXPECT_EQ(state_.SerializeAsString(), before.SerializeAsString());
}

TEST_F(CaseDeciderTest, ReplayThroughTheEnvelopeGivesTheSameState) {
  context_.program.closure_requires_approval = false;
  std::vector<Event> all;
  auto record = [&](const Command& c) {
    auto events = Run(c);
    ASSERT_TRUE(events.ok()) << events.status();
    all.insert(all.end(), events->begin(), events->end());
  };
  record(Intake(S::CASE_STATUS_ACTIVE));
  record(AssignTo("cm-2"));
  record(ContactNote(context_.now - absl::Hours(2)));
  record(Closure());
  record(WithReason<v1::ReopenCaseRequest>("readmitted"));
  CaseState replayed = NewCase("case-1", kTenant);
  for (const Event& e : all) {
    common::v1::EventEnvelope envelope;
    ToEnvelope(e, &envelope);
    auto decoded = FromEnvelope(envelope);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    replayed = Evolve(std::move(replayed), *decoded);
  }
  EXPECT_EQ(replayed.SerializeAsString(), state_.SerializeAsString());
  EXPECT_EQ(replayed.version(), 6);
}

TEST(CaseCodecTest, UnknownEventTypeIsDataLoss) {
  common::v1::EventEnvelope envelope;
  envelope.set_event_type("clinical.case.v1.SomethingNew");
  EXPECT_EQ(FromEnvelope(envelope).status().code(), absl::StatusCode::kDataLoss);
}

// Facts recorded late (docs/audit-replay.md): the event's occurred_at is when the fact
// happened, so replays "as it was" place it there; recorded_at is the store's.
TEST_F(CaseDeciderTest, LateIntakeNoteAndAssessmentCarryWhenTheyHappened) {
  const absl::Time intake = context_.now - absl::Hours(24 * 30);
  v1::OpenCaseRequest open = Intake(S::CASE_STATUS_ACTIVE);
  open.mutable_occurred_at()->set_seconds(absl::ToUnixSeconds(intake));
  auto opened = Run(open);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ((*opened)[0].occurred_at, intake);
  EXPECT_EQ(state_.opened_at().seconds(), absl::ToUnixSeconds(intake));

  Ok(ContactNote(context_.now));
  const auto updated = state_.updated_at();
  const absl::Time visit = intake + absl::Hours(24 * 7);
  auto noted = Run(ContactNote(visit));
  ASSERT_TRUE(noted.ok());
  EXPECT_EQ((*noted)[0].occurred_at, visit);
  // updated_at does not move back for a fact recorded late.
  EXPECT_EQ(state_.updated_at().seconds(), updated.seconds());

  v1::RecordAssessmentRequest phq;
  phq.set_instrument(v1::ASSESSMENT_INSTRUMENT_PHQ9);
  for (int a : {2, 2, 2, 1, 1, 2, 1, 1, 1}) phq.add_responses(a);
  const absl::Time administered = intake + absl::Hours(24 * 10);
  phq.mutable_occurred_at()->set_seconds(absl::ToUnixSeconds(administered));
  auto assessed = Run(phq);
  ASSERT_TRUE(assessed.ok()) << assessed.status();
  ASSERT_EQ(assessed->size(), 2u);  // AssessmentRecorded + HighRiskIdentified
  for (const Event& e : *assessed) EXPECT_EQ(e.occurred_at, administered);
  EXPECT_EQ(state_.assessments(0).administered_at().seconds(), absl::ToUnixSeconds(administered));
  common::v1::EventEnvelope envelope;
  ToEnvelope((*assessed)[0], &envelope);
  EXPECT_EQ(envelope.occurred_at().seconds(), absl::ToUnixSeconds(administered));

  // Not in the future, for any of them.
  phq.mutable_occurred_at()->set_seconds(absl::ToUnixSeconds(context_.now + absl::Minutes(5)));
  EXPECT_EQ(Code(phq), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(ContactNote(context_.now + absl::Minutes(5))), absl::StatusCode::kInvalidArgument);
  state_ = NewCase("case-2", kTenant);
  open.mutable_occurred_at()->set_seconds(absl::ToUnixSeconds(context_.now + absl::Minutes(5)));
  EXPECT_EQ(Code(open), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace clinical::case_service

namespace clinical::case_service {
namespace {

// ---- Trust II: rules about the case's data that the access policies leave to the case ----

class CaseAccessDeciderTest : public CaseDeciderTest {};

TEST_F(CaseAccessDeciderTest, OnlyTheAuthorOrTheTeamsSupervisorCorrectsANote) {
  OpenActive();
  v1::AddNoteRequest note;
  note.set_kind(v1::NOTE_KIND_PROGRESS);
  note.set_text("first visit");
  note.set_category(v1::INFORMATION_CATEGORY_SUBSTANCE_USE);
  Ok(note);
  EXPECT_EQ(state_.notes(0).category(), v1::INFORMATION_CATEGORY_SUBSTANCE_USE) << "the category is kept";
  v1::AmendNoteRequest amend;
  amend.set_note_id("note-1");
  amend.set_text("first visit, with daughter");
  amend.set_reason("who was present");
  As("cm-2", common::v1::ROLE_CASE_MANAGER);
  context_.relationship = "care_team";
  EXPECT_EQ(Code(amend), absl::StatusCode::kPermissionDenied);
  v1::MarkNoteEnteredInErrorRequest erred;
  erred.set_note_id("note-1");
  erred.set_reason("wrong patient");
  EXPECT_EQ(Code(erred), absl::StatusCode::kPermissionDenied);
  As("sup-1", common::v1::ROLE_SUPERVISOR);
  context_.relationship = "team_supervisor";
  Ok(amend);
  As("cm-1", common::v1::ROLE_CASE_MANAGER);
  context_.relationship = "assigned";
  Ok(erred);
  EXPECT_TRUE(state_.notes(0).entered_in_error());
}

TEST_F(CaseAccessDeciderTest, ARelationshipChangeEnteredLateTakesEffectWhenItHappened) {
  OpenActive();  // at now
  context_.now += absl::Hours(2);
  v1::AssignCaseRequest assign = AssignTo("cm-2");
  *assign.mutable_occurred_at() = google::protobuf::util::TimeUtil::SecondsToTimestamp(
      absl::ToUnixSeconds(context_.now - absl::Hours(1)));
  auto events = Run(assign);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ((*events)[0].occurred_at, absl::FromUnixSeconds(assign.occurred_at().seconds()));
  // Before the case's latest event (the assignment an hour ago): refused.
  v1::TransferCaseRequest transfer;
  transfer.set_to_team_id("team-south");
  transfer.set_reason("moved house");
  *transfer.mutable_occurred_at() =
      google::protobuf::util::TimeUtil::SecondsToTimestamp(assign.occurred_at().seconds() - 1);
  EXPECT_EQ(Code(transfer), absl::StatusCode::kInvalidArgument);
  *transfer.mutable_occurred_at() = google::protobuf::util::TimeUtil::SecondsToTimestamp(
      absl::ToUnixSeconds(context_.now + absl::Minutes(5)));
  EXPECT_EQ(Code(transfer), absl::StatusCode::kInvalidArgument) << "not in the future";
  *transfer.mutable_occurred_at() = assign.occurred_at();
  auto transferred = Run(transfer);
  ASSERT_TRUE(transferred.ok()) << transferred.status();
  EXPECT_EQ((*transferred)[0].occurred_at, absl::FromUnixSeconds(assign.occurred_at().seconds()));
}

TEST_F(CaseAccessDeciderTest, BreakTheGlassGrantsReviewsAndRefusals) {
  OpenActive();
  v1::RequestEmergencyAccessRequest request;
  request.set_reason("patient in ED, unresponsive");
  request.set_duration_minutes(60);
  As("cm-9", common::v1::ROLE_CASE_MANAGER);
  context_.related_to_case = true;
  EXPECT_EQ(Code(request), absl::StatusCode::kFailedPrecondition) << "a relationship: no glass to break";
  context_.related_to_case = false;
  request.set_duration_minutes(241);
  EXPECT_EQ(Code(request), absl::StatusCode::kInvalidArgument) << "over the default limit";
  context_.emergency_access_max_minutes = 30;
  request.set_duration_minutes(31);
  EXPECT_EQ(Code(request), absl::StatusCode::kInvalidArgument) << "over the tenant's limit";
  request.set_duration_minutes(30);
  const absl::Time granted_at = context_.now;
  auto granted = Run(request);
  ASSERT_TRUE(granted.ok()) << granted.status();
  const v1::EmergencyAccessGrant& grant = (*granted)[0].body.emergency_access_granted().grant();
  EXPECT_EQ(grant.grant_id(), "emergency-1");
  EXPECT_EQ(grant.user_id(), "cm-9");
  EXPECT_EQ(grant.role(), common::v1::ROLE_CASE_MANAGER);
  EXPECT_EQ(grant.team_id(), "team-north");
  EXPECT_EQ(grant.expires_at().seconds(), absl::ToUnixSeconds(granted_at + absl::Minutes(30)));
  ASSERT_EQ(state_.emergency_access_size(), 1) << "visible on the case";
  EXPECT_EQ(Code(request), absl::StatusCode::kFailedPrecondition) << "an active grant already";
  context_.now += absl::Minutes(31);
  Ok(request);  // the first expired
  EXPECT_EQ(state_.emergency_access(1).grant_id(), "emergency-2");

  As("privacy-1", common::v1::ROLE_PRIVACY_OFFICER);
  v1::ReviewEmergencyAccessRequest review;
  review.set_grant_id("emergency-3");
  review.set_justified(true);
  EXPECT_EQ(Code(review), absl::StatusCode::kNotFound);
  review.set_grant_id("emergency-1");
  Ok(review);
  EXPECT_EQ(state_.emergency_access(0).review().reviewed_by(), "privacy-1");
  EXPECT_TRUE(state_.emergency_access(0).review().justified());
  EXPECT_EQ(Code(review), absl::StatusCode::kFailedPrecondition) << "reviewed once";
}

}  // namespace
}  // namespace clinical::case_service

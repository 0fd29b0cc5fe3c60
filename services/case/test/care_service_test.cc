// The clinical content of a case (issue #5) through the running case service (a real
// process on the test run's real Kafka, over gRPC with the generated stubs): a realistic
// case from intake through assessments, a care plan with three goals and their tasks,
// care team and consent, a referral with authorised and delivered units, progress, goals
// achieved and closure carrying the cost; then a restart rebuilds the same state from the
// log.
#include <signal.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clinical/case/v1/case_service.grpc.pb.h"
#include "clinical/case/v1/events.pb.h"
#include "clinical/testing/identity.h"
#include "clinical/testing/organisation.h"
#include "clinical/testing/service_process.h"
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

namespace clinical::case_service {
namespace {

namespace v1 = ::clinical::case_::v1;
using ::clinical::testing::Subprocess;
using ::clinical::testing::UniqueName;
using google::protobuf::util::TimeUtil;

int ListeningPort(const std::string& line) {
  auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || parsed.value("msg", "") != "listening") return 0;
  return parsed.value("port", 0);
}

class CaseServiceProcess {
 public:
  CaseServiceProcess(std::string topic, std::string writer_id)
      : topic_(std::move(topic)), writer_id_(std::move(writer_id)) {}

  void Start() {
    auto process = Subprocess::Start(
        {testing::BinaryPath("services/case/case_service"), "--grpc-port=0",
         "--shutdown-grace=5s", "--case-topic-partitions=3", "--case-topic=" + topic_,
         "--organisation-topic=" + topic_ + ".organisation",
         "--writer-id=" + writer_id_},
        testing::ServiceEnvironment("case"));
    ASSERT_TRUE(process.ok()) << process.status();
    process_ = std::move(*process);
    auto line = process_->WaitForLine([](const std::string& l) { return ListeningPort(l) > 0; },
                                      absl::Seconds(90));
    ASSERT_TRUE(line.has_value()) << absl::StrJoin(process_->Lines(), "\n");
    stub_ = v1::CaseService::NewStub(testing::SecureChannel(absl::StrCat("127.0.0.1:", ListeningPort(*line))));
  }
  void Stop() {
    process_->Signal(SIGTERM);
    auto status = process_->Wait(absl::Seconds(30));
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
    stub_.reset();
  }
  v1::CaseService::Stub& stub() { return *stub_; }
  std::vector<std::string> Lines() const { return process_->Lines(); }

 private:
  std::string topic_, writer_id_;
  std::unique_ptr<Subprocess> process_;
  std::unique_ptr<v1::CaseService::Stub> stub_;
};

struct Who {
  std::string user = "cm-1";
  std::string role = "case_manager";
  std::string tenant = "tenant-a";
};

const Who kSupervisor{"sup-1", "supervisor", "tenant-a"};

template <typename Request, typename Response>
using Rpc = grpc::Status (v1::CaseService::Stub::*)(grpc::ClientContext*, const Request&, Response*);

google::protobuf::Timestamp In(absl::Duration d) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(absl::Now() + d));
}

common::v1::Money Usd(int64_t cents) {
  common::v1::Money m;
  m.set_currency_code("USD");
  m.set_minor_units(cents);
  return m;
}

class CareServiceTest : public ::testing::Test {
 protected:
  CareServiceTest()
      : service_(UniqueName("clinical.case.care-test"), UniqueName("case-service.care-test")) {}
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(service_.Start());
    // sup-1 supervises team-north, whose case manager cm-1 the tests act as.
    testing::OrganisationSetup setup;
    setup.tenant = "tenant-a";
    setup.teams = {{"team-north", "North", {"sup-1"}, {"cm-1"}}};
    const absl::Status configured = testing::ConfigureOrganisationThroughApi(service_.stub(), setup);
    ASSERT_TRUE(configured.ok()) << configured;
  }

  // The opened case is cm-1's: sup-1 assigns it (the policies let a case manager act only
  // on the cases assigned to them).
  void AssignToCaseManager() {
    v1::AssignCaseRequest assign;
    assign.set_case_manager_id("cm-1");
    Do(&v1::CaseService::Stub::AssignCase, assign, kSupervisor);
  }

  template <typename Request, typename Response>
  grpc::Status Call(Rpc<Request, Response> rpc, const Request& request, Response* response,
                    const Who& who = {}) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    testing::Authenticate(context, {who.user, who.role, who.tenant});
    return (service_.stub().*rpc)(&context, request, response);
  }

  // A mutation on the case with a fresh command id; expects OK and a version one or two
  // above the previous one.
  template <typename Request, typename Response>
  Response Do(Rpc<Request, Response> rpc, Request request, const Who& who = {}) {
    request.set_case_id(case_id_);
    if (request.command_id().empty()) request.set_command_id(absl::StrCat("cmd-", ++commands_));
    Response response;
    const grpc::Status status = Call(rpc, request, &response, who);
    EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
    EXPECT_GT(response.version(), version_);
    EXPECT_EQ(response.position().topic().empty(), false);
    version_ = response.version();
    return response;
  }

  // A mutation expected to fail with `code`; nothing may be written.
  template <typename Request, typename Response>
  grpc::Status Refused(Rpc<Request, Response> rpc, Request request, grpc::StatusCode code,
                       const Who& who = {}) {
    request.set_case_id(case_id_);
    request.set_command_id(absl::StrCat("cmd-", ++commands_));
    Response response;
    const grpc::Status status = Call(rpc, request, &response, who);
    EXPECT_EQ(status.error_code(), code) << status.error_message();
    EXPECT_EQ(Get().version(), version_) << "a refused command wrote something";
    return status;
  }

  v1::Case Get() {
    v1::GetCaseRequest request;
    request.set_case_id(case_id_);
    v1::GetCaseResponse response;
    const grpc::Status status = Call(&v1::CaseService::Stub::GetCase, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.case_();
  }

  std::vector<std::string> EventTypes() {
    std::vector<std::string> types;
    v1::ListCaseHistoryRequest request;
    request.set_case_id(case_id_);
    request.set_page_size(500);
    v1::ListCaseHistoryResponse response;
    const grpc::Status status = Call(&v1::CaseService::Stub::ListCaseHistory, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    for (const auto& e : response.events()) types.push_back(e.event_type());
    return types;
  }

  static v1::RecordAssessmentRequest Assess(v1::AssessmentInstrument i, std::vector<int32_t> answers) {
    v1::RecordAssessmentRequest r;
    r.set_instrument(i);
    for (int32_t a : answers) r.add_responses(a);
    return r;
  }

  CaseServiceProcess service_;
  std::string case_id_;
  int64_t version_ = 0;
  int commands_ = 0;
};

TEST_F(CareServiceTest, RealisticCaseFromIntakeToClosureWithCost) {
  using S = v1::CaseService::Stub;
  // ---- Intake ----
  v1::OpenCaseRequest open;
  open.set_command_id("intake-1");
  open.mutable_patient()->set_mrn("MRN-445566");
  open.mutable_patient()->set_given_name("Maria");
  open.mutable_patient()->set_family_name("Example");
  open.mutable_patient()->set_birth_date("1950-03-14");
  open.mutable_patient()->set_gender(v1::ADMINISTRATIVE_GENDER_FEMALE);
  open.set_program("elder_care");
  open.set_priority(2);
  open.set_acuity(3);
  open.mutable_referral()->set_source(v1::REFERRAL_SOURCE_HOSPITAL);
  open.mutable_referral()->set_reason("discharge after CHF admission, lives alone");
  open.set_initial_status(v1::CASE_STATUS_ACTIVE);
  open.set_team_id("team-north");
  v1::OpenCaseResponse opened;
  ASSERT_TRUE(Call(&S::OpenCase, open, &opened).ok());
  case_id_ = opened.case_id();
  version_ = opened.version();
  AssignToCaseManager();
  v1::ChangeCaseStageRequest stage;
  stage.set_stage(v1::CASE_STAGE_ASSESSMENT);
  Do(&S::ChangeCaseStage, stage);

  // ---- Assessments: answers validated, scores computed, high risk escalates ----
  {
    auto bad = Assess(v1::ASSESSMENT_INSTRUMENT_PHQ9, {0, 1, 7, 0, 0, 0, 0, 0, -1});
    const grpc::Status status = Refused(&S::RecordAssessment, bad, grpc::StatusCode::INVALID_ARGUMENT);
    google::rpc::Status details;
    ASSERT_TRUE(details.ParseFromString(status.error_details()));
    google::rpc::BadRequest bad_request;
    ASSERT_EQ(details.details_size(), 1);
    ASSERT_TRUE(details.details(0).UnpackTo(&bad_request));
    std::set<std::string> fields;
    for (const auto& v : bad_request.field_violations()) fields.insert(v.field());
    EXPECT_EQ(fields, (std::set<std::string>{"responses[2]", "responses[8]"}));
    Refused(&S::RecordAssessment, Assess(v1::ASSESSMENT_INSTRUMENT_GAD7, {1, 1}),
            grpc::StatusCode::INVALID_ARGUMENT);
  }
  auto phq = Do(&S::RecordAssessment, Assess(v1::ASSESSMENT_INSTRUMENT_PHQ9, {2, 2, 2, 1, 1, 2, 1, 1, 1}));
  EXPECT_EQ(phq.assessment_id(), "assessment-1");
  Do(&S::RecordAssessment, Assess(v1::ASSESSMENT_INSTRUMENT_GAD7, {1, 2, 1, 1, 0, 1, 0}));
  Do(&S::RecordAssessment, Assess(v1::ASSESSMENT_INSTRUMENT_AUDIT_C, {1, 0, 0}));
  Do(&S::RecordAssessment, Assess(v1::ASSESSMENT_INSTRUMENT_READINESS_TO_CHANGE, {3}));
  Do(&S::RecordAssessment, Assess(v1::ASSESSMENT_INSTRUMENT_SOCIAL_NEEDS, {0, 1, 1, 0, 0}));
  {
    const v1::Case c = Get();
    ASSERT_EQ(c.assessments_size(), 5);
    EXPECT_EQ(c.assessments(0).score(), 13);
    EXPECT_EQ(c.assessments(0).band(), v1::ASSESSMENT_BAND_MODERATE);
    EXPECT_EQ(c.assessments(0).flags(0), v1::ASSESSMENT_FLAG_SUICIDE_RISK);
    EXPECT_EQ(c.assessments(1).score(), 6);
    EXPECT_EQ(c.assessments(1).band(), v1::ASSESSMENT_BAND_MILD);
    EXPECT_EQ(c.assessments(2).band(), v1::ASSESSMENT_BAND_SCREEN_NEGATIVE);
    EXPECT_EQ(c.assessments(3).band(), v1::ASSESSMENT_BAND_PREPARATION);
    EXPECT_EQ(c.assessments(4).band(), v1::ASSESSMENT_BAND_NEEDS_IDENTIFIED);
    EXPECT_EQ(c.risk_level(), v1::RISK_LEVEL_HIGH);
    const auto types = EventTypes();
    EXPECT_NE(std::find(types.begin(), types.end(), "clinical.case.v1.HighRiskIdentified"), types.end());
  }
  v1::ReviewRiskLevelRequest review;
  review.set_risk_level(v1::RISK_LEVEL_MODERATE);
  review.set_reason("safety plan completed with psychiatry; daily check-ins");
  Do(&S::ReviewRiskLevel, review, kSupervisor);

  // ---- Care team and consent ----
  v1::AddCareTeamMemberRequest member;
  member.set_role(v1::CARE_TEAM_ROLE_PROVIDER);
  member.set_name("Northside Home Health");
  member.set_specialty("skilled nursing");
  auto* phone = member.add_contact_preferences();
  phone->set_method(v1::CONTACT_METHOD_PHONE);
  phone->set_value("+1-555-0100");
  phone->set_when("weekdays 8-17");
  const std::string home_health = Do(&S::AddCareTeamMember, member).member_id();
  member.Clear();
  member.set_role(v1::CARE_TEAM_ROLE_PAYER);
  member.set_name("Example Medicare Advantage");
  member.mutable_coverage()->set_plan_name("MA Gold");
  member.mutable_coverage()->set_member_id("MBR-123456");
  auto* auth = member.mutable_coverage()->add_authorizations();
  auth->set_authorization_number("AUTH-2026-001");
  auth->set_service_type(v1::SERVICE_TYPE_HOME_HEALTH);
  auth->set_units(12);
  Do(&S::AddCareTeamMember, member);
  member.Clear();
  member.set_role(v1::CARE_TEAM_ROLE_FAMILY);
  member.set_name("Ana Example");
  member.set_relationship("daughter");
  const std::string daughter = Do(&S::AddCareTeamMember, member).member_id();
  member.Clear();
  member.set_role(v1::CARE_TEAM_ROLE_COMMUNITY_SERVICE);
  member.set_name("Meals on Wheels North");
  const std::string meals = Do(&S::AddCareTeamMember, member).member_id();

  v1::RecordConsentRequest consent;
  consent.add_member_ids(home_health);
  consent.add_member_ids(daughter);
  consent.add_categories(v1::INFORMATION_CATEGORY_CARE_PLAN);
  consent.add_categories(v1::INFORMATION_CATEGORY_CLINICAL);
  consent.add_purposes(v1::CONSENT_PURPOSE_CARE_COORDINATION);
  consent.set_source(v1::CONSENT_SOURCE_SIGNED_FORM);
  *consent.mutable_expires_at() = In(absl::Hours(24 * 365));
  EXPECT_EQ(Do(&S::RecordConsent, consent).consent_id(), "consent-1");

  // ---- Care plan with three goals and their tasks ----
  stage.set_stage(v1::CASE_STAGE_CARE_PLANNING);
  Do(&S::ChangeCaseStage, stage);
  v1::CreateCarePlanRequest plan;
  plan.set_title("Post-discharge stabilisation");
  plan.add_problems("depressive symptoms");
  plan.add_problems("heart failure self-management");
  plan.add_problems("food insecurity and transport");
  plan.set_status(v1::CARE_PLAN_STATUS_ACTIVE);
  Do(&S::CreateCarePlan, plan);
  struct GoalSpec {
    const char* description;
    const char* measure;
    const char* target;
    const char* problem;
  };
  const GoalSpec goals[] = {
      {"Reduce depressive symptoms", "PHQ-9 total score", "<10", "problem-1"},
      {"Daily weight self-monitoring", "days per week with weight logged", "7", "problem-2"},
      {"Reliable food access", "meals delivered per week", "5", "problem-3"}};
  std::vector<std::string> goal_ids, task_ids;
  for (const GoalSpec& g : goals) {
    v1::AddGoalRequest add;
    add.set_description(g.description);
    add.set_measure(g.measure);
    add.set_target_value(g.target);
    add.set_target_date("2026-12-31");
    add.set_priority(v1::GOAL_PRIORITY_HIGH);
    add.set_problem_id(g.problem);
    add.set_lifecycle_status(v1::GOAL_LIFECYCLE_STATUS_ACTIVE);
    goal_ids.push_back(Do(&S::AddGoal, add).goal_id());
    v1::AddCareTaskRequest task;
    task.set_description(absl::StrCat("first step for ", goal_ids.back()));
    task.set_goal_id(goal_ids.back());
    task.set_owner_id("cm-1");
    *task.mutable_due_at() = In(absl::Hours(72));
    task.set_priority(v1::TASK_PRIORITY_URGENT);
    task_ids.push_back(Do(&S::AddCareTask, task).task_id());
  }
  EXPECT_EQ(goal_ids, (std::vector<std::string>{"goal-1", "goal-2", "goal-3"}));
  EXPECT_EQ(task_ids, (std::vector<std::string>{"task-1", "task-2", "task-3"}));
  {
    v1::ChangeCareTaskStatusRequest skip;
    skip.set_task_id("task-1");
    skip.set_status(v1::TASK_STATUS_COMPLETED);
    const grpc::Status s = Refused(&S::ChangeCareTaskStatus, skip, grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_NE(s.error_message().find("allowed:"), std::string::npos);
  }

  // ---- Services: consent enforced, override recorded, exact cost ----
  v1::ReferToServiceRequest referral;
  referral.set_member_id(meals);
  referral.set_service_type(v1::SERVICE_TYPE_MEAL_DELIVERY);
  referral.set_reason("five meals a week");
  referral.set_requested_units(20);
  *referral.mutable_unit_cost() = Usd(875);
  referral.set_goal_id("goal-3");
  referral.add_shared_information(v1::INFORMATION_CATEGORY_CARE_PLAN);
  Refused(&S::ReferToService, referral, grpc::StatusCode::FAILED_PRECONDITION);  // no consent
  referral.mutable_consent_override()->set_reason("patient agreed by phone; form posted");
  const std::string meals_referral = Do(&S::ReferToService, referral).referral_id();
  referral.clear_consent_override();
  referral.set_member_id(home_health);
  referral.set_service_type(v1::SERVICE_TYPE_HOME_HEALTH);
  referral.set_reason("skilled nursing visits for CHF teaching");
  referral.set_requested_units(12);
  *referral.mutable_unit_cost() = Usd(14'250);
  referral.set_goal_id("goal-2");
  const std::string nursing_referral = Do(&S::ReferToService, referral).referral_id();
  EXPECT_EQ(nursing_referral, "referral-2");

  v1::AuthorizeServiceReferralRequest authorize;
  authorize.set_referral_id(nursing_referral);
  authorize.set_authorized_units(10);
  authorize.set_authorization_number("AUTH-2026-001");
  Do(&S::AuthorizeServiceReferral, authorize, kSupervisor);  // the policy: supervisors authorize
  authorize.set_referral_id(meals_referral);
  authorize.set_authorized_units(20);
  authorize.set_authorization_number("CMTY-88");
  Do(&S::AuthorizeServiceReferral, authorize, kSupervisor);

  v1::RecordServiceDeliveryRequest delivery;
  delivery.set_referral_id(nursing_referral);
  delivery.set_units(4);
  delivery.set_delivered_on(absl::FormatTime("%Y-%m-%d", absl::Now() - absl::Hours(48), absl::UTCTimeZone()));
  delivery.set_command_id("deliver-nursing-1");
  const auto first = Do(&S::RecordServiceDelivery, delivery);
  {
    // A retry of the same command id returns the original result and adds no cost.
    delivery.set_case_id(case_id_);
    v1::RecordServiceDeliveryResponse retried;
    ASSERT_TRUE(Call(&S::RecordServiceDelivery, delivery, &retried).ok());
    EXPECT_EQ(retried.version(), first.version());
    EXPECT_EQ(retried.position().offset(), first.position().offset());
  }
  delivery.set_command_id("");
  delivery.set_units(6);
  Do(&S::RecordServiceDelivery, delivery);
  delivery.set_units(1);
  const grpc::Status over = Refused(&S::RecordServiceDelivery, delivery, grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(over.error_message(), "delivery exceeds the authorisation: 10 delivered + 1 > 10 authorised units");
  delivery.set_referral_id(meals_referral);
  delivery.set_units(15);
  Do(&S::RecordServiceDelivery, delivery);
  {
    const v1::Case c = Get();
    // 10 x $142.50 + 15 x $8.75 = $1425.00 + $131.25 = $1556.25
    EXPECT_EQ(c.delivered_cost().minor_units(), 155'625);
    EXPECT_EQ(c.delivered_cost().currency_code(), "USD");
    // 10 x $142.50 + 20 x $8.75 = $1600.00
    EXPECT_EQ(c.authorized_cost().minor_units(), 160'000);
    ASSERT_EQ(c.disclosures_size(), 2);
    EXPECT_EQ(c.disclosures(0).consent_override().reason(), "patient agreed by phone; form posted");
    EXPECT_EQ(c.disclosures(1).consent_id(), "consent-1");
  }
  v1::ChangeServiceReferralStatusRequest complete_referral;
  complete_referral.set_status(v1::SERVICE_REFERRAL_STATUS_COMPLETED);
  for (const auto& id : {meals_referral, nursing_referral}) {
    complete_referral.set_referral_id(id);
    Do(&S::ChangeServiceReferralStatus, complete_referral);
  }

  // ---- Delivery and monitoring: tasks done, progress, goals achieved ----
  stage.set_stage(v1::CASE_STAGE_SERVICE_DELIVERY);
  Do(&S::ChangeCaseStage, stage);
  for (const auto& task : task_ids) {
    v1::ChangeCareTaskStatusRequest change;
    change.set_task_id(task);
    for (auto status : {v1::TASK_STATUS_ACCEPTED, v1::TASK_STATUS_IN_PROGRESS, v1::TASK_STATUS_COMPLETED}) {
      change.set_status(status);
      Do(&S::ChangeCareTaskStatus, change);
    }
  }
  stage.set_stage(v1::CASE_STAGE_MONITORING);
  Do(&S::ChangeCaseStage, stage);
  Do(&S::RecordAssessment, Assess(v1::ASSESSMENT_INSTRUMENT_PHQ9, {1, 1, 1, 1, 0, 0, 0, 0, 0}));
  const char* values[] = {"5", "7", "5"};
  for (size_t i = 0; i < goal_ids.size(); ++i) {
    v1::RecordGoalProgressRequest progress;
    progress.set_goal_id(goal_ids[i]);
    progress.set_achievement_status(v1::GOAL_ACHIEVEMENT_STATUS_IMPROVING);
    progress.set_value("partial");
    Do(&S::RecordGoalProgress, progress);
    progress.set_achievement_status(v1::GOAL_ACHIEVEMENT_STATUS_ACHIEVED);
    progress.set_value(values[i]);
    Do(&S::RecordGoalProgress, progress);
    v1::ChangeGoalStatusRequest done;
    done.set_goal_id(goal_ids[i]);
    done.set_status(v1::GOAL_LIFECYCLE_STATUS_COMPLETED);
    Do(&S::ChangeGoalStatus, done);
  }
  v1::ChangeCarePlanStatusRequest plan_done;
  plan_done.set_status(v1::CARE_PLAN_STATUS_COMPLETED);
  Do(&S::ChangeCarePlanStatus, plan_done);

  // ---- Closure with cost ----
  v1::RequestClosureRequest close;
  close.set_reason(v1::CLOSURE_REASON_GOALS_MET);
  close.set_outcome_summary("stable at home, goals met");
  close.set_satisfaction(v1::SATISFACTION_VERY_SATISFIED);
  EXPECT_TRUE(Do(&S::RequestClosure, close).pending_approval());
  Do(&S::ApproveClosure, v1::ApproveClosureRequest(), kSupervisor);
  const v1::Case closed = Get();
  EXPECT_EQ(closed.status(), v1::CASE_STATUS_FINISHED);
  EXPECT_EQ(closed.assessments(5).band(), v1::ASSESSMENT_BAND_MINIMAL);
  for (const auto& goal : closed.goals()) {
    EXPECT_EQ(goal.lifecycle_status(), v1::GOAL_LIFECYCLE_STATUS_COMPLETED);
    EXPECT_EQ(goal.achievement_status(), v1::GOAL_ACHIEVEMENT_STATUS_ACHIEVED);
    EXPECT_EQ(goal.progress_size(), 2);
  }
  {
    v1::ListCaseHistoryRequest request;
    request.set_case_id(case_id_);
    request.set_page_size(500);
    v1::ListCaseHistoryResponse history;
    ASSERT_TRUE(Call(&S::ListCaseHistory, request, &history).ok());
    ASSERT_EQ(history.events_size(), version_);
    const auto& last = history.events(history.events_size() - 1);
    ASSERT_EQ(last.event_type(), "clinical.case.v1.CaseClosed");
    v1::CaseClosed facts;
    ASSERT_TRUE(last.payload().UnpackTo(&facts));
    EXPECT_EQ(facts.delivered_cost().minor_units(), 155'625);
    EXPECT_EQ(facts.goals_total(), 3);
    EXPECT_EQ(facts.goals_achieved(), 3);
  }
  // A closed case takes no clinical changes.
  Refused(&S::RecordAssessment, Assess(v1::ASSESSMENT_INSTRUMENT_GAD7, {0, 0, 0, 0, 0, 0, 0}),
          grpc::StatusCode::FAILED_PRECONDITION);

  // ---- Restart: the same state from the log; no PHI in any log line ----
  ASSERT_NO_FATAL_FAILURE(service_.Stop());
  for (const auto& line : service_.Lines()) {
    for (const char* phi : {"MRN-445566", "Maria", "Ana Example", "+1-555-0100", "MBR-123456",
                            "CHF", "safety plan"}) {
      EXPECT_EQ(line.find(phi), std::string::npos) << "PHI in log line: " << line;
    }
  }
  ASSERT_NO_FATAL_FAILURE(service_.Start());
  const v1::Case replayed = Get();
  EXPECT_EQ(replayed.SerializeAsString(), closed.SerializeAsString());
}

std::set<std::string> ViolatedFields(const grpc::Status& status) {
  std::set<std::string> fields;
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details()) || details.details_size() != 1) return fields;
  google::rpc::BadRequest bad_request;
  if (!details.details(0).UnpackTo(&bad_request)) return fields;
  for (const auto& v : bad_request.field_violations()) fields.insert(v.field());
  return fields;
}

TEST_F(CareServiceTest, OverdueTasksConsentRevocationValidationAndConcurrency) {
  using S = v1::CaseService::Stub;
  v1::OpenCaseRequest open;
  open.set_command_id("intake-2");
  open.mutable_patient()->set_mrn("MRN-990011");
  open.mutable_patient()->set_given_name("Lee");
  open.mutable_patient()->set_family_name("Example");
  open.mutable_patient()->set_birth_date("1961-09-09");
  open.set_program("transitions_of_care");
  open.set_priority(3);
  open.set_acuity(2);
  open.mutable_referral()->set_source(v1::REFERRAL_SOURCE_EMERGENCY_DEPARTMENT);
  open.mutable_referral()->set_reason("frequent ED visits");
  open.set_initial_status(v1::CASE_STATUS_ACTIVE);
  open.set_team_id("team-north");
  v1::OpenCaseResponse opened;
  ASSERT_TRUE(Call(&S::OpenCase, open, &opened).ok());
  case_id_ = opened.case_id();
  version_ = opened.version();
  AssignToCaseManager();

  // Every field violation at once, nothing written.
  {
    const grpc::Status goal = Refused(&S::AddGoal, v1::AddGoalRequest(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(ViolatedFields(goal),
              (std::set<std::string>{"description", "measure", "target_value", "target_date"}));
    v1::ReferToServiceRequest referral;
    referral.mutable_unit_cost()->set_currency_code("usd");
    referral.mutable_unit_cost()->set_minor_units(-5);
    referral.add_shared_information(static_cast<v1::InformationCategory>(99));
    const grpc::Status refer = Refused(&S::ReferToService, referral, grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(ViolatedFields(refer),
              (std::set<std::string>{"member_id", "service_type", "reason", "requested_units",
                                     "unit_cost.currency_code", "unit_cost.minor_units",
                                     "shared_information[0]"}));
    v1::RecordConsentRequest consent;
    *consent.mutable_expires_at() = In(-absl::Hours(1));
    EXPECT_EQ(ViolatedFields(Refused(&S::RecordConsent, consent, grpc::StatusCode::INVALID_ARGUMENT)),
              (std::set<std::string>{"member_ids", "categories", "purposes", "source", "expires_at"}));
  }

  // Overdue is derived at read time from the task's due time and status.
  v1::CreateCarePlanRequest plan;
  plan.set_title("ED diversion");
  plan.add_problems("no primary care connection");
  Do(&S::CreateCarePlan, plan);
  v1::AddCareTaskRequest task;
  task.set_description("book primary care visit");
  task.set_owner_id("cm-1");
  *task.mutable_due_at() = In(absl::Seconds(2));
  EXPECT_EQ(Do(&S::AddCareTask, task).task_id(), "task-1");
  auto overdue = [&] {
    v1::GetCaseRequest request;
    request.set_case_id(case_id_);
    v1::GetCaseResponse response;
    EXPECT_TRUE(Call(&S::GetCase, request, &response).ok());
    return std::vector<std::string>(response.overdue_task_ids().begin(), response.overdue_task_ids().end());
  };
  EXPECT_TRUE(overdue().empty());
  ASSERT_TRUE(testing::WaitUntil([&] { return overdue() == std::vector<std::string>{"task-1"}; },
                                 absl::Seconds(15)));
  v1::ChangeCareTaskStatusRequest change;
  change.set_task_id("task-1");
  change.set_status(v1::TASK_STATUS_CANCELLED);
  Refused(&S::ChangeCareTaskStatus, change, grpc::StatusCode::INVALID_ARGUMENT);  // needs a reason
  change.set_reason("patient booked it herself");
  Do(&S::ChangeCareTaskStatus, change);
  EXPECT_TRUE(overdue().empty());

  // A revoked consent no longer allows a referral.
  v1::AddCareTeamMemberRequest member;
  member.set_role(v1::CARE_TEAM_ROLE_PROVIDER);
  member.set_name("Eastside Clinic");
  member.set_specialty("primary care");
  const std::string clinic = Do(&S::AddCareTeamMember, member).member_id();
  v1::RecordConsentRequest consent;
  consent.add_member_ids(clinic);
  consent.add_categories(v1::INFORMATION_CATEGORY_CLINICAL);
  consent.add_purposes(v1::CONSENT_PURPOSE_CARE_COORDINATION);
  consent.set_source(v1::CONSENT_SOURCE_ELECTRONIC);
  const std::string consent_id = Do(&S::RecordConsent, consent).consent_id();
  v1::ReferToServiceRequest referral;
  referral.set_member_id(clinic);
  referral.set_service_type(v1::SERVICE_TYPE_OTHER);
  referral.set_reason("establish primary care");
  referral.set_requested_units(1);
  *referral.mutable_unit_cost() = Usd(0);
  referral.add_shared_information(v1::INFORMATION_CATEGORY_CLINICAL);
  // Decided against a stale version (the consent's revocation below may not race it).
  const int64_t before_revocation = version_;
  v1::RevokeConsentRequest revoke;
  revoke.set_consent_id(consent_id);
  revoke.set_reason("patient withdrew consent by phone");
  Do(&S::RevokeConsent, revoke);
  referral.set_expected_version(before_revocation);
  const grpc::Status stale = Refused(&S::ReferToService, referral, grpc::StatusCode::ABORTED);
  EXPECT_NE(stale.error_message().find(absl::StrCat("version ", version_)), std::string::npos);
  referral.clear_expected_version();
  const grpc::Status refused = Refused(&S::ReferToService, referral, grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find(clinic), std::string::npos);
  EXPECT_EQ(refused.error_message().find("Eastside"), std::string::npos);  // ids only, no names
  const v1::Case c = Get();
  EXPECT_TRUE(c.consents(0).revoked());
  EXPECT_TRUE(c.care_team(0).consent_ids().empty());
  EXPECT_TRUE(c.service_referrals().empty());
}

}  // namespace
}  // namespace clinical::case_service

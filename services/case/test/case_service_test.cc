// The case service as a real process against the test run's real Kafka, driven over gRPC
// with the generated stubs: the full lifecycle, validation and identity at the edge,
// concurrent conflicting commands, and SIGKILL + restart keeping every acknowledged change.
#include <signal.h>

#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clinical/case/v1/case_service.grpc.pb.h"
#include "clinical/case/v1/events.pb.h"
#include "clinical/testing/identity.h"
#include "clinical/testing/organisation.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/service_process.h"
#include "clinical/testing/subprocess.h"
#include "clinical/testing/topics.h"
#include "clinical/testing/wait.h"
#include "clinical/audit/v1/access.pb.h"
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

int ListeningPort(const std::string& line) {
  auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || parsed.value("msg", "") != "listening") return 0;
  return parsed.value("port", 0);
}

// One case service process on its own topic.
class CaseServiceProcess {
 public:
  CaseServiceProcess(std::string topic, std::string writer_id)
      : topic_(std::move(topic)), writer_id_(std::move(writer_id)) {}

  void Start() {
    auto process = Subprocess::Start(
        {testing::BinaryPath("services/case/case_service"), "--grpc-port=0",
         "--shutdown-grace=5s", "--case-topic-partitions=3", "--case-topic=" + topic_,
         "--organisation-topic=" + topic_ + ".organisation", "--access-topic=" + access_topic(),
         "--writer-id=" + writer_id_},
        testing::ServiceEnvironment("case"));
    ASSERT_TRUE(process.ok()) << process.status();
    process_ = std::move(*process);
    auto line = process_->WaitForLine([](const std::string& l) { return ListeningPort(l) > 0; },
                                      absl::Seconds(90));
    ASSERT_TRUE(line.has_value()) << absl::StrJoin(process_->Lines(), "\n");
    stub_ = v1::CaseService::NewStub(testing::SecureChannel(absl::StrCat("127.0.0.1:", ListeningPort(*line))));
  }
  void Kill() {
    process_->Signal(SIGKILL);
    ASSERT_TRUE(process_->Wait(absl::Seconds(10)).has_value());
    stub_.reset();
  }
  void Stop() {
    process_->Signal(SIGTERM);
    auto status = process_->Wait(absl::Seconds(30));
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  }
  v1::CaseService::Stub& stub() { return *stub_; }
  std::vector<std::string> Lines() const { return process_->Lines(); }
  // This process's access records (one per call), on its own topic.
  std::string access_topic() const { return topic_ + ".access"; }

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

std::unique_ptr<grpc::ClientContext> Context(const Who& who) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  testing::Authenticate(*context, {who.user, who.role, who.tenant});
  return context;
}

// Calls a unary RPC as `who`.
template <typename Request, typename Response>
grpc::Status Call(grpc::Status (v1::CaseService::Stub::*rpc)(grpc::ClientContext*, const Request&,
                                                              Response*),
                  v1::CaseService::Stub& stub, const Who& who, const Request& request,
                  Response* response) {
  auto context = Context(who);
  return (stub.*rpc)(context.get(), request, response);
}

v1::OpenCaseRequest Intake(const std::string& command_id) {
  v1::OpenCaseRequest open;
  open.set_command_id(command_id);
  open.mutable_patient()->set_mrn("MRN-778812");
  open.mutable_patient()->set_given_name("Rosa");
  open.mutable_patient()->set_family_name("Example");
  open.mutable_patient()->set_birth_date("1944-06-01");
  open.mutable_patient()->set_gender(v1::ADMINISTRATIVE_GENDER_FEMALE);
  open.set_program("elder_care");
  open.set_priority(2);
  open.set_acuity(3);
  open.mutable_referral()->set_source(v1::REFERRAL_SOURCE_HOSPITAL);
  open.mutable_referral()->set_reason("discharge after hip fracture");
  open.set_initial_status(v1::CASE_STATUS_ACTIVE);
  open.set_team_id("team-north");
  return open;
}

// tenant-a's organisation: sup-1 supervises team-north, whose case managers the tests act as.
const Who kIntake{"intake-1", "intake_coordinator", "tenant-a"};
const Who kSupervisor{"sup-1", "supervisor", "tenant-a"};

void SetUpOrganisation(v1::CaseService::Stub& stub) {
  testing::OrganisationSetup setup;
  setup.tenant = "tenant-a";
  setup.privacy_officer_ids = {"privacy-1"};
  setup.teams = {{"team-north", "North", {"sup-1"}, {"cm-1", "cm-2", "cm-7", "cm-8"}}};
  const absl::Status configured = testing::ConfigureOrganisationThroughApi(stub, setup);
  ASSERT_TRUE(configured.ok()) << configured;
}

// Opens a case as the intake coordinator and has sup-1 assign it to `case_manager`: the
// case (version 2) is then cm's to act on.
std::string OpenAssigned(v1::CaseService::Stub& stub, const std::string& command_id,
                         const std::string& case_manager = "cm-1") {
  v1::OpenCaseResponse opened;
  const grpc::Status status = Call(&v1::CaseService::Stub::OpenCase, stub, kIntake, Intake(command_id), &opened);
  EXPECT_TRUE(status.ok()) << status.error_message();
  v1::AssignCaseRequest assign;
  assign.set_case_id(opened.case_id());
  assign.set_command_id(command_id + "-assign");
  assign.set_case_manager_id(case_manager);
  v1::AssignCaseResponse assigned;
  const grpc::Status assigned_status = Call(&v1::CaseService::Stub::AssignCase, stub, kSupervisor, assign, &assigned);
  EXPECT_TRUE(assigned_status.ok()) << assigned_status.error_message();
  EXPECT_EQ(assigned.version(), 2);
  return opened.case_id();
}

// The process's access records once `count` of them match `wanted` (they are published
// asynchronously, after the call answered); fails the test if they do not show up in time.
std::vector<audit::v1::AccessRecord> AccessRecordsOnce(const std::string& topic, int count,
                                                       const std::function<bool(const audit::v1::AccessRecord&)>& wanted) {
  std::vector<audit::v1::AccessRecord> matching;
  const bool arrived = testing::WaitUntil(
      [&] {
        matching.clear();
        for (const testing::TopicRecord& r : testing::ReadTopicToEnd(topic)) {
          audit::v1::AccessRecord record;
          if (record.ParseFromString(r.value) && wanted(record)) matching.push_back(std::move(record));
        }
        return static_cast<int>(matching.size()) >= count;
      },
      absl::Seconds(30), absl::Milliseconds(200));
  EXPECT_TRUE(arrived) << matching.size() << " of " << count << " access records";
  return matching;
}

// The field names of an INVALID_ARGUMENT's violations.
std::vector<std::string> ViolatedFields(const grpc::Status& status) {
  std::vector<std::string> fields;
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details()) || details.details_size() != 1) return fields;
  google::rpc::BadRequest bad_request;
  if (!details.details(0).UnpackTo(&bad_request)) return fields;
  for (const auto& v : bad_request.field_violations()) fields.push_back(v.field());
  return fields;
}

v1::Case GetCase(v1::CaseService::Stub& stub, const std::string& case_id, const Who& who = {}) {
  v1::GetCaseRequest request;
  request.set_case_id(case_id);
  v1::GetCaseResponse response;
  const grpc::Status status = Call(&v1::CaseService::Stub::GetCase, stub, who, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.case_();
}

class CaseServiceTest : public ::testing::Test {
 protected:
  CaseServiceTest() : service_(UniqueName("clinical.case.test"), UniqueName("case-service.test")) {}
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(service_.Start());
    ASSERT_NO_FATAL_FAILURE(SetUpOrganisation(stub()));
  }
  v1::CaseService::Stub& stub() { return service_.stub(); }

  // A case of tenant-a assigned to cm-1 (version 2).
  std::string Open(const std::string& command_id) { return OpenAssigned(stub(), command_id); }

  CaseServiceProcess service_;
};

TEST_F(CaseServiceTest, LifecycleOpenAssignNotesClosureApprovedReopened) {
  const Who cm{"cm-1", "case_manager", "tenant-a"};
  const Who supervisor = kSupervisor;
  v1::OpenCaseResponse opened;
  ASSERT_TRUE(Call(&v1::CaseService::Stub::OpenCase, stub(), kIntake, Intake("open-1"), &opened).ok());
  const std::string id = opened.case_id();
  EXPECT_EQ(id.size(), 36u);
  EXPECT_EQ(opened.version(), 1);
  EXPECT_FALSE(opened.position().topic().empty());

  // A retried OpenCase (same command id, no case id) is the same case, nothing new written.
  v1::OpenCaseResponse retried;
  ASSERT_TRUE(Call(&v1::CaseService::Stub::OpenCase, stub(), kIntake, Intake("open-1"), &retried).ok());
  EXPECT_EQ(retried.case_id(), id);
  EXPECT_EQ(retried.version(), 1);
  EXPECT_EQ(retried.position().offset(), opened.position().offset());

  v1::AssignCaseRequest assign;
  assign.set_case_id(id);
  assign.set_command_id("assign-1");
  assign.set_expected_version(1);
  assign.set_case_manager_id("cm-2");
  v1::AssignCaseResponse assigned;
  ASSERT_TRUE(Call(&v1::CaseService::Stub::AssignCase, stub(), supervisor, assign, &assigned).ok());
  EXPECT_EQ(assigned.version(), 2);
  EXPECT_GT(assigned.position().offset(), opened.position().offset());

  v1::AcceptAssignmentRequest accept;
  accept.set_case_id(id);
  accept.set_command_id("accept-1");
  v1::AcceptAssignmentResponse accepted;
  EXPECT_EQ(Call(&v1::CaseService::Stub::AcceptAssignment, stub(), cm, accept, &accepted).error_code(),
            grpc::StatusCode::PERMISSION_DENIED)
      << "only cm-2 may accept (cm-1 has no relationship to the case)";
  ASSERT_TRUE(Call(&v1::CaseService::Stub::AcceptAssignment, stub(), Who{"cm-2"}, accept, &accepted).ok());

  const absl::Time contact = absl::Now() - absl::Hours(3);
  v1::AddNoteRequest note;
  note.set_case_id(id);
  note.set_command_id("note-1");
  note.set_kind(v1::NOTE_KIND_CONTACT);
  note.set_channel(v1::CONTACT_CHANNEL_HOME_VISIT);
  note.mutable_occurred_at()->set_seconds(absl::ToUnixSeconds(contact));
  note.set_text("home visit: walking with frame");
  v1::AddNoteResponse noted;
  ASSERT_TRUE(Call(&v1::CaseService::Stub::AddNote, stub(), Who{"cm-2"}, note, &noted).ok());
  EXPECT_EQ(noted.note_id(), "note-1");
  note.set_command_id("note-2");
  note.set_kind(v1::NOTE_KIND_PROGRESS);
  note.set_channel(v1::CONTACT_CHANNEL_NONE);
  note.clear_occurred_at();
  note.set_text("care plan on track");
  ASSERT_TRUE(Call(&v1::CaseService::Stub::AddNote, stub(), Who{"cm-2"}, note, &noted).ok());
  EXPECT_EQ(noted.note_id(), "note-2");

  v1::RequestClosureRequest close;
  close.set_case_id(id);
  close.set_command_id("close-1");
  close.set_reason(v1::CLOSURE_REASON_GOALS_MET);
  close.set_outcome_summary("independent at home");
  close.set_satisfaction(v1::SATISFACTION_VERY_SATISFIED);
  v1::RequestClosureResponse requested;
  ASSERT_TRUE(Call(&v1::CaseService::Stub::RequestClosure, stub(), Who{"cm-2"}, close, &requested).ok());
  EXPECT_TRUE(requested.pending_approval()) << "elder_care requires approval";
  EXPECT_EQ(GetCase(stub(), id, Who{"cm-2"}).status(), v1::CASE_STATUS_ACTIVE);

  v1::ApproveClosureRequest approve;
  approve.set_case_id(id);
  approve.set_command_id("approve-1");
  approve.set_comment("well done");
  v1::ApproveClosureResponse approved;
  EXPECT_EQ(Call(&v1::CaseService::Stub::ApproveClosure, stub(), cm, approve, &approved).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(Call(&v1::CaseService::Stub::ApproveClosure, stub(), supervisor, approve, &approved).ok());
  EXPECT_EQ(approved.version(), 8) << "ClosureApproved + CaseClosed";

  v1::ReopenCaseRequest reopen;
  reopen.set_case_id(id);
  reopen.set_command_id("reopen-1");
  reopen.set_expected_version(8);
  reopen.set_reason("readmitted after a fall");
  v1::ReopenCaseResponse reopened;
  ASSERT_TRUE(Call(&v1::CaseService::Stub::ReopenCase, stub(), supervisor, reopen, &reopened).ok());
  EXPECT_EQ(reopened.version(), 9);

  const v1::Case state = GetCase(stub(), id, supervisor);
  EXPECT_EQ(state.version(), 9);
  EXPECT_EQ(state.status(), v1::CASE_STATUS_ACTIVE);
  EXPECT_EQ(state.stage(), v1::CASE_STAGE_ASSESSMENT);
  EXPECT_EQ(state.patient().mrn(), "MRN-778812");
  EXPECT_EQ(state.assignment().case_manager_id(), "cm-2");
  EXPECT_EQ(state.assignment().state(), v1::ASSIGNMENT_STATE_ACCEPTED);
  EXPECT_EQ(state.notes_size(), 2);
  EXPECT_EQ(state.last_contact_at().seconds(), absl::ToUnixSeconds(contact));
  EXPECT_EQ(state.closure().state(), v1::CLOSURE_STATE_REOPENED);
  EXPECT_EQ(state.closure().decided_by(), "sup-1");
  ASSERT_EQ(state.status_history_size(), 3);
  EXPECT_EQ(state.status_history(1).to(), v1::CASE_STATUS_FINISHED);
  EXPECT_EQ(state.status_history(2).reason(), "readmitted after a fall");

  // History from the log, in pages, with the actor of each event.
  std::vector<v1::ListCaseHistoryResponse> pages;
  v1::ListCaseHistoryRequest history;
  history.set_case_id(id);
  history.set_page_size(4);
  std::vector<std::string> types;
  std::vector<std::string> actors;
  do {
    v1::ListCaseHistoryResponse page;
    ASSERT_TRUE(Call(&v1::CaseService::Stub::ListCaseHistory, stub(), Who{"cm-2"}, history, &page).ok());
    for (const auto& e : page.events()) {
      types.push_back(e.event_type());
      actors.push_back(e.actor().user_id());
      EXPECT_EQ(e.tenant_id(), "tenant-a");
      EXPECT_EQ(e.aggregate_id(), id);
    }
    history.set_page_token(page.next_page_token());
    pages.push_back(page);
  } while (!history.page_token().empty());
  EXPECT_EQ(pages.size(), 3u);
  EXPECT_EQ(types, (std::vector<std::string>{
                       "clinical.case.v1.CaseOpened", "clinical.case.v1.CaseAssigned",
                       "clinical.case.v1.AssignmentAccepted", "clinical.case.v1.NoteAdded",
                       "clinical.case.v1.NoteAdded", "clinical.case.v1.ClosureRequested",
                       "clinical.case.v1.ClosureApproved", "clinical.case.v1.CaseClosed",
                       "clinical.case.v1.CaseReopened"}));
  EXPECT_EQ(actors, (std::vector<std::string>{"intake-1", "sup-1", "cm-2", "cm-2", "cm-2", "cm-2",
                                              "sup-1", "sup-1", "sup-1"}));
  v1::CaseReopened payload;
  ASSERT_TRUE(pages.back().events(0).payload().UnpackTo(&payload));
  EXPECT_EQ(payload.from(), v1::CASE_STATUS_FINISHED);
}

TEST_F(CaseServiceTest, InvalidRequestsGetEveryFieldViolationAndWriteNothing) {
  const std::string id = Open("open-v");
  v1::OpenCaseRequest bad = Intake("open-bad");
  bad.mutable_patient()->clear_mrn();
  bad.set_acuity(9);
  bad.set_program("astrology");
  v1::OpenCaseResponse response;
  const grpc::Status status = Call(&v1::CaseService::Stub::OpenCase, stub(), Who{}, bad, &response);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(status.error_details()));
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::BadRequest bad_request;
  ASSERT_TRUE(details.details(0).UnpackTo(&bad_request));
  std::vector<std::string> fields;
  for (const auto& v : bad_request.field_violations()) fields.push_back(v.field());
  EXPECT_EQ(fields, (std::vector<std::string>{"patient.mrn", "program", "acuity"}));
  EXPECT_EQ(status.error_message().find("MRN"), std::string::npos);

  v1::PutCaseOnHoldRequest hold;  // no review date, no reason
  hold.set_case_id(id);
  hold.set_command_id("hold-1");
  v1::PutCaseOnHoldResponse held;
  EXPECT_EQ(Call(&v1::CaseService::Stub::PutCaseOnHold, stub(), Who{}, hold, &held).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::CancelCaseRequest cancel;  // active: illegal transition
  cancel.set_case_id(id);
  cancel.set_command_id("cancel-1");
  cancel.set_reason("duplicate");
  v1::CancelCaseResponse cancelled;
  EXPECT_EQ(Call(&v1::CaseService::Stub::CancelCase, stub(), Who{}, cancel, &cancelled).error_code(),
            grpc::StatusCode::PERMISSION_DENIED)
      << "the policy lets a case manager not cancel";
  const grpc::Status illegal = Call(&v1::CaseService::Stub::CancelCase, stub(), kSupervisor, cancel, &cancelled);
  EXPECT_EQ(illegal.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(illegal.error_message().find("CASE_STATUS_ACTIVE"), std::string::npos) << illegal.error_message();
  EXPECT_EQ(GetCase(stub(), id).version(), 2) << "nothing written on any error";
}

TEST_F(CaseServiceTest, IdentityComesFromMetadataAndTenantsAreIsolated) {
  const std::string id = Open("open-t");
  v1::GetCaseRequest get;
  get.set_case_id(id);
  v1::GetCaseResponse response;
  EXPECT_EQ(Call(&v1::CaseService::Stub::GetCase, stub(), Who{"", "case_manager", "tenant-a"}, get,
                 &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Call(&v1::CaseService::Stub::GetCase, stub(), Who{"cm-1", "wizard", "tenant-a"}, get,
                 &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Call(&v1::CaseService::Stub::GetCase, stub(), Who{"cm-1", "case_manager", "tenant-b"},
                 get, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::AddNoteRequest note;
  note.set_case_id(id);
  note.set_command_id("note-x");
  note.set_kind(v1::NOTE_KIND_PROGRESS);
  note.set_text("x");
  v1::AddNoteResponse noted;
  EXPECT_EQ(Call(&v1::CaseService::Stub::AddNote, stub(), Who{"cm-9", "case_manager", "tenant-b"},
                 note, &noted).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // OpenCase with the id of another tenant's case: as if it did not exist, nothing written.
  v1::OpenCaseRequest reuse = Intake("open-reuse");
  reuse.set_case_id(id);
  v1::OpenCaseResponse reused;
  EXPECT_EQ(Call(&v1::CaseService::Stub::OpenCase, stub(), Who{"intake-9", "intake_coordinator", "tenant-b"}, reuse,
                 &reused).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // Both refusals are access attempts: recorded as DENIED.
  const auto refused = AccessRecordsOnce(service_.access_topic(), 3, [](const audit::v1::AccessRecord& record) {
    return record.tenant_id() == "tenant-b";
  });
  std::set<std::string> methods;
  for (const auto& record : refused) {
    EXPECT_EQ(record.outcome(), audit::v1::ACCESS_OUTCOME_DENIED) << record.method();
    EXPECT_EQ(record.status_code(), static_cast<int>(grpc::StatusCode::NOT_FOUND)) << record.method();
    methods.insert(record.method().substr(record.method().rfind('/') + 1));
  }
  EXPECT_EQ(methods, (std::set<std::string>{"GetCase", "AddNote", "OpenCase"}));
  // In the tenant, a case manager without a relationship to the case is refused.
  EXPECT_EQ(Call(&v1::CaseService::Stub::GetCase, stub(), Who{"cm-2"}, get, &response).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  const v1::Case state = GetCase(stub(), id);
  EXPECT_EQ(state.version(), 2);
  EXPECT_EQ(state.tenant_id(), "tenant-a");
  EXPECT_EQ(state.opened_by(), "intake-1");
}

TEST_F(CaseServiceTest, ConcurrentConflictingCommandsOneWinsOthersAbortedWithCurrentVersion) {
  const std::string id = Open("open-c");
  constexpr int kClients = 8;
  std::atomic<int> ok{0}, aborted{0}, other{0};
  std::vector<std::string> messages(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      v1::ChangeCaseStageRequest stage;
      stage.set_case_id(id);
      stage.set_command_id(absl::StrCat("stage-", i));
      stage.set_expected_version(2);
      stage.set_stage(v1::CASE_STAGE_ASSESSMENT);
      stage.set_reason(absl::StrCat("client ", i));
      v1::ChangeCaseStageResponse response;
      const grpc::Status s =
          Call(&v1::CaseService::Stub::ChangeCaseStage, stub(), Who{}, stage, &response);
      if (s.ok()) {
        ++ok;
      } else if (s.error_code() == grpc::StatusCode::ABORTED) {
        ++aborted;
        messages[i] = s.error_message();
      } else {
        ++other;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(aborted, kClients - 1);
  EXPECT_EQ(other, 0);
  for (const std::string& m : messages) {
    if (!m.empty()) {
      EXPECT_NE(m.find("case is at version 3"), std::string::npos) << m;
    }
  }
  const v1::Case state = GetCase(stub(), id);
  EXPECT_EQ(state.version(), 3);
  EXPECT_EQ(state.stage_history_size(), 1);
}

TEST_F(CaseServiceTest, CapacityLimitAcrossCasesAndSupervisorOverride) {
  // elder_care allows an acuity-weighted load of 60: 12 cases of acuity 5 fill cm-7.
  std::vector<std::string> ids;
  for (int i = 0; i < 13; ++i) {
    v1::OpenCaseRequest open = Intake(absl::StrCat("open-cap-", i));
    open.set_acuity(5);
    v1::OpenCaseResponse opened;
    ASSERT_TRUE(Call(&v1::CaseService::Stub::OpenCase, stub(), kIntake, open, &opened).ok());
    ids.push_back(opened.case_id());
  }
  auto assign = [&](const std::string& id, const Who& who, bool with_override) {
    v1::AssignCaseRequest request;
    request.set_case_id(id);
    request.set_command_id(absl::StrCat("assign-", id, with_override ? "-o" : ""));
    request.set_case_manager_id("cm-7");
    if (with_override) request.mutable_capacity_override()->set_reason("continuity of care");
    v1::AssignCaseResponse response;
    return Call(&v1::CaseService::Stub::AssignCase, stub(), who, request, &response);
  };
  // Unassigned cases: the intake coordinator assigns them.
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(assign(ids[i], kIntake, false).ok()) << i;
  const grpc::Status full = assign(ids[12], kIntake, false);
  EXPECT_EQ(full.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(full.error_message().find("60 plus 5"), std::string::npos) << full.error_message();
  EXPECT_EQ(assign(ids[12], kIntake, true).error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << "only a supervisor's judgement may exceed a caseload";
  ASSERT_TRUE(assign(ids[12], kSupervisor, true).ok());
  EXPECT_EQ(GetCase(stub(), ids[12], kSupervisor).assignment().capacity_override().reason(), "continuity of care");

  // Bulk reassignment of the departing cm-7 to cm-8, who has room for 12 of the 13.
  v1::BulkReassignCasesRequest bulk;
  bulk.set_command_id("bulk-1");
  bulk.set_from_case_manager_id("cm-7");
  bulk.add_to_case_manager_ids("cm-8");
  bulk.set_strategy(v1::DISTRIBUTION_STRATEGY_LEAST_LOADED);
  bulk.set_reason("cm-7 leaves");
  v1::BulkReassignCasesResponse moved;
  ASSERT_TRUE(Call(&v1::CaseService::Stub::BulkReassignCases, stub(),
                   Who{"sup-1", "supervisor", "tenant-a"}, bulk, &moved).ok());
  EXPECT_EQ(moved.reassigned_size(), 12);
  ASSERT_EQ(moved.unplaced_size(), 1);
  for (const auto& r : moved.reassigned()) EXPECT_EQ(r.case_manager_id(), "cm-8");
  const v1::Case left = GetCase(stub(), moved.unplaced(0).case_id(), kSupervisor);
  EXPECT_EQ(left.assignment().case_manager_id(), "cm-7") << "unplaced cases stay where they were";
  const v1::Case one = GetCase(stub(), moved.reassigned(0).case_id(), kSupervisor);
  EXPECT_EQ(one.assignment().case_manager_id(), "cm-8");
  EXPECT_EQ(one.assignment().state(), v1::ASSIGNMENT_STATE_PENDING);
}

// ---- Trust II: the organisation, emergency access, notes, Part 2, late relationship changes ----

TEST_F(CaseServiceTest, OrganisationIsValidatedVersionedAndIdempotent) {
  const Who admin{"admin-1", "administrator", "tenant-a"};
  v1::ConfigureOrganisationRequest configure;
  configure.set_command_id("configure-bad");
  configure.set_emergency_access_max_minutes(5);
  v1::ConfigureOrganisationResponse configured;
  const grpc::Status bad = Call(&v1::CaseService::Stub::ConfigureOrganisation, stub(), admin, configure, &configured);
  ASSERT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(bad), (std::vector<std::string>{"privacy_officer_ids", "emergency_access_max_minutes"}));
  configure.add_privacy_officer_ids("privacy-1");
  configure.set_emergency_access_max_minutes(60);
  EXPECT_EQ(Call(&v1::CaseService::Stub::ConfigureOrganisation, stub(), kSupervisor, configure, &configured).error_code(),
            grpc::StatusCode::PERMISSION_DENIED)
      << "administrators only";

  v1::GetOrganisationResponse got;
  ASSERT_TRUE(Call(&v1::CaseService::Stub::GetOrganisation, stub(), kSupervisor, v1::GetOrganisationRequest(), &got).ok());
  EXPECT_EQ(got.organisation().version(), 2) << "configured, then team-north (SetUp)";
  ASSERT_EQ(got.organisation().teams_size(), 1);
  EXPECT_EQ(got.organisation().teams(0).supervisor_ids(0), "sup-1");

  v1::SetTeamRequest team;
  team.set_command_id("team-south");
  team.mutable_team()->set_team_id("team-south");
  team.mutable_team()->set_name("South");
  team.mutable_team()->add_member_ids("cm-5");
  team.mutable_team()->add_member_ids("cm-5");
  v1::SetTeamResponse set;
  const grpc::Status invalid = Call(&v1::CaseService::Stub::SetTeam, stub(), admin, team, &set);
  ASSERT_EQ(invalid.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(invalid), (std::vector<std::string>{"team.supervisor_ids", "team.member_ids[1]"}));
  team.mutable_team()->clear_member_ids();
  team.mutable_team()->add_member_ids("cm-5");
  team.mutable_team()->add_supervisor_ids("sup-2");
  team.set_expected_version(1);
  const grpc::Status stale = Call(&v1::CaseService::Stub::SetTeam, stub(), admin, team, &set);
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_NE(stale.error_message().find("at version 2"), std::string::npos) << stale.error_message();
  team.set_expected_version(2);
  ASSERT_TRUE(Call(&v1::CaseService::Stub::SetTeam, stub(), admin, team, &set).ok());
  EXPECT_EQ(set.version(), 3);
  v1::SetTeamResponse again;
  ASSERT_TRUE(Call(&v1::CaseService::Stub::SetTeam, stub(), admin, team, &again).ok());
  EXPECT_EQ(again.version(), 3) << "a retry writes nothing";
  EXPECT_EQ(again.position().offset(), set.position().offset());
  ASSERT_TRUE(Call(&v1::CaseService::Stub::GetOrganisation, stub(), kSupervisor, v1::GetOrganisationRequest(), &got).ok());
  EXPECT_EQ(got.organisation().version(), 3);
  EXPECT_EQ(got.organisation().teams_size(), 2);
}

TEST_F(CaseServiceTest, BreakTheGlassGrantReviewAndRepeatedUse) {
  const Who stranger{"cm-9", "case_manager", "tenant-a"};
  const Who privacy{"privacy-1", "privacy_officer", "tenant-a"};
  const std::string id = Open("open-e");
  v1::GetCaseRequest get;
  get.set_case_id(id);
  v1::GetCaseResponse got;
  EXPECT_EQ(Call(&v1::CaseService::Stub::GetCase, stub(), stranger, get, &got).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  auto request_access = [&](const std::string& case_id, const Who& who, int32_t minutes, const std::string& reason,
                            v1::RequestEmergencyAccessResponse* response) {
    v1::RequestEmergencyAccessRequest request;
    request.set_case_id(case_id);
    request.set_command_id(absl::StrCat("glass-", case_id, "-", who.user, "-", minutes, "-", reason.size()));
    request.set_reason(reason);
    request.set_duration_minutes(minutes);
    return Call(&v1::CaseService::Stub::RequestEmergencyAccess, stub(), who, request, response);
  };
  v1::RequestEmergencyAccessResponse granted;
  EXPECT_EQ(request_access(id, Who{}, 30, "in ED", &granted).error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << "cm-1 is assigned: no glass to break";
  const grpc::Status invalid = request_access(id, stranger, 241, "", &granted);
  ASSERT_EQ(invalid.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(invalid), (std::vector<std::string>{"reason", "duration_minutes"}));
  const absl::Time before = absl::Now();
  ASSERT_TRUE(request_access(id, stranger, 30, "unresponsive in ED", &granted).ok());
  EXPECT_EQ(granted.grant_id(), "emergency-1");
  const absl::Time expires = absl::FromUnixSeconds(granted.expires_at().seconds());
  EXPECT_GE(expires, before + absl::Minutes(30) - absl::Seconds(1));
  EXPECT_LE(expires, absl::Now() + absl::Minutes(30));
  EXPECT_EQ(request_access(id, stranger, 20, "again", &granted).error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << "an active grant already";

  // Under the grant the stranger reads the case, recorded as emergency access.
  ASSERT_TRUE(Call(&v1::CaseService::Stub::GetCase, stub(), stranger, get, &got).ok());
  ASSERT_EQ(got.case_().emergency_access_size(), 1) << "the grant is on the case";
  EXPECT_EQ(got.case_().emergency_access(0).user_id(), "cm-9");
  EXPECT_EQ(got.case_().emergency_access(0).team_id(), "team-north");
  for (const auto& record :
       AccessRecordsOnce(service_.access_topic(), 1, [](const audit::v1::AccessRecord& record) {
         return record.actor_id() == "cm-9" && record.method().ends_with("GetCase") &&
                record.outcome() == audit::v1::ACCESS_OUTCOME_ALLOWED;
       })) {
    EXPECT_EQ(record.relationship(), "emergency");
    EXPECT_EQ(record.emergency_grant_id(), "emergency-1");
  }

  // The privacy officer's review: a use found unjustified says why.
  v1::ReviewEmergencyAccessRequest review;
  review.set_case_id(id);
  review.set_command_id("review-1");
  review.set_grant_id("emergency-1");
  review.set_justified(false);
  v1::ReviewEmergencyAccessResponse reviewed;
  const grpc::Status no_note = Call(&v1::CaseService::Stub::ReviewEmergencyAccess, stub(), privacy, review, &reviewed);
  ASSERT_EQ(no_note.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(no_note), (std::vector<std::string>{"note"}));
  review.set_note("not the treating clinician; discussed with the manager");
  EXPECT_EQ(Call(&v1::CaseService::Stub::ReviewEmergencyAccess, stub(), kSupervisor, review, &reviewed).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(Call(&v1::CaseService::Stub::ReviewEmergencyAccess, stub(), privacy, review, &reviewed).ok());
  review.set_command_id("review-2");
  EXPECT_EQ(Call(&v1::CaseService::Stub::ReviewEmergencyAccess, stub(), privacy, review, &reviewed).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION)
      << "reviewed once";

  // Two more cases broken into: a pattern for the privacy officer.
  const std::string second = Open("open-e2");
  const std::string third = Open("open-e3");
  ASSERT_TRUE(request_access(second, stranger, 15, "covering", &granted).ok());
  ASSERT_TRUE(request_access(third, stranger, 15, "covering", &granted).ok());
  v1::ListEmergencyAccessResponse listed;
  ASSERT_TRUE(Call(&v1::CaseService::Stub::ListEmergencyAccess, stub(), privacy, v1::ListEmergencyAccessRequest(),
                   &listed).ok());
  ASSERT_EQ(listed.grants_size(), 3);
  EXPECT_FALSE(listed.grants(0).grant().has_review()) << "unreviewed first";
  EXPECT_FALSE(listed.grants(1).grant().has_review());
  EXPECT_EQ(listed.grants(2).case_id(), id);
  ASSERT_EQ(listed.repeated_use_size(), 1);
  EXPECT_EQ(listed.repeated_use(0).user_id(), "cm-9");
  EXPECT_EQ(listed.repeated_use(0).grants(), 3);
  EXPECT_EQ(Call(&v1::CaseService::Stub::ListEmergencyAccess, stub(), stranger, v1::ListEmergencyAccessRequest(),
                 &listed).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(CaseServiceTest, NotesPart2ConsentAndCareTeamStaff) {
  const Who nurse{"nurse-1", "case_manager", "tenant-a"};
  const std::string id = Open("open-p");
  auto add_note = [&](const std::string& command_id, v1::InformationCategory category) {
    v1::AddNoteRequest note;
    note.set_case_id(id);
    note.set_command_id(command_id);
    note.set_kind(v1::NOTE_KIND_PROGRESS);
    note.set_text("progress");
    note.set_category(category);
    v1::AddNoteResponse noted;
    EXPECT_TRUE(Call(&v1::CaseService::Stub::AddNote, stub(), Who{}, note, &noted).ok());
    return noted.note_id();
  };
  const std::string plain = add_note("note-plain", v1::INFORMATION_CATEGORY_UNSPECIFIED);
  const std::string part2 = add_note("note-sud", v1::INFORMATION_CATEGORY_SUBSTANCE_USE);

  v1::AddCareTeamMemberRequest member;
  member.set_case_id(id);
  member.set_command_id("member-nurse");
  member.set_role(v1::CARE_TEAM_ROLE_PROVIDER);
  member.set_name("Community nurse");
  member.set_staff_user_id("nurse-1");
  v1::AddCareTeamMemberResponse added;
  ASSERT_TRUE(Call(&v1::CaseService::Stub::AddCareTeamMember, stub(), Who{}, member, &added).ok());

  auto notes_seen = [&](const Who& who) {
    std::vector<std::string> ids;
    v1::GetCaseRequest get;
    get.set_case_id(id);
    v1::GetCaseResponse got;
    const grpc::Status status = Call(&v1::CaseService::Stub::GetCase, stub(), who, get, &got);
    EXPECT_TRUE(status.ok()) << status.error_message();
    for (const auto& note : got.case_().notes()) ids.push_back(note.note_id());
    return ids;
  };
  EXPECT_EQ(notes_seen(Who{}), (std::vector<std::string>{plain, part2})) << "the assigned case manager";
  EXPECT_EQ(notes_seen(kSupervisor), (std::vector<std::string>{plain, part2})) << "the team's supervisor";
  EXPECT_EQ(notes_seen(nurse), (std::vector<std::string>{plain})) << "care team without consent";
  v1::ListCaseHistoryRequest history;
  history.set_case_id(id);
  v1::ListCaseHistoryResponse events;
  ASSERT_TRUE(Call(&v1::CaseService::Stub::ListCaseHistory, stub(), nurse, history, &events).ok());
  int note_events = 0;
  for (const auto& e : events.events()) note_events += e.event_type() == "clinical.case.v1.NoteAdded";
  EXPECT_EQ(note_events, 1) << "the history withholds the same records";
  for (const auto& record :
       AccessRecordsOnce(service_.access_topic(), 2, [](const audit::v1::AccessRecord& record) {
         return record.actor_id() == "nurse-1" && record.outcome() == audit::v1::ACCESS_OUTCOME_ALLOWED;
       })) {
    EXPECT_TRUE(record.masked()) << record.method() << ": the withheld records are recorded as masking";
    EXPECT_EQ(record.relationship(), "care_team");
  }

  // The note's author or the team's supervisor corrects it; the care team does not.
  v1::AmendNoteRequest amend;
  amend.set_case_id(id);
  amend.set_command_id("amend-nurse");
  amend.set_note_id(plain);
  amend.set_text("progress, with daughter");
  amend.set_reason("who was present");
  v1::AmendNoteResponse amended;
  EXPECT_EQ(Call(&v1::CaseService::Stub::AmendNote, stub(), nurse, amend, &amended).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  amend.set_command_id("amend-sup");
  ASSERT_TRUE(Call(&v1::CaseService::Stub::AmendNote, stub(), kSupervisor, amend, &amended).ok());

  // A consent for substance-use records naming the nurse's membership: shown; revoked: gone
  // on the next read.
  v1::RecordConsentRequest consent;
  consent.set_case_id(id);
  consent.set_command_id("consent-sud");
  consent.add_member_ids(added.member_id());
  consent.add_categories(v1::INFORMATION_CATEGORY_SUBSTANCE_USE);
  consent.add_purposes(v1::CONSENT_PURPOSE_TREATMENT);
  consent.set_source(v1::CONSENT_SOURCE_SIGNED_FORM);
  v1::RecordConsentResponse consented;
  ASSERT_TRUE(Call(&v1::CaseService::Stub::RecordConsent, stub(), Who{}, consent, &consented).ok());
  EXPECT_EQ(notes_seen(nurse), (std::vector<std::string>{plain, part2}));
  v1::RevokeConsentRequest revoke;
  revoke.set_case_id(id);
  revoke.set_command_id("revoke-sud");
  revoke.set_consent_id(consented.consent_id());
  revoke.set_reason("patient withdrew");
  v1::RevokeConsentResponse revoked;
  ASSERT_TRUE(Call(&v1::CaseService::Stub::RevokeConsent, stub(), Who{}, revoke, &revoked).ok());
  EXPECT_EQ(notes_seen(nurse), (std::vector<std::string>{plain}));

  // Removing the nurse from the care team, entered late: not in the future, not before the
  // case's latest event; then the nurse has no access at all.
  const v1::Case state = GetCase(stub(), id);
  v1::RemoveCareTeamMemberRequest remove;
  remove.set_case_id(id);
  remove.set_command_id("remove-nurse");
  remove.set_member_id(added.member_id());
  remove.set_reason("discharged from home nursing");
  *remove.mutable_occurred_at() = google::protobuf::util::TimeUtil::SecondsToTimestamp(
      absl::ToUnixSeconds(absl::Now() + absl::Hours(1)));
  v1::RemoveCareTeamMemberResponse removed;
  const grpc::Status future = Call(&v1::CaseService::Stub::RemoveCareTeamMember, stub(), Who{}, remove, &removed);
  ASSERT_EQ(future.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(future), (std::vector<std::string>{"occurred_at"}));
  *remove.mutable_occurred_at() =
      google::protobuf::util::TimeUtil::SecondsToTimestamp(state.updated_at().seconds() - 60);
  const grpc::Status early = Call(&v1::CaseService::Stub::RemoveCareTeamMember, stub(), Who{}, remove, &removed);
  ASSERT_EQ(early.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(early), (std::vector<std::string>{"occurred_at"}));
  *remove.mutable_occurred_at() = state.updated_at();
  ASSERT_TRUE(Call(&v1::CaseService::Stub::RemoveCareTeamMember, stub(), Who{}, remove, &removed).ok());
  v1::ListCaseHistoryResponse after;
  ASSERT_TRUE(Call(&v1::CaseService::Stub::ListCaseHistory, stub(), Who{}, history, &after).ok());
  EXPECT_EQ(after.events(after.events_size() - 1).occurred_at().seconds(), state.updated_at().seconds())
      << "the envelope says when it took effect";
  v1::GetCaseRequest get;
  get.set_case_id(id);
  v1::GetCaseResponse got;
  EXPECT_EQ(Call(&v1::CaseService::Stub::GetCase, stub(), nurse, get, &got).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST(CaseServiceRestartTest, KilledAndRestartedServiceKeepsEveryAcknowledgedChange) {
  CaseServiceProcess service(UniqueName("clinical.case.restart"),
                             UniqueName("case-service.restart"));
  ASSERT_NO_FATAL_FAILURE(service.Start());
  ASSERT_NO_FATAL_FAILURE(SetUpOrganisation(service.stub()));
  std::map<std::string, int64_t> acknowledged;  // case id -> version
  for (int c = 0; c < 5; ++c) {
    v1::OpenCaseResponse opened;
    opened.set_case_id(OpenAssigned(service.stub(), absl::StrCat("open-", c)));
    opened.set_version(2);
    acknowledged[opened.case_id()] = opened.version();
    for (int n = 0; n <= c; ++n) {
      v1::AddNoteRequest note;
      note.set_case_id(opened.case_id());
      note.set_command_id(absl::StrCat("note-", n));
      note.set_kind(v1::NOTE_KIND_PROGRESS);
      note.set_text(absl::StrCat("progress ", n));
      v1::AddNoteResponse noted;
      ASSERT_TRUE(Call(&v1::CaseService::Stub::AddNote, service.stub(), Who{}, note, &noted).ok());
      acknowledged[opened.case_id()] = noted.version();
    }
  }
  ASSERT_NO_FATAL_FAILURE(service.Kill());
  ASSERT_NO_FATAL_FAILURE(service.Start());

  for (const auto& [id, version] : acknowledged) {
    const v1::Case state = GetCase(service.stub(), id);
    EXPECT_EQ(state.version(), version) << id;
    EXPECT_EQ(state.notes_size(), version - 2) << id;
    EXPECT_EQ(state.patient().mrn(), "MRN-778812");
  }
  const std::string first = acknowledged.begin()->first;
  // A retry of an acknowledged command is answered from the log, not applied again ...
  v1::AddNoteRequest retry;
  retry.set_case_id(first);
  retry.set_command_id("note-0");
  retry.set_kind(v1::NOTE_KIND_PROGRESS);
  retry.set_text("progress 0");
  v1::AddNoteResponse retried;
  ASSERT_TRUE(Call(&v1::CaseService::Stub::AddNote, service.stub(), Who{}, retry, &retried).ok());
  EXPECT_EQ(retried.note_id(), "note-1");
  EXPECT_LT(retried.version(), acknowledged[first] + 1);
  // ... and new commands continue the versions.
  retry.set_command_id("after-restart");
  retry.set_expected_version(acknowledged[first]);
  ASSERT_TRUE(Call(&v1::CaseService::Stub::AddNote, service.stub(), Who{}, retry, &retried).ok());
  EXPECT_EQ(retried.version(), acknowledged[first] + 1);
  // The organisation was replayed too: sup-1 still supervises the case's team.
  EXPECT_EQ(GetCase(service.stub(), first, kSupervisor).version(), acknowledged[first] + 1);
  ASSERT_NO_FATAL_FAILURE(service.Stop());
  bool replayed_line = false;
  for (const std::string& line : service.Lines()) {
    replayed_line |= line.find("\"msg\":\"replayed\"") != std::string::npos;
    EXPECT_EQ(line.find("MRN-778812"), std::string::npos) << "PHI in a log line: " << line;
    EXPECT_EQ(line.find("Rosa"), std::string::npos) << "PHI in a log line: " << line;
  }
  EXPECT_TRUE(replayed_line);
}

}  // namespace
}  // namespace clinical::case_service

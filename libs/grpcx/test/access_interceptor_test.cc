// The access interceptor in a real gRPC server on loopback, with a recorder that stands in
// for Kafka: one record per recorded call with the caller's facts and the ids the method's
// AccessPolicy names; no record for writes; and fail closed — when the record cannot be
// written, the client gets UNAVAILABLE and none of the data.
#include <mutex>
#include <set>
#include <sstream>

#include "absl/synchronization/notification.h"
#include "clinical/access/policy.h"
#include "clinical/access/recorder.h"
#include "clinical/access/snapshot.h"
#include "clinical/case/v1/case_service.grpc.pb.h"
#include "clinical/grpcx/service_host.h"
#include "clinical/grpcx/status.h"
#include "clinical/notification/v1/notification_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "secure_test_server.h"

namespace clinical::grpcx {
namespace {

namespace casev1 = case_::v1;
namespace notificationv1 = notification::v1;

class FakeRecorder : public access::Recorder {
 public:
  absl::Status Record(const audit::v1::AccessRecord& record) override {
    std::lock_guard lock(mutex_);
    attempts_.push_back(record);
    return fail_ ? absl::UnavailableError("broker down") : absl::OkStatus();
  }
  void PublishPolicy(const std::string& service) override {
    std::lock_guard lock(mutex_);
    policies_.insert(service);
  }
  void set_fail(bool fail) {
    std::lock_guard lock(mutex_);
    fail_ = fail;
  }
  std::vector<audit::v1::AccessRecord> attempts() {
    std::lock_guard lock(mutex_);
    return attempts_;
  }
  std::set<std::string> policies() {
    std::lock_guard lock(mutex_);
    return policies_;
  }

 private:
  std::mutex mutex_;
  bool fail_ = false;
  std::vector<audit::v1::AccessRecord> attempts_;
  std::set<std::string> policies_;
};

// A case service whose handlers authorize first, as every real handler does, then return
// patient data. ListCaseHistory forgets to authorize (a wiring mistake the interceptor
// must catch).
class FakeCaseService : public casev1::CaseService::Service {
 public:
  const CallerSource* callers = nullptr;
  grpc::Status GetCase(grpc::ServerContext* context, const casev1::GetCaseRequest* request,
                       casev1::GetCaseResponse* response) override {
    auto caller = callers->Authorize(*context, *request);
    if (!caller.ok()) return ToGrpcStatus(caller.status(), *context);
    response->mutable_case_()->set_case_id("resolved-" + request->case_id());
    response->mutable_case_()->mutable_patient()->set_family_name("Doe");
    response->mutable_case_()->mutable_patient()->set_birth_date("1950-02-03");
    response->mutable_case_()->mutable_referral()->set_reason("referral reason");
    response->mutable_case_()->set_priority(2);
    return grpc::Status::OK;
  }
  grpc::Status ListCaseHistory(grpc::ServerContext*, const casev1::ListCaseHistoryRequest*,
                               casev1::ListCaseHistoryResponse* response) override {
    response->add_events()->set_aggregate_id("leaked");
    return grpc::Status::OK;
  }
  grpc::Status OpenCase(grpc::ServerContext* context, const casev1::OpenCaseRequest* request,
                        casev1::OpenCaseResponse* response) override {
    auto caller = callers->Authorize(*context, *request);
    if (!caller.ok()) return ToGrpcStatus(caller.status(), *context);
    response->set_case_id("new-case");
    return grpc::Status::OK;
  }
  grpc::Status AddNote(grpc::ServerContext* context, const casev1::AddNoteRequest* request,
                       casev1::AddNoteResponse*) override {
    auto caller = callers->Authorize(*context, *request);
    if (!caller.ok()) return ToGrpcStatus(caller.status(), *context);
    return grpc::Status::OK;
  }
};

class FakeNotificationService : public notificationv1::NotificationService::Service {
 public:
  const CallerSource* callers = nullptr;
  grpc::Status SubscribeInbox(grpc::ServerContext* context, const notificationv1::SubscribeInboxRequest* request,
                              grpc::ServerWriter<notificationv1::SubscribeInboxResponse>* writer) override {
    auto caller = callers->Authorize(*context, *request);
    if (!caller.ok()) return ToGrpcStatus(caller.status(), *context);
    for (int i = 0; i < 3; ++i) {
      notificationv1::SubscribeInboxResponse message;
      message.mutable_notification()->set_notification_id("n-" + std::to_string(i));
      message.mutable_notification()->set_case_id("c-" + std::to_string(i));
      message.mutable_notification()->set_title("visit for Doe");
      if (!writer->Write(message)) return grpc::Status::OK;
    }
    return grpc::Status::OK;
  }
};

class AccessInterceptorTest : public ::testing::Test {
 protected:
  void StartHost(access::Recorder* recorder) {
    host_ = std::make_unique<ServiceHost>("test", testing::SecureServerOptions(pki_), logger_);
    host_->SetAccessRecorder(recorder);
    host_->SetAuthenticator(testing::MakeAuthenticator(issuer_, recorder, logger_, host_->metrics()));
    for (const char* id : {"c-1", "mine"}) relations_.Related(id);
    access::CaseRelations stranger;
    stranger.where = access::CaseRelations::Where::kInTenant;
    relations_.Set("refused", stranger);
    relations_.Set("no-role", stranger);
    access::CaseRelations elsewhere;
    elsewhere.where = access::CaseRelations::Where::kOtherTenant;
    relations_.Set("other-tenant", elsewhere);
    access::CaseRelations glass = stranger;
    glass.emergency_grant_id = "emergency-1";
    relations_.Set("glass", glass);
    host_->SetRelations(&relations_);
    cases_.callers = notifications_.callers = &host_->callers();
    host_->AddService(&cases_);
    host_->AddService(&notifications_);
    ASSERT_TRUE(host_->Start().ok());
    auto channel = testing::Channel(host_->address(), pki_.Workload("test-client"));
    case_stub_ = casev1::CaseService::NewStub(channel);
    notification_stub_ = notificationv1::NotificationService::NewStub(channel);
  }
  void TearDown() override {
    if (host_ != nullptr) host_->Shutdown();
  }

  void SetCaller(grpc::ClientContext& context, const std::string& role = "case_manager") {
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    context.AddMetadata("authorization", "Bearer " + issuer_.Token("cm-7", role, "tenant-a"));
    context.AddMetadata("x-clinical-purpose", "TREAT");
    context.AddMetadata("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  }

  grpc::Status GetCase(const std::string& case_id, casev1::GetCaseResponse* response,
                       grpc::ClientContext* context = nullptr, const std::string& role = "case_manager") {
    grpc::ClientContext own;
    grpc::ClientContext& ctx = context != nullptr ? *context : own;
    SetCaller(ctx, role);
    casev1::GetCaseRequest request;
    request.set_case_id(case_id);
    return case_stub_->GetCase(&ctx, request, response);
  }

  // Reads a whole inbox stream (at most 10 messages); returns its status and counts the
  // messages and those carrying a notification.
  grpc::Status ReadInboxStream(int* messages, int* with_data) {
    grpc::ClientContext context;
    SetCaller(context);
    notificationv1::SubscribeInboxRequest request;
    request.set_recipient_id("cm-7");
    auto reader = notification_stub_->SubscribeInbox(&context, request);
    notificationv1::SubscribeInboxResponse message;
    *messages = *with_data = 0;
    while (*messages < 10 && reader->Read(&message)) {
      ++*messages;
      if (message.has_notification()) ++*with_data;
    }
    return reader->Finish();
  }

  std::ostringstream log_;
  logging::Logger logger_{"test", log_};
  testing::TestPki pki_;
  testing::TestIssuer issuer_;
  testing::FakeRelations relations_;
  FakeCaseService cases_;
  FakeNotificationService notifications_;
  std::unique_ptr<ServiceHost> host_;
  std::unique_ptr<casev1::CaseService::Stub> case_stub_;
  std::unique_ptr<notificationv1::NotificationService::Stub> notification_stub_;
};

TEST_F(AccessInterceptorTest, ARecordedReadYieldsOneRecordWithTheCallersFactsAndIds) {
  FakeRecorder recorder;
  StartHost(&recorder);
  casev1::GetCaseResponse response;
  ASSERT_TRUE(GetCase("c-1", &response).ok());
  EXPECT_EQ(response.case_().patient().family_name(), "Doe");

  const auto records = recorder.attempts();
  ASSERT_EQ(records.size(), 1u);
  const auto& record = records[0];
  EXPECT_EQ(record.record_id().size(), 36u);
  EXPECT_EQ(record.actor_id(), "cm-7");
  EXPECT_EQ(record.actor_role(), "case_manager");
  EXPECT_EQ(record.tenant_id(), "tenant-a");
  EXPECT_EQ(record.peer_identity(), testing::SpiffeId("test-client"));
  EXPECT_TRUE(record.denial_reason().empty());
  EXPECT_EQ(record.purpose_of_use(), "TREAT");
  EXPECT_EQ(record.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(record.method(), "/clinical.case.v1.CaseService/GetCase");
  EXPECT_EQ(record.service(), "clinical.case.v1.CaseService");
  EXPECT_EQ(record.resource_type(), "case");
  // request.case_id, then response.case.case_id (GetCase's policy).
  ASSERT_EQ(record.case_ids_size(), 2);
  EXPECT_EQ(record.case_ids(0), "c-1");
  EXPECT_EQ(record.case_ids(1), "resolved-c-1");
  ASSERT_EQ(record.resource_ids_size(), 1);
  EXPECT_EQ(record.resource_ids(0), "c-1");
  EXPECT_NE(record.source_address().find("127.0.0.1"), std::string::npos);
  EXPECT_EQ(record.outcome(), audit::v1::ACCESS_OUTCOME_ALLOWED);
  EXPECT_EQ(record.status_code(), 0);
  EXPECT_GT(record.occurred_at().seconds(), 0);
  EXPECT_EQ(record.relationship(), "assigned");
  EXPECT_TRUE(record.emergency_grant_id().empty());
  EXPECT_FALSE(record.masked());
  EXPECT_EQ(record.policy_version(), access::PolicyVersionOf("clinical.case.v1.CaseService"));
  EXPECT_EQ(record.policy_version().size(), 16u);
  EXPECT_EQ(recorder.policies(), std::set<std::string>{"clinical.case.v1.CaseService"});

  // A second read is a second record with a new id.
  ASSERT_TRUE(GetCase("c-1", &response).ok());
  const auto two = recorder.attempts();
  ASSERT_EQ(two.size(), 2u);
  EXPECT_NE(two[0].record_id(), two[1].record_id());
}

TEST_F(AccessInterceptorTest, WritesAreNotRecorded) {
  FakeRecorder recorder;
  recorder.set_fail(true);  // would fail the call if it were consulted
  StartHost(&recorder);
  grpc::ClientContext context;
  SetCaller(context);
  casev1::OpenCaseResponse response;
  ASSERT_TRUE(case_stub_->OpenCase(&context, casev1::OpenCaseRequest(), &response).ok());
  EXPECT_EQ(response.case_id(), "new-case");
  EXPECT_TRUE(recorder.attempts().empty());
}

TEST_F(AccessInterceptorTest, FailsClosedWhenTheRecordCannotBeWritten) {
  FakeRecorder recorder;
  recorder.set_fail(true);
  StartHost(&recorder);
  casev1::GetCaseResponse response;
  const grpc::Status status = GetCase("c-1", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(response.has_case_()) << "no patient data leaves without a record";
  EXPECT_EQ(response.ByteSizeLong(), 0u);
  EXPECT_EQ(recorder.attempts().size(), 1u);

  // Once records are written again, so is the data.
  recorder.set_fail(false);
  ASSERT_TRUE(GetCase("c-1", &response).ok());
  EXPECT_EQ(response.case_().patient().family_name(), "Doe");
}

TEST_F(AccessInterceptorTest, WithoutARecorderRecordedReadsFailClosed) {
  StartHost(nullptr);
  casev1::GetCaseResponse response;
  EXPECT_EQ(GetCase("c-1", &response).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(response.has_case_());
}

TEST_F(AccessInterceptorTest, RefusalsAreDeniedAndTheMarkerNeverReachesTheClient) {
  FakeRecorder recorder;
  StartHost(&recorder);
  casev1::GetCaseResponse response;
  grpc::ClientContext context;
  EXPECT_EQ(GetCase("other-tenant", &response, &context).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(context.GetServerTrailingMetadata().count(access::kDeniedTrailer), 0u);
  EXPECT_EQ(GetCase("no-role", &response).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(GetCase("never-opened", &response).error_code(), grpc::StatusCode::NOT_FOUND);

  const auto records = recorder.attempts();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].outcome(), audit::v1::ACCESS_OUTCOME_DENIED);
  EXPECT_EQ(records[0].status_code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_EQ(records[0].denial_reason(), "other_tenant");
  ASSERT_EQ(records[0].case_ids_size(), 1);
  EXPECT_EQ(records[0].case_ids(0), "other-tenant");
  EXPECT_EQ(records[1].outcome(), audit::v1::ACCESS_OUTCOME_DENIED);
  EXPECT_EQ(records[1].status_code(), static_cast<int>(grpc::StatusCode::PERMISSION_DENIED));
  EXPECT_EQ(records[1].denial_reason(), "no_relationship");
  EXPECT_TRUE(records[1].relationship().empty());
  // A case that does not exist is a failed read, not a refusal.
  EXPECT_EQ(records[2].outcome(), audit::v1::ACCESS_OUTCOME_FAILED);
  EXPECT_EQ(records[2].denial_reason(), "case_not_found");
}

// Minimum necessary: the rule that allowed the scheduler names what it may see; the rest of
// the response never leaves the server, and the record says it was masked.
TEST_F(AccessInterceptorTest, AMaskedRuleSendsOnlyItsVisiblePaths) {
  FakeRecorder recorder;
  StartHost(&recorder);
  casev1::GetCaseResponse response;
  ASSERT_TRUE(GetCase("c-1", &response, nullptr, "scheduler").ok());
  EXPECT_EQ(response.case_().case_id(), "resolved-c-1");
  EXPECT_EQ(response.case_().patient().family_name(), "Doe");
  EXPECT_TRUE(response.case_().patient().birth_date().empty());
  EXPECT_FALSE(response.case_().has_referral());
  EXPECT_EQ(response.case_().priority(), 0);
  const auto records = recorder.attempts();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_TRUE(records[0].masked());
  EXPECT_EQ(records[0].relationship(), "tenant");
  // The case manager of the same case sees all of it.
  ASSERT_TRUE(GetCase("c-1", &response).ok());
  EXPECT_EQ(response.case_().patient().birth_date(), "1950-02-03");
  EXPECT_FALSE(recorder.attempts().back().masked());
}

// Break the glass: a grant lets the caller in without a relationship, and every call under
// it is recorded as emergency access — writes included.
TEST_F(AccessInterceptorTest, CallsUnderAnEmergencyGrantAreRecordedAsSuch) {
  FakeRecorder recorder;
  StartHost(&recorder);
  casev1::GetCaseResponse response;
  ASSERT_TRUE(GetCase("glass", &response).ok());
  grpc::ClientContext context;
  SetCaller(context);
  casev1::AddNoteRequest note;
  note.set_case_id("glass");
  casev1::AddNoteResponse added;
  ASSERT_TRUE(case_stub_->AddNote(&context, note, &added).ok());
  const auto records = recorder.attempts();
  ASSERT_EQ(records.size(), 2u);
  for (const auto& record : records) {
    EXPECT_EQ(record.relationship(), "emergency") << record.method();
    EXPECT_EQ(record.emergency_grant_id(), "emergency-1") << record.method();
    EXPECT_EQ(record.outcome(), audit::v1::ACCESS_OUTCOME_ALLOWED) << record.method();
  }
  EXPECT_EQ(records[1].method(), "/clinical.case.v1.CaseService/AddNote");
}

// A handler that answers without asking Authorize serves nothing.
TEST_F(AccessInterceptorTest, ACallThatWasNeverAuthorizedSendsNoData) {
  FakeRecorder recorder;
  StartHost(&recorder);
  grpc::ClientContext context;
  SetCaller(context);
  casev1::ListCaseHistoryRequest request;
  request.set_case_id("c-1");
  casev1::ListCaseHistoryResponse response;
  const grpc::Status status = case_stub_->ListCaseHistory(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(response.events_size(), 0);
  EXPECT_NE(log_.str().find("without an authorization decision"), std::string::npos);
}

// A refused write is an access attempt too: recorded with the case it named; an allowed
// write is an event already and gets no record.
TEST_F(AccessInterceptorTest, ARefusedWriteIsRecordedAndAnAllowedOneIsNot) {
  FakeRecorder recorder;
  StartHost(&recorder);
  for (const char* case_id : {"mine", "refused"}) {
    grpc::ClientContext context;
    SetCaller(context);
    casev1::AddNoteRequest request;
    request.set_case_id(case_id);
    casev1::AddNoteResponse response;
    case_stub_->AddNote(&context, request, &response);
  }
  const auto records = recorder.attempts();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].method(), "/clinical.case.v1.CaseService/AddNote");
  EXPECT_EQ(records[0].outcome(), audit::v1::ACCESS_OUTCOME_DENIED);
  EXPECT_EQ(records[0].actor_id(), "cm-7");
  EXPECT_EQ(records[0].tenant_id(), "tenant-a");
  EXPECT_EQ(records[0].peer_identity(), testing::SpiffeId("test-client"));
  ASSERT_EQ(records[0].case_ids_size(), 1);
  EXPECT_EQ(records[0].case_ids(0), "refused");
  EXPECT_EQ(records[0].denial_reason(), "no_relationship");
}

TEST_F(AccessInterceptorTest, AServerStreamIsOneRecordAtItsFirstMessage) {
  FakeRecorder recorder;
  StartHost(&recorder);
  int received = 0, with_data = 0;
  ASSERT_TRUE(ReadInboxStream(&received, &with_data).ok());
  EXPECT_EQ(received, 3);
  EXPECT_EQ(with_data, 3);
  const auto records = recorder.attempts();
  ASSERT_EQ(records.size(), 1u) << "one record per stream, not per message";
  EXPECT_EQ(records[0].outcome(), audit::v1::ACCESS_OUTCOME_ALLOWED);
  EXPECT_EQ(records[0].resource_type(), "inbox");
  ASSERT_EQ(records[0].case_ids_size(), 1);
  EXPECT_EQ(records[0].case_ids(0), "c-0");  // the first message's case
}

TEST_F(AccessInterceptorTest, AStreamWhoseRecordFailsSendsNoData) {
  FakeRecorder recorder;
  recorder.set_fail(true);
  StartHost(&recorder);
  int received = 0, with_data = 0;
  const grpc::Status status = ReadInboxStream(&received, &with_data);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(with_data, 0) << "no notification leaves without a record";
  EXPECT_EQ(recorder.attempts().size(), 1u);
}

}  // namespace
}  // namespace clinical::grpcx

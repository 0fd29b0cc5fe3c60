// The Authenticator in a real mutual-TLS server on loopback, with the platform's token
// verifier against a stand-in JWKS endpoint and a recorder standing in for Kafka: who a
// handler sees comes only from a verified token (or a service certificate), every refusal
// is UNAUTHENTICATED with an access record saying why, and nothing a client writes into
// headers changes who it is.
#include <mutex>
#include <sstream>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "clinical/access/recorder.h"
#include "clinical/case/v1/case_service.grpc.pb.h"
#include "clinical/grpcx/caller.h"
#include "clinical/grpcx/service_host.h"
#include "clinical/grpcx/status.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "secure_test_server.h"

namespace clinical::grpcx {
namespace {

namespace casev1 = case_::v1;
using identity::test_support::JwksOf;
using identity::test_support::MakeEcKey;
using identity::test_support::MakeRsaKey;
using identity::test_support::SignWithLibjwt;
using identity::test_support::Unsigned;
using nlohmann::json;

class FakeRecorder : public access::Recorder {
 public:
  absl::Status Record(const audit::v1::AccessRecord& record) override {
    std::lock_guard lock(mutex_);
    records_.push_back(record);
    return absl::OkStatus();
  }
  std::vector<audit::v1::AccessRecord> records() {
    std::lock_guard lock(mutex_);
    return records_;
  }

 private:
  std::mutex mutex_;
  std::vector<audit::v1::AccessRecord> records_;
};

// Answers who the caller is, as a handler sees it: "user|role|tenant|peer" (after
// authorizing the request, as every handler does).
class WhoAmI : public casev1::CaseService::Service {
 public:
  const CallerSource* callers = nullptr;
  grpc::Status GetCase(grpc::ServerContext* context, const casev1::GetCaseRequest* request,
                       casev1::GetCaseResponse* response) override {
    auto caller = callers->Authorize(*context, *request);
    if (!caller.ok()) return ToGrpcStatus(caller.status(), *context);
    response->mutable_case_()->set_case_id(absl::StrCat(caller->actor.user_id(), "|", RoleName(caller->actor.role()),
                                                        "|", caller->tenant_id, "|", caller->peer_identity));
    return grpc::Status::OK;
  }
};

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_ = std::make_unique<ServiceHost>("test", testing::SecureServerOptions(pki_), logger_);
    host_->SetAccessRecorder(&recorder_);
    // Keys may be fetched again at once (rotation without waiting out the refresh interval).
    identity::KeySetOptions keys;
    keys.min_refresh_interval = absl::ZeroDuration();
    authenticator_ = testing::MakeAuthenticator(issuer_, &recorder_, logger_, host_->metrics(), keys);
    host_->SetAuthenticator(authenticator_);
    relations_.Related("c-1");
    host_->SetRelations(&relations_);
    service_.callers = &host_->callers();
    host_->AddService(&service_);
    ASSERT_TRUE(host_->Start().ok());
    host_->SetServing(true);
  }
  void TearDown() override { host_->Shutdown(); }

  // GetCase with `token` (none when empty) over a connection presenting `workload`'s
  // certificate; fills *who with the handler's answer.
  grpc::Status Call(const std::string& token, std::string* who = nullptr, const std::string& workload = "test-client",
                    const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    auto stub = casev1::CaseService::NewStub(testing::Channel(host_->address(), pki_.Workload(workload)));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    for (const auto& [key, value] : headers) context.AddMetadata(key, value);
    context.AddMetadata("traceparent", absl::StrCat("00-", trace_id_, "-00f067aa0ba902b7-01"));
    casev1::GetCaseRequest request;
    request.set_case_id("c-1");
    casev1::GetCaseResponse response;
    const grpc::Status status = stub->GetCase(&context, request, &response);
    if (who != nullptr) *who = response.case_().case_id();
    return status;
  }

  // The one record of the last call refused before any handler ran.
  audit::v1::AccessRecord LastRecord() {
    const auto records = recorder_.records();
    EXPECT_FALSE(records.empty());
    return records.empty() ? audit::v1::AccessRecord() : records.back();
  }

  std::ostringstream log_;
  logging::Logger logger_{"test", log_};
  testing::TestPki pki_;
  testing::TestIssuer issuer_;
  FakeRecorder recorder_;
  testing::FakeRelations relations_;
  WhoAmI service_;
  std::shared_ptr<Authenticator> authenticator_;
  std::unique_ptr<ServiceHost> host_;
  const std::string trace_id_ = "4bf92f3577b34da6a3ce929d0e0e4736";
};

TEST_F(AuthenticatorTest, TheCallerIsWhoTheVerifiedTokenSays) {
  std::string who;
  // Self-declared identity headers are ignored: they neither replace nor add anything.
  ASSERT_TRUE(Call(issuer_.Token("cm-7", "case_manager", "tenant-a"), &who, "test-client",
                   {{"x-clinical-user", "mallory"}, {"x-clinical-role", "auditor"},
                    {"x-clinical-tenant", "tenant-b"}})
                  .ok());
  EXPECT_EQ(who, absl::StrCat("cm-7|case_manager|tenant-a|", testing::SpiffeId("test-client")));
  // The read's access record names the verified caller, not the headers.
  const audit::v1::AccessRecord record = LastRecord();
  EXPECT_EQ(record.actor_id(), "cm-7");
  EXPECT_EQ(record.tenant_id(), "tenant-a");
  EXPECT_EQ(record.outcome(), audit::v1::ACCESS_OUTCOME_ALLOWED);
}

// A gateway carries many people over one connection: each call is its own token's person,
// never a previous call's (gRPC's AuthContext is per connection, so nothing is kept there).
TEST_F(AuthenticatorTest, CallsOfDifferentPeopleOnOneConnectionStayApart) {
  auto stub = casev1::CaseService::NewStub(testing::Channel(host_->address(), pki_.Workload("test-client")));
  const std::vector<std::tuple<std::string, std::string, std::string>> people = {
      {"cm-1", "case_manager", "tenant-a"}, {"sched-2", "scheduler", "tenant-b"}, {"cm-1", "case_manager", "tenant-a"},
      {"sup-3", "supervisor", "tenant-a"}};
  casev1::GetCaseRequest request;
  request.set_case_id("c-1");
  for (const auto& [user, role, tenant] : people) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + issuer_.Token(user, role, tenant));
    casev1::GetCaseResponse response;
    ASSERT_TRUE(stub->GetCase(&context, request, &response).ok()) << user;
    EXPECT_EQ(response.case_().case_id(),
              absl::StrCat(user, "|", role, "|", tenant, "|", testing::SpiffeId("test-client")));
  }
  // And a call without a token after them is refused, not taken for the last person.
  grpc::ClientContext anonymous;
  casev1::GetCaseResponse response;
  EXPECT_EQ(stub->GetCase(&anonymous, request, &response).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AuthenticatorTest, EveryBadTokenIsRefusedWithItsReasonRecorded) {
  const json good = issuer_.Claims("cm-7", "case_manager", "tenant-a");
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  const auto other_key = MakeRsaKey("test-key-1");  // the issuer's kid, another key
  const auto unknown_key = MakeRsaKey("never-published");
  json expired = good, early = good, audience = good, issuer = good, service = good, no_tenant = good;
  expired["exp"] = now - 600;
  early["nbf"] = now + 600;
  audience["aud"] = "another-api";
  issuer["iss"] = "https://evil.example/realms/clinical";
  service["roles"] = json::array({"service"});
  no_tenant.erase("tenant");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "token_missing"},
      {"not-a-jwt", "token_malformed"},
      {issuer_.Sign(expired), "token_expired"},
      {issuer_.Sign(early), "token_not_yet_valid"},
      {issuer_.Sign(audience), "wrong_audience"},
      {issuer_.Sign(issuer), "wrong_issuer"},
      {SignWithLibjwt(good, JWT_ALG_RS256, other_key.private_pem, {{"kid", "test-key-1"}}), "bad_signature"},
      {Unsigned(json{{"alg", "none"}, {"typ", "JWT"}, {"kid", "test-key-1"}}, good), "algorithm_refused"},
      {SignWithLibjwt(good, JWT_ALG_HS256, issuer_.key().public_pem, {{"kid", "test-key-1"}}), "algorithm_refused"},
      {SignWithLibjwt(good, JWT_ALG_RS256, unknown_key.private_pem, {{"kid", "never-published"}}), "unknown_key"},
      {issuer_.Sign(service), "service_role_claimed"},
      {issuer_.Sign(no_tenant), "missing_claim"},
  };
  for (const auto& [token, reason] : cases) {
    std::string who;
    const grpc::Status status = Call(token, &who);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << reason;
    EXPECT_TRUE(who.empty()) << reason << ": a handler ran";
    EXPECT_EQ(status.error_message().find("cm-7"), std::string::npos) << "messages never echo the token";
    const audit::v1::AccessRecord record = LastRecord();
    EXPECT_EQ(record.denial_reason(), reason);
    EXPECT_EQ(record.outcome(), audit::v1::ACCESS_OUTCOME_DENIED) << reason;
    EXPECT_EQ(record.status_code(), static_cast<int>(grpc::StatusCode::UNAUTHENTICATED)) << reason;
    EXPECT_EQ(record.method(), "/clinical.case.v1.CaseService/GetCase") << reason;
    EXPECT_EQ(record.resource_type(), "case") << reason;
    EXPECT_EQ(record.peer_identity(), testing::SpiffeId("test-client")) << reason;
    EXPECT_EQ(record.trace_id(), trace_id_) << reason;
    EXPECT_TRUE(record.actor_id().empty()) << reason << ": nothing unverified is recorded as the actor";
  }
  EXPECT_EQ(recorder_.records().size(), cases.size()) << "one record per refusal";
  // A token that could be read keeps what it claimed, marked unverified.
  Call(issuer_.Sign(expired));
  EXPECT_EQ(LastRecord().claimed_subject(), "cm-7");
}

TEST_F(AuthenticatorTest, AnEs256TokenAndARotatedKeyAreAcceptedWithoutARestart) {
  // The issuer rotates: a new EC key appears in its JWKS after the server started and
  // already fetched the old set. A token signed with it makes the key set refresh.
  std::string who;
  ASSERT_TRUE(Call(issuer_.Token("cm-7", "case_manager", "tenant-a"), &who).ok());
  const auto rotated = MakeEcKey("rotated-es256");
  issuer_.endpoint().Serve(JwksOf({issuer_.key().jwk, rotated.jwk}));
  const std::string token = SignWithLibjwt(issuer_.Claims("cm-8", "supervisor", "tenant-a"), JWT_ALG_ES256,
                                           rotated.private_pem, {{"kid", "rotated-es256"}});
  ASSERT_TRUE(Call(token, &who).ok());
  EXPECT_EQ(who, absl::StrCat("cm-8|supervisor|tenant-a|", testing::SpiffeId("test-client")));
}

TEST_F(AuthenticatorTest, SeveralRolesNeedASelectionAmongThemAndNothingElse) {
  json claims = issuer_.Claims("sup-1", "supervisor", "tenant-a");
  claims["roles"] = json::array({"supervisor", "case_manager"});
  const std::string token = issuer_.Sign(claims);
  std::string who;
  EXPECT_EQ(Call(token, &who).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(LastRecord().denial_reason(), "role_ambiguous");
  ASSERT_TRUE(Call(token, &who, "test-client", {{"x-clinical-acting-role", "case_manager"}}).ok());
  EXPECT_EQ(who, absl::StrCat("sup-1|case_manager|tenant-a|", testing::SpiffeId("test-client")));
  EXPECT_EQ(Call(token, &who, "test-client", {{"x-clinical-acting-role", "auditor"}}).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(LastRecord().denial_reason(), "role_not_granted");
}

// A role that no rule of the method names is refused before any handler runs, and the
// refusal names the verified caller and the reason.
TEST_F(AuthenticatorTest, ARoleNoRuleNamesIsRefusedBeforeTheHandler) {
  std::string who;
  const grpc::Status status = Call(issuer_.Token("aud-1", "auditor", "tenant-a"), &who);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(who.empty());
  const audit::v1::AccessRecord record = LastRecord();
  EXPECT_EQ(record.denial_reason(), "role_not_permitted");
  EXPECT_EQ(record.actor_id(), "aud-1");
  EXPECT_EQ(record.actor_role(), "auditor");
  EXPECT_EQ(record.tenant_id(), "tenant-a");
  EXPECT_EQ(record.outcome(), audit::v1::ACCESS_OUTCOME_DENIED);
  EXPECT_EQ(recorder_.records().size(), 1u);
}

// A service is its certificate: without a token it is ROLE_SERVICE in no tenant, and no
// method's policy names that role, so it is refused before any handler. A certificate that
// is not a platform service's needs a person's token; no header makes anyone a service or
// a person.
TEST_F(AuthenticatorTest, AServiceCertificateIsAServiceAndNeverAPerson) {
  std::string who;
  const grpc::Status as_service = Call("", &who, "views", {{"x-clinical-user", "cm-7"},
                                                           {"x-clinical-role", "case_manager"},
                                                           {"x-clinical-tenant", "tenant-a"}});
  EXPECT_EQ(as_service.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(who.empty());
  const audit::v1::AccessRecord record = LastRecord();
  EXPECT_EQ(record.actor_id(), testing::SpiffeId("views"));
  EXPECT_EQ(record.actor_role(), "service");
  EXPECT_TRUE(record.tenant_id().empty());
  EXPECT_EQ(record.outcome(), audit::v1::ACCESS_OUTCOME_DENIED);
  EXPECT_EQ(record.denial_reason(), "role_not_permitted");

  // A name outside the platform's services is just a client: it needs a token.
  EXPECT_EQ(Call("", &who, "gateway").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(LastRecord().denial_reason(), "token_missing");
  // With a person's token, a service certificate carries the person (a gateway's case).
  ASSERT_TRUE(Call(issuer_.Token("cm-7", "case_manager", "tenant-a"), &who, "views").ok());
  EXPECT_EQ(who, absl::StrCat("cm-7|case_manager|tenant-a|", testing::SpiffeId("views")));
}

TEST_F(AuthenticatorTest, HealthNeedsACertificateButNoToken) {
  auto health = grpc::health::v1::Health::NewStub(testing::Channel(host_->address(), pki_.Workload("test-client")));
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(health->Check(&context, grpc::health::v1::HealthCheckRequest(), &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_TRUE(recorder_.records().empty());
}

TEST_F(AuthenticatorTest, IssuerKeysThatCannotBeFetchedMakeCallsUnavailableNotUnauthenticated) {
  // A fresh server whose issuer never answered: there is nothing to verify against.
  testing::TestIssuer down;
  down.endpoint().Fail(absl::UnavailableError("issuer unreachable"));
  FakeRecorder recorder;
  ServiceHost host("test", testing::SecureServerOptions(pki_), logger_);
  host.SetAuthenticator(testing::MakeAuthenticator(down, &recorder, logger_, host.metrics()));
  WhoAmI service;
  service.callers = &host.callers();
  host.AddService(&service);
  ASSERT_TRUE(host.Start().ok());
  auto stub = casev1::CaseService::NewStub(testing::Channel(host.address(), pki_.Workload("test-client")));
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + down.Token("cm-7", "case_manager", "tenant-a"));
  casev1::GetCaseResponse response;
  EXPECT_EQ(stub->GetCase(&context, casev1::GetCaseRequest(), &response).error_code(), grpc::StatusCode::UNAVAILABLE);
  ASSERT_EQ(recorder.records().size(), 1u);
  EXPECT_EQ(recorder.records()[0].denial_reason(), "keys_unavailable");
  EXPECT_EQ(recorder.records()[0].outcome(), audit::v1::ACCESS_OUTCOME_FAILED);
  host.Shutdown();
}

}  // namespace
}  // namespace clinical::grpcx

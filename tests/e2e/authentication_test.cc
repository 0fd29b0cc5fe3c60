// Who may call, end to end (issue "Trust I"). The five services run as real processes over
// mutual TLS, verifying tokens of the platform's real identity provider (the Keycloak that
// the ctest fixture starts). The test walks every RPC of every service from their
// descriptors:
//
//   * with no token, and with tokens that are expired, not yet valid, for another audience,
//     from another issuer, badly signed, `alg: none`, or signed with an unknown key (the
//     forged ones are signed with a key the realm really publishes, so only the named flaw
//     is wrong): every call is UNAUTHENTICATED and leaves an access record DENIED with its
//     reason and the caller's certificate identity, and no event is written anywhere;
//   * with a valid token of tenant A against tenant B's case, appointment and calendar:
//     NOT_FOUND (nothing about B is revealed), recorded DENIED with A's verified user.
//
// And the transport: plaintext and foreign-CA clients never get in, a service certificate
// never acts as a person, a person's token never claims the service role; tokens of the
// realm verify with RS256 and ES256, and a key the realm starts publishing after the
// services started is accepted without a restart.
#include <future>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clinical/audit/v1/access.pb.h"
#include "clinical/audit/v1/audit_service.grpc.pb.h"
#include "clinical/audit/v1/replay_service.grpc.pb.h"
#include "clinical/case/v1/case_service.grpc.pb.h"
#include "clinical/identity/testing/test_tokens.h"
#include "clinical/notification/v1/notification_service.grpc.pb.h"
#include "clinical/scheduling/v1/scheduling_service.grpc.pb.h"
#include "clinical/testing/identity.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/service_process.h"
#include "clinical/testing/service_suite.h"
#include "clinical/testing/topics.h"
#include "clinical/testing/workflows.h"
#include "clinical/testing/wait.h"
#include "clinical/views/v1/views_service.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace clinical {
namespace {

namespace cv1 = case_::v1;
namespace sv1 = scheduling::v1;
using audit::v1::AccessRecord;
using nlohmann::json;
using testing::Person;
using testing::UniqueName;

constexpr char kTenantA[] = "tenant-authn-a";
constexpr char kTenantB[] = "tenant-authn-b";

std::string Base64Url(const std::string& bytes) { return identity::test_support::Base64UrlEncode(bytes); }

// One call, generically: `request` serialized to `method`, with `metadata`. Works for any
// method shape the way a refusal ends it (status only).
grpc::Status Call(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                  const google::protobuf::Message& request,
                  const std::vector<std::pair<std::string, std::string>>& metadata) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  for (const auto& [key, value] : metadata) context.AddMetadata(key, value);
  const std::string bytes = request.SerializeAsString();
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request_buffer, &response_buffer,
                 [&](grpc::Status status) { done.set_value(std::move(status)); });
  return done.get_future().get();
}

class AuthenticationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto started = testing::ServiceSuite::Start("authn");
    ASSERT_TRUE(started.ok()) << started.status();
    suite_ = started->release();
  }
  static void TearDownTestSuite() {
    delete suite_;
    suite_ = nullptr;
  }

  void SetUp() override { ASSERT_NE(suite_, nullptr) << "the services did not start"; }

  static std::shared_ptr<grpc::Channel> ChannelTo(const std::string& service) { return suite_->Channel(service); }

  // Access records on this suite's topic, by trace id.
  static std::map<std::string, std::vector<AccessRecord>> RecordsByTrace() {
    std::map<std::string, std::vector<AccessRecord>> by_trace;
    for (AccessRecord& record : suite_->AccessRecords()) by_trace[record.trace_id()].push_back(std::move(record));
    return by_trace;
  }

  // The ends of every topic a write could reach.
  static std::map<std::string, std::map<int32_t, int64_t>> EventTopicEnds() {
    std::map<std::string, std::map<int32_t, int64_t>> ends;
    const testing::SuiteTopics& t = suite_->topics();
    for (const std::string& topic : {t.case_events, t.organisation, t.scheduling, t.notification}) {
      ends[topic] = testing::EndOffsets(topic);
    }
    return ends;
  }

  // Claims of a well-formed token of the realm for `person`; tests break one thing.
  static json Claims(const Person& person) {
    const int64_t now = absl::ToUnixSeconds(absl::Now());
    return {{"iss", testing::Platform::Get().oidc_issuer},
            {"aud", "clinical-api"},
            {"exp", now + 600},
            {"iat", now},
            {"clinical_user_id", person.user},
            {"tenant", person.tenant},
            {"realm_access", {{"roles", {person.role}}}}};
  }

  // Signed with the realm's published test key (deploy/local/lib/keycloak.sh), so the
  // signature is valid and only what the test changed is wrong.
  static std::string SignWithRealmKey(const json& claims) {
    static const std::string* pem = new std::string(testing::RealmTestSigningKey());
    static const std::string* kid = new std::string(testing::RealmKeyId(*pem));
    EXPECT_FALSE(kid->empty()) << "the realm does not publish its test signing key";
    return identity::test_support::SignWithLibjwt(claims, JWT_ALG_RS256, *pem, {{"kid", *kid}});
  }

  static inline testing::ServiceSuite* suite_ = nullptr;
};

TEST_F(AuthenticationTest, EveryMethodOfEveryServiceRefusesEveryBadTokenAndWritesNothing) {
  const Person person{UniqueName("cm-authn"), "case_manager", kTenantA};
  const json good = Claims(person);
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  json expired = good, early = good, audience = good, issuer = good;
  expired["exp"] = now - 600;  // beyond the 60 s skew
  early["nbf"] = now + 600;
  audience["aud"] = "another-api";
  issuer["iss"] = "https://idp.invalid/realms/clinical";
  const std::string valid = SignWithRealmKey(good);
  std::string tampered = valid;  // the payload changed after signing
  {
    const size_t first = tampered.find('.'), second = tampered.find('.', first + 1);
    json changed = good;
    changed["tenant"] = kTenantB;
    tampered = absl::StrCat(tampered.substr(0, first + 1), Base64Url(changed.dump()), tampered.substr(second));
  }
  const auto stranger = identity::test_support::MakeRsaKey("never-published");
  const std::vector<std::pair<std::string, std::string>> tokens = {
      {"", "token_missing"},
      {SignWithRealmKey(expired), "token_expired"},
      {SignWithRealmKey(early), "token_not_yet_valid"},
      {SignWithRealmKey(audience), "wrong_audience"},
      {SignWithRealmKey(issuer), "wrong_issuer"},
      {tampered, "bad_signature"},
      {identity::test_support::Unsigned({{"alg", "none"}, {"typ", "JWT"}}, good), "algorithm_refused"},
      {identity::test_support::SignWithLibjwt(good, JWT_ALG_RS256, stranger.private_pem, {{"kid", "never-published"}}),
       "unknown_key"},
  };

  struct Expected {
    std::string method, reason, trace_id;
  };
  std::vector<Expected> expected;
  const auto before = EventTopicEnds();
  for (const google::protobuf::ServiceDescriptor* service : testing::ServiceSuite::Services()) {
    const std::string& service_name = service->full_name();
    const auto channel = ChannelTo(service_name);
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      const std::string path = absl::StrCat("/", service_name, "/", method->name());
      std::unique_ptr<google::protobuf::Message> request(
          google::protobuf::MessageFactory::generated_factory()->GetPrototype(method->input_type())->New());
      for (const auto& [token, reason] : tokens) {
        const std::string trace_id = testing::NewTraceId();
        std::vector<std::pair<std::string, std::string>> metadata = {{"traceparent", testing::Traceparent(trace_id)}};
        if (!token.empty()) metadata.push_back({"authorization", "Bearer " + token});
        // Self-declared identity is no identity: these headers change nothing.
        metadata.push_back({"x-clinical-user", person.user});
        metadata.push_back({"x-clinical-role", "auditor"});
        metadata.push_back({"x-clinical-tenant", kTenantA});
        const grpc::Status status = Call(channel, path, *request, metadata);
        EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << path << " with " << reason;
        expected.push_back({path, reason, trace_id});
      }
    }
  }
  EXPECT_GE(expected.size(), 8u * 70) << "every method of every service was walked";
  EXPECT_EQ(EventTopicEnds(), before) << "a refused call wrote an event";

  const auto records = RecordsByTrace();
  for (const Expected& call : expected) {
    auto found = records.find(call.trace_id);
    ASSERT_TRUE(found != records.end() && found->second.size() == 1) << call.method << " " << call.reason;
    const AccessRecord& record = found->second[0];
    EXPECT_EQ(record.method(), call.method);
    EXPECT_EQ(record.outcome(), audit::v1::ACCESS_OUTCOME_DENIED) << call.method << " " << call.reason;
    EXPECT_EQ(record.status_code(), static_cast<int>(grpc::StatusCode::UNAUTHENTICATED));
    EXPECT_EQ(record.denial_reason(), call.reason) << call.method;
    EXPECT_EQ(record.peer_identity(), "spiffe://clinical.local/ns/local/sa/test-client") << call.method;
    EXPECT_TRUE(record.actor_id().empty()) << call.method << ": an unverified caller is no actor";
    if (call.reason != "token_missing" && call.reason != "unknown_key" && call.reason != "algorithm_refused") {
      EXPECT_EQ(record.claimed_subject(), person.user) << call.method << " " << call.reason;
    }
  }
}

TEST_F(AuthenticationTest, ATenantReachesNoOtherTenantsCaseAppointmentOrCalendar) {
  // Tenant B: a case, its manager's calendar and a booked appointment.
  const std::string manager_b = UniqueName("cm-authn-b");
  const Person supervisor_b{UniqueName("sup-authn-b"), "supervisor", kTenantB};
  const Person case_manager_b{manager_b, "case_manager", kTenantB};
  auto cases = cv1::CaseService::NewStub(ChannelTo("case"));
  const cv1::OpenCaseRequest open = testing::ExampleIntake(UniqueName("open"), "team-b");
  cv1::OpenCaseResponse opened;
  grpc::Status status = cases->OpenCase(testing::ContextAs(supervisor_b).get(), open, &opened);
  ASSERT_TRUE(status.ok()) << status.error_message();
  cv1::AssignCaseRequest assign;
  assign.set_case_id(opened.case_id());
  assign.set_command_id(UniqueName("assign"));
  assign.set_case_manager_id(manager_b);
  cv1::AssignCaseResponse assigned;
  ASSERT_TRUE(cases->AssignCase(testing::ContextAs(supervisor_b).get(), assign, &assigned).ok());

  auto scheduling = sv1::SchedulingService::NewStub(ChannelTo("scheduling"));
  const sv1::CreateCalendarRequest calendar = testing::AroundTheClockCalendar(UniqueName("cal"), manager_b);
  sv1::CreateCalendarResponse calendar_created;
  ASSERT_TRUE(scheduling->CreateCalendar(testing::ContextAs(case_manager_b).get(), calendar, &calendar_created).ok());
  sv1::BookAppointmentRequest booking;
  booking.set_command_id(UniqueName("book"));
  booking.set_case_id(opened.case_id());
  booking.set_type(sv1::APPOINTMENT_TYPE_PHONE_FOLLOW_UP);
  *booking.mutable_start_time() = testing::ProtoTime(absl::FromUnixSeconds((absl::ToUnixSeconds(absl::Now()) / 3600 + 26) * 3600));
  booking.mutable_duration()->set_seconds(3600);
  booking.set_time_zone("America/New_York");
  sv1::BookAppointmentResponse booked;
  ASSERT_TRUE(testing::WaitUntil(  // the scheduling service learns of the case from its topic
      [&] { return scheduling->BookAppointment(testing::ContextAs(case_manager_b).get(), booking, &booked).ok(); },
      absl::Seconds(30)));

  // Tenant A, with valid tokens, names B's resources in every method that takes them.
  const std::map<std::string, std::string> ids = {{"case_id", opened.case_id()},
                                                   {"appointment_id", booked.appointment_id()},
                                                   {"calendar_id", calendar_created.calendar_id()}};
  struct Expected {
    std::string method, user, trace_id;
  };
  std::vector<Expected> expected;
  const auto before = EventTopicEnds();
  for (const google::protobuf::ServiceDescriptor* service : testing::ServiceSuite::Services()) {
    const std::string& service_name = service->full_name();
    const auto channel = ChannelTo(service_name);
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      // A person of A whose role the method's policy names (the first rule's), so that
      // only the tenant boundary stands between them and B's resources.
      const auto& policy = method->options().GetExtension(common::v1::access);
      ASSERT_FALSE(policy.allow().empty()) << method->full_name();
      const std::string role = absl::AsciiStrToLower(common::v1::Role_Name(policy.allow(0).role()).substr(5));
      const Person caller{"authn-a-" + role, role, kTenantA};
      std::unique_ptr<google::protobuf::Message> request(
          google::protobuf::MessageFactory::generated_factory()->GetPrototype(method->input_type())->New());
      const auto* reflection = request->GetReflection();
      bool names_b = false;
      for (const auto& [field_name, value] : ids) {
        const auto* field = method->input_type()->FindFieldByName(field_name);
        if (field == nullptr || field->type() != google::protobuf::FieldDescriptor::TYPE_STRING ||
            field->is_repeated()) {
          continue;
        }
        // A write names its new appointment's id itself (BookAppointment); B's case is what counts.
        if (field_name == "appointment_id" && method->name() == "BookAppointment") continue;
        reflection->SetString(request.get(), field, value);
        names_b = true;
      }
      // The audit log's queries filter by the caller's tenant (nothing of B is returned);
      // replay and disclosures, which fold B's events, are checked.
      if (!names_b || service_name == "clinical.audit.v1.AuditService") continue;
      if (const auto* command = method->input_type()->FindFieldByName("command_id"); command != nullptr) {
        reflection->SetString(request.get(), command, UniqueName("cmd"));
      }
      const std::string path = absl::StrCat("/", service_name, "/", method->name());
      const std::string trace_id = testing::NewTraceId();
      const grpc::Status result =
          Call(channel, path, *request,
               {{"authorization", "Bearer " + testing::TokenFor(caller)},
                {"traceparent", testing::Traceparent(trace_id)}});
      EXPECT_EQ(result.error_code(), grpc::StatusCode::NOT_FOUND) << path << ": " << result.error_message();
      expected.push_back({path, caller.user, trace_id});
    }
  }
  EXPECT_GE(expected.size(), 40u) << "every method naming a case, appointment or calendar was walked";
  EXPECT_EQ(EventTopicEnds(), before) << "tenant A wrote into tenant B";
  const auto records = RecordsByTrace();
  for (const Expected& call : expected) {
    auto found = records.find(call.trace_id);
    ASSERT_TRUE(found != records.end() && found->second.size() == 1) << call.method;
    const AccessRecord& record = found->second[0];
    EXPECT_EQ(record.outcome(), audit::v1::ACCESS_OUTCOME_DENIED) << call.method;
    EXPECT_EQ(record.status_code(), static_cast<int>(grpc::StatusCode::NOT_FOUND)) << call.method;
    EXPECT_EQ(record.actor_id(), call.user) << call.method << ": the verified subject";
    EXPECT_EQ(record.tenant_id(), kTenantA) << call.method;
  }
}

TEST_F(AuthenticationTest, TheRealmsTokensVerifyInRs256AndEs256AndANewKeyIsAcceptedWithoutRestart) {
  const Person person{UniqueName("cm-authn-keys"), "case_manager", kTenantA};
  auto cases = cv1::CaseService::NewStub(ChannelTo("case"));
  auto get = [&](const std::string& token) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + token);
    cv1::GetCaseRequest request;
    request.set_case_id("00000000-0000-4000-8000-000000000000");
    cv1::GetCaseResponse response;
    return cases->GetCase(&context, request, &response);  // verified, then NOT_FOUND
  };
  for (const char* client : {"clinical-demo", "clinical-demo-es256"}) {
    const std::string token = testing::TokenFor(person, client);
    std::string header_text;
    ASSERT_TRUE(absl::WebSafeBase64Unescape(token.substr(0, token.find('.')), &header_text));
    const json header = json::parse(header_text);
    EXPECT_EQ(header.value("alg", ""), std::string(client) == "clinical-demo" ? "RS256" : "ES256");
    EXPECT_EQ(get(token).error_code(), grpc::StatusCode::NOT_FOUND) << client;
  }

  // The realm starts publishing a new key (an operator's rotation, through the admin API).
  // The services fetched the old key set already; they pick the new key up on its first use.
  const auto rotated = identity::test_support::MakeRsaKey("rotation");
  const std::string kid = testing::PublishRealmKey(rotated.private_pem);
  const std::string token = identity::test_support::SignWithLibjwt(Claims(person), JWT_ALG_RS256, rotated.private_pem,
                                                                   {{"kid", kid}});
  // At most one key fetch per refresh interval (10 s) per service: accepted within it.
  grpc::Status last;
  EXPECT_TRUE(testing::WaitUntil([&] { return (last = get(token)).error_code() == grpc::StatusCode::NOT_FOUND; },
                                 absl::Seconds(30), absl::Milliseconds(500)))
      << last.error_message();
}

TEST_F(AuthenticationTest, TheTransportAdmitsNoPlaintextNoForeignCaAndNoServiceAsAPerson) {
  const std::string address = suite_->Process("case").address();
  cv1::GetCaseRequest request;
  request.set_case_id("00000000-0000-4000-8000-000000000000");
  const Person person{UniqueName("cm-authn-transport"), "case_manager", kTenantA};

  // Plaintext: the TLS server never answers it.
  {
    auto stub = cv1::CaseService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    context.AddMetadata("authorization", "Bearer " + testing::TokenFor(person));
    cv1::GetCaseResponse response;
    EXPECT_EQ(stub->GetCase(&context, request, &response).error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  // A client certificate of another CA (a valid token does not help).
  {
    const std::string dir = testing::Platform::Get().platform_dir + "/foreign-pki";
    ASSERT_EQ(std::system(absl::StrCat("bash -c 'log() { :; }; die() { echo \"$*\" >&2; exit 1; }; source ",
                                       testing::SourcePath("deploy/local/lib/pki.sh"), "; pki_ensure ", dir, "'")
                              .c_str()),
              0);
    grpcx::TlsFiles foreign;
    foreign.cert_file = dir + "/test-client.crt";
    foreign.key_file = dir + "/test-client.key";
    foreign.ca_file = testing::Platform::Get().pki_dir + "/ca.crt";  // it trusts the server
    auto stub = cv1::CaseService::NewStub(testing::SecureChannel(address, foreign));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    context.AddMetadata("authorization", "Bearer " + testing::TokenFor(person));
    cv1::GetCaseResponse response;
    EXPECT_EQ(stub->GetCase(&context, request, &response).error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  // A service's certificate is a service, whatever the headers say: it reads no case.
  {
    auto stub = cv1::CaseService::NewStub(testing::SecureChannel(address, testing::ServiceTls("views")));
    grpc::ClientContext context;
    context.AddMetadata("x-clinical-user", person.user);
    context.AddMetadata("x-clinical-role", "case_manager");
    context.AddMetadata("x-clinical-tenant", kTenantA);
    cv1::GetCaseResponse response;
    EXPECT_EQ(stub->GetCase(&context, request, &response).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  // A person's token never claims the service role (it is refused, not downgraded).
  {
    json claims = Claims(person);
    claims["realm_access"]["roles"] = {"service"};
    auto stub = cv1::CaseService::NewStub(suite_->Channel("case"));
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + SignWithRealmKey(claims));
    cv1::GetCaseResponse response;
    EXPECT_EQ(stub->GetCase(&context, request, &response).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
}

}  // namespace
}  // namespace clinical

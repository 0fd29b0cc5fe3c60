// The pure parts of access recording: the access option as the service protos declare it,
// ids taken from messages by field path, the outcome of a status, the record itself.

#include "clinical/access/policy.h"
#include "clinical/access/record.h"
#include "clinical/audit/v1/audit_service.pb.h"
#include "clinical/audit/v1/replay_service.pb.h"
#include "clinical/case/v1/case_service.pb.h"
#include "clinical/notification/v1/notification_service.pb.h"
#include "clinical/scheduling/v1/scheduling_service.pb.h"
#include "clinical/views/v1/views_service.pb.h"
#include "gtest/gtest.h"

namespace clinical::access {
namespace {


// The service files linked into this test; the generated pool holds them.
std::vector<const google::protobuf::ServiceDescriptor*> PlatformServices() {
  return {case_::v1::GetCaseRequest::descriptor()->file()->FindServiceByName("CaseService"),
          scheduling::v1::GetAppointmentRequest::descriptor()->file()->FindServiceByName("SchedulingService"),
          views::v1::GetCaseloadRequest::descriptor()->file()->FindServiceByName("ViewsService"),
          notification::v1::ListInboxRequest::descriptor()->file()->FindServiceByName("NotificationService"),
          audit::v1::QueryRecordsRequest::descriptor()->file()->FindServiceByName("AuditService"),
          audit::v1::ReplayCaseRequest::descriptor()->file()->FindServiceByName("AuditReplayService")};
}

TEST(AccessPolicyTest, FindsTheOptionOfAnnotatedReads) {
  auto policy = PolicyFor("/clinical.case.v1.CaseService/GetCase");
  ASSERT_TRUE(policy.has_value());
  EXPECT_TRUE(policy->records());
  EXPECT_EQ(policy->policy.resource_type(), "case");
  EXPECT_EQ(policy->method->full_name(), "clinical.case.v1.CaseService.GetCase");

  auto history = PolicyFor("/clinical.case.v1.CaseService/ListCaseHistory");
  ASSERT_TRUE(history.has_value());
  EXPECT_EQ(history->policy.resource_type(), "case_history");
}

TEST(AccessPolicyTest, ExemptReadsAreFoundButNotRecorded) {
  auto calendar = PolicyFor("/clinical.scheduling.v1.SchedulingService/GetCalendar");
  ASSERT_TRUE(calendar.has_value());
  EXPECT_FALSE(calendar->records());
  EXPECT_FALSE(calendar->policy.exempt_reason().empty());
}

TEST(AccessPolicyTest, WritesHavePoliciesWithoutRecordingUnknownMethodsHaveNone) {
  auto open = PolicyFor("/clinical.case.v1.CaseService/OpenCase");
  ASSERT_TRUE(open.has_value());
  EXPECT_FALSE(open->records()) << "a write is recorded as its events";
  EXPECT_FALSE(open->policy.allow().empty());
  EXPECT_FALSE(PolicyFor("/clinical.case.v1.CaseService/NoSuchMethod").has_value());
  EXPECT_FALSE(PolicyFor("/no.such.Service/GetCase").has_value());
  EXPECT_FALSE(PolicyFor("/grpc.health.v1.Health/Check").has_value());
  EXPECT_FALSE(PolicyFor("").has_value());
  EXPECT_FALSE(PolicyFor("clinical.case.v1.CaseService.GetCase").has_value());
}

TEST(AccessPolicyTest, AReadIsARequestWithoutCommandId) {
  const auto* cases = case_::v1::GetCaseRequest::descriptor()->file()->FindServiceByName("CaseService");
  ASSERT_NE(cases, nullptr);
  EXPECT_TRUE(IsRead(*cases->FindMethodByName("GetCase")));
  EXPECT_TRUE(IsRead(*cases->FindMethodByName("ListCaseHistory")));
  EXPECT_FALSE(IsRead(*cases->FindMethodByName("OpenCase")));
  EXPECT_FALSE(IsRead(*cases->FindMethodByName("AddNote")));
}

// Deny by default: every RPC of every service declares who may call it, and every
// declaration can be enforced as written (the server refuses a method without one).
TEST(AccessPolicyTest, EveryMethodOfEveryServiceHasAValidPolicy) {
  int methods = 0;
  for (const auto* service : PlatformServices()) {
    ASSERT_NE(service, nullptr);
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      ++methods;
      ASSERT_TRUE(method->options().HasExtension(common::v1::access))
          << method->full_name() << " has no access policy";
      const auto& policy = method->options().GetExtension(common::v1::access);
      EXPECT_TRUE(ValidatePolicy(*method, policy).ok()) << ValidatePolicy(*method, policy);
      // No method grants service identities anything: no service calls another over gRPC.
      for (const auto& rule : policy.allow()) {
        EXPECT_NE(rule.role(), common::v1::ROLE_SERVICE) << method->full_name();
      }
    }
  }
  EXPECT_GE(methods, 79);
}

// Minimum necessary, as declared: the roles without clinical duties never see clinical
// content, whatever the method.
TEST(AccessPolicyTest, NonClinicalRolesNeverSeeAWholeCase) {
  for (const auto* service : PlatformServices()) {
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      const auto& policy = method->options().GetExtension(common::v1::access);
      for (const auto& rule : policy.allow()) {
        const bool non_clinical = rule.role() == common::v1::ROLE_SCHEDULER ||
                                  rule.role() == common::v1::ROLE_ADMINISTRATOR ||
                                  rule.role() == common::v1::ROLE_INTAKE_COORDINATOR;
        if (non_clinical && method->output_type() == case_::v1::GetCaseResponse::descriptor()) {
          EXPECT_FALSE(rule.visible_paths().empty()) << method->full_name() << " shows a whole case to "
                                                     << common::v1::Role_Name(rule.role());
        }
        // Auditors and privacy officers read; they write nothing clinical.
        if (rule.role() == common::v1::ROLE_AUDITOR ||
            (rule.role() == common::v1::ROLE_PRIVACY_OFFICER && method->name() != "ReviewEmergencyAccess")) {
          EXPECT_TRUE(IsRead(*method) || service->name() == "NotificationService")
              << method->full_name() << " lets " << common::v1::Role_Name(rule.role()) << " write";
        }
      }
    }
  }
}

TEST(AccessPolicyTest, ValidationRejectsBrokenPolicies) {
  const auto* cases = case_::v1::GetCaseRequest::descriptor()->file()->FindServiceByName("CaseService");
  const auto* method = cases->FindMethodByName("GetCase");
  common::v1::AccessPolicy policy;
  auto* rule = policy.add_allow();
  rule->set_role(common::v1::ROLE_CASE_MANAGER);
  rule->set_relationship(common::v1::RELATIONSHIP_ASSIGNED);
  EXPECT_FALSE(ValidatePolicy(*method, policy).ok()) << "neither recording nor exempt";
  policy.set_resource_type("case");
  policy.set_exempt_reason("both");
  EXPECT_FALSE(ValidatePolicy(*method, policy).ok()) << "both";
  policy.clear_exempt_reason();
  EXPECT_FALSE(ValidatePolicy(*method, policy).ok()) << "records without ids";
  policy.add_case_id_paths("request.case_id");
  EXPECT_TRUE(ValidatePolicy(*method, policy).ok());
  policy.add_case_id_paths("case_id");
  EXPECT_FALSE(ValidatePolicy(*method, policy).ok()) << "no request./response. prefix";
  policy.set_case_id_paths(1, "response.case.no_such_field");
  EXPECT_FALSE(ValidatePolicy(*method, policy).ok()) << "unknown field";
  policy.set_case_id_paths(1, "response.case.version");
  EXPECT_FALSE(ValidatePolicy(*method, policy).ok()) << "int64 leaf";
  policy.set_case_id_paths(1, "response.case.case_id.x");
  EXPECT_FALSE(ValidatePolicy(*method, policy).ok()) << "through a string";
  policy.set_case_id_paths(1, "response.case.case_id");
  EXPECT_TRUE(ValidatePolicy(*method, policy).ok());

  // Rules: a role and a relationship each; visible paths on the response (any field).
  common::v1::AccessPolicy ruled = policy;
  ruled.clear_allow();
  EXPECT_FALSE(ValidatePolicy(*method, ruled).ok()) << "deny by default: no rule is a mistake";
  ruled.add_allow()->set_role(common::v1::ROLE_SCHEDULER);
  EXPECT_FALSE(ValidatePolicy(*method, ruled).ok()) << "no relationship";
  ruled.mutable_allow(0)->set_relationship(common::v1::RELATIONSHIP_TENANT);
  EXPECT_TRUE(ValidatePolicy(*method, ruled).ok());
  ruled.mutable_allow(0)->add_visible_paths("response.case.patient");
  ruled.mutable_allow(0)->add_visible_paths("response.case.version");
  EXPECT_TRUE(ValidatePolicy(*method, ruled).ok()) << "messages and scalars may be visible";
  ruled.mutable_allow(0)->add_visible_paths("request.case_id");
  EXPECT_FALSE(ValidatePolicy(*method, ruled).ok()) << "visible paths are response paths";
  ruled.mutable_allow(0)->set_visible_paths(2, "response.case.nope");
  EXPECT_FALSE(ValidatePolicy(*method, ruled).ok()) << "unknown visible field";
  ruled.mutable_allow(0)->mutable_visible_paths()->RemoveLast();
  ruled.mutable_allow(0)->set_relationship(common::v1::RELATIONSHIP_SELF);
  EXPECT_FALSE(ValidatePolicy(*method, ruled).ok()) << "SELF without a subject path";
  ruled.set_subject_path("request.case_id");
  EXPECT_TRUE(ValidatePolicy(*method, ruled).ok());

  // A case relationship needs a request that names a case.
  const auto* organisation = cases->FindMethodByName("GetOrganisation");
  common::v1::AccessPolicy org;
  org.set_exempt_reason("staff only");
  org.add_allow()->set_role(common::v1::ROLE_SUPERVISOR);
  org.mutable_allow(0)->set_relationship(common::v1::RELATIONSHIP_TEAM_SUPERVISOR);
  EXPECT_FALSE(ValidatePolicy(*organisation, org).ok());
  org.mutable_allow(0)->set_relationship(common::v1::RELATIONSHIP_TENANT);
  EXPECT_TRUE(ValidatePolicy(*organisation, org).ok());

  // A write neither records nor claims an exemption: its events are its record.
  const auto* add_note = cases->FindMethodByName("AddNote");
  common::v1::AccessPolicy write;
  *write.add_allow() = *rule;
  EXPECT_TRUE(ValidatePolicy(*add_note, write).ok());
  write.set_resource_type("note");
  write.add_case_id_paths("request.case_id");
  EXPECT_FALSE(ValidatePolicy(*add_note, write).ok());

  common::v1::AccessPolicy exempt;
  exempt.set_exempt_reason("aggregates only");
  *exempt.add_allow() = *rule;
  EXPECT_TRUE(ValidatePolicy(*method, exempt).ok());
  exempt.add_case_id_paths("request.case_id");
  EXPECT_FALSE(ValidatePolicy(*method, exempt).ok()) << "exempt with ids";
}

TEST(AccessPolicyTest, ExtractsIdsThroughRepeatedAndNestedMessages) {
  views::v1::GetWorklistResponse worklist;
  worklist.add_items()->mutable_summary()->set_case_id("c-1");
  worklist.add_items()->mutable_summary()->set_case_id("c-2");
  worklist.add_items()->mutable_summary()->set_case_id("c-1");  // duplicate dropped
  worklist.add_items();                                           // unset summary skipped
  worklist.add_items()->mutable_summary()->set_case_id("");      // empty skipped
  std::vector<std::string> ids;
  ExtractIds(worklist, "items.summary.case_id", ids);
  EXPECT_EQ(ids, (std::vector<std::string>{"c-1", "c-2"}));
}

TEST(AccessPolicyTest, ExtractsRepeatedStringLeavesAndIgnoresUnresolvablePaths) {
  case_::v1::GetCaseResponse response;
  response.mutable_case_()->set_case_id("c-9");
  response.add_overdue_task_ids("t-1");
  response.add_overdue_task_ids("t-2");
  std::vector<std::string> ids;
  ExtractIds(response, "overdue_task_ids", ids);
  EXPECT_EQ(ids, (std::vector<std::string>{"t-1", "t-2"}));
  ids.clear();
  ExtractIds(response, "case.version", ids);       // not a string
  ExtractIds(response, "case.nope", ids);          // unknown
  ExtractIds(response, "", ids);                   // empty
  ExtractIds(response, "case.case_id.more", ids);  // through a leaf
  EXPECT_TRUE(ids.empty());
  ExtractIds(response, "case.case_id", ids);
  EXPECT_EQ(ids, (std::vector<std::string>{"c-9"}));
}

TEST(AccessPolicyTest, ExtractIdsForTakesOnlyThePathsOfItsSide) {
  auto policy = PolicyFor("/clinical.case.v1.CaseService/GetCase");
  ASSERT_TRUE(policy.has_value());
  case_::v1::GetCaseRequest request;
  request.set_case_id("from-request");
  case_::v1::GetCaseResponse response;
  response.mutable_case_()->set_case_id("from-response");
  std::vector<std::string> ids;
  ExtractIdsFor(request, PathRoot::kRequest, policy->policy.case_id_paths(), ids);
  EXPECT_EQ(ids, (std::vector<std::string>{"from-request"}));
  ExtractIdsFor(response, PathRoot::kResponse, policy->policy.case_id_paths(), ids);
  EXPECT_EQ(ids, (std::vector<std::string>{"from-request", "from-response"}));
  ExtractIdsFor(response, PathRoot::kRequest, policy->policy.case_id_paths(), ids);  // no such field there
  EXPECT_EQ(ids.size(), 2u);
}

TEST(AccessOutcomeTest, MapsStatusCodes) {
  EXPECT_EQ(OutcomeFor(0, false), audit::v1::ACCESS_OUTCOME_ALLOWED);
  EXPECT_EQ(OutcomeFor(7, false), audit::v1::ACCESS_OUTCOME_DENIED);   // PERMISSION_DENIED
  EXPECT_EQ(OutcomeFor(16, false), audit::v1::ACCESS_OUTCOME_DENIED);  // UNAUTHENTICATED
  EXPECT_EQ(OutcomeFor(5, false), audit::v1::ACCESS_OUTCOME_FAILED);   // NOT_FOUND
  EXPECT_EQ(OutcomeFor(3, false), audit::v1::ACCESS_OUTCOME_FAILED);   // INVALID_ARGUMENT
  EXPECT_EQ(OutcomeFor(14, false), audit::v1::ACCESS_OUTCOME_FAILED);  // UNAVAILABLE
  EXPECT_EQ(OutcomeFor(5, true), audit::v1::ACCESS_OUTCOME_DENIED);    // marked: another tenant
  EXPECT_EQ(OutcomeFor(0, true), audit::v1::ACCESS_OUTCOME_DENIED);
}

TEST(AccessRecordTest, CarriesEveryFactOfTheCall) {
  CallFacts facts;
  facts.method = "/clinical.case.v1.CaseService/GetCase";
  facts.actor_id = "cm-1";
  facts.actor_role = "case_manager";
  facts.tenant_id = "t-1";
  facts.purpose_of_use = "TREAT";
  facts.source_address = "ipv4:127.0.0.1:4000";
  facts.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  facts.resource_type = "case";
  facts.resource_ids = {"c-1"};
  facts.case_ids = {"c-1"};
  facts.status_code = 0;
  const auto record = BuildRecord(facts, "id-1", absl::FromUnixMillis(1'700'000'000'123));
  EXPECT_EQ(record.record_id(), "id-1");
  EXPECT_EQ(record.occurred_at().seconds(), 1'700'000'000);
  EXPECT_EQ(record.occurred_at().nanos(), 123'000'000);
  EXPECT_EQ(record.actor_id(), "cm-1");
  EXPECT_EQ(record.actor_role(), "case_manager");
  EXPECT_EQ(record.tenant_id(), "t-1");
  EXPECT_EQ(record.service(), "clinical.case.v1.CaseService");
  EXPECT_EQ(record.method(), "/clinical.case.v1.CaseService/GetCase");
  EXPECT_EQ(record.resource_type(), "case");
  ASSERT_EQ(record.resource_ids_size(), 1);
  ASSERT_EQ(record.case_ids_size(), 1);
  EXPECT_EQ(record.case_ids(0), "c-1");
  EXPECT_EQ(record.purpose_of_use(), "TREAT");
  EXPECT_EQ(record.source_address(), "ipv4:127.0.0.1:4000");
  EXPECT_EQ(record.outcome(), audit::v1::ACCESS_OUTCOME_ALLOWED);
  EXPECT_EQ(record.status_code(), 0);
  EXPECT_EQ(record.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");

  facts.status_code = 5;
  facts.marked_denied = true;
  const auto denied = BuildRecord(facts, "id-2", absl::UnixEpoch());
  EXPECT_EQ(denied.outcome(), audit::v1::ACCESS_OUTCOME_DENIED);
  EXPECT_EQ(denied.status_code(), 5);
}

TEST(AccessRecordTest, RecordIdsAreVersion4Uuids) {
  std::array<uint8_t, 16> bytes;
  bytes.fill(0xff);
  EXPECT_EQ(FormatUuidV4(bytes), "ffffffff-ffff-4fff-bfff-ffffffffffff");
  bytes.fill(0x00);
  EXPECT_EQ(FormatUuidV4(bytes), "00000000-0000-4000-8000-000000000000");
  EXPECT_EQ(ServiceOf("/clinical.case.v1.CaseService/GetCase"), "clinical.case.v1.CaseService");
  EXPECT_EQ(ServiceOf("nonsense"), "");
}

}  // namespace
}  // namespace clinical::access

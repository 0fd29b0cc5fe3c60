// Who may call the audit service and the replay: the policies declared in
// audit_service.proto and replay_service.proto, decided by the platform's engine exactly as
// the access interceptor decides them. Auditors and privacy officers of the caller's tenant
// only; every other role is refused before any handler runs.
#include <gtest/gtest.h>

#include <string>

#include "clinical/access/decision.h"
#include "clinical/access/policy.h"
#include "clinical/audit/v1/audit_service.grpc.pb.h"
#include "clinical/audit/v1/replay_service.grpc.pb.h"

namespace clinical::audit {
namespace {

// `request`'s file's service (naming the request links the file in).
void ExpectAuditorsAndPrivacyOfficersOnly(const google::protobuf::Descriptor& request) {
  ASSERT_EQ(request.file()->service_count(), 1);
  const google::protobuf::ServiceDescriptor* found = request.file()->service(0);
  const google::protobuf::ServiceDescriptor& service = *found;
  ASSERT_GT(service.method_count(), 0);
  for (int i = 0; i < service.method_count(); ++i) {
    const google::protobuf::MethodDescriptor& method = *service.method(i);
    const std::string path = "/" + service.full_name() + "/" + method.name();
    SCOPED_TRACE(path);
    auto policy = access::PolicyFor(path);
    ASSERT_TRUE(policy.has_value());
    EXPECT_TRUE(access::ValidatePolicy(method, policy->policy).ok());
    for (int r = common::v1::Role_MIN; r <= common::v1::Role_MAX; ++r) {
      if (!common::v1::Role_IsValid(r)) continue;
      const auto role = static_cast<common::v1::Role>(r);
      SCOPED_TRACE(common::v1::Role_Name(role));
      const access::Decision decision = access::Decide(policy->policy, {"person-1", "tenant-a", role}, {});
      if (role == common::v1::ROLE_AUDITOR || role == common::v1::ROLE_PRIVACY_OFFICER) {
        EXPECT_TRUE(decision.allowed);
        EXPECT_EQ(decision.relationship, "tenant");
        EXPECT_TRUE(access::RoleMayCall(policy->policy, role));
      } else {
        EXPECT_FALSE(decision.allowed);
        EXPECT_EQ(decision.denial_reason, "role_not_permitted");
        EXPECT_FALSE(access::RoleMayCall(policy->policy, role));
      }
    }
  }
}

TEST(AuditPolicyTest, TheAuditLogIsForAuditorsAndPrivacyOfficers) {
  ExpectAuditorsAndPrivacyOfficersOnly(*audit::v1::ListChainsRequest::descriptor());
}

TEST(AuditPolicyTest, ReplayAndDisclosuresAreForAuditorsAndPrivacyOfficers) {
  ExpectAuditorsAndPrivacyOfficersOnly(*audit::v1::ReplayCaseRequest::descriptor());
}

TEST(AuditPolicyTest, AnotherTenantsNamedCaseIsRefusedEvenToAuditors) {
  auto policy = access::PolicyFor("/clinical.audit.v1.AuditService/RecheckAccess");
  ASSERT_TRUE(policy.has_value());
  access::Relations relations;
  access::CaseRelations other;
  other.case_id = "case-b";
  other.where = access::CaseRelations::Where::kOtherTenant;
  relations.cases.push_back(other);
  const access::Decision decision =
      access::Decide(policy->policy, {"aud-1", "tenant-a", common::v1::ROLE_AUDITOR}, relations);
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.denial_reason, "other_tenant");
}

}  // namespace
}  // namespace clinical::audit

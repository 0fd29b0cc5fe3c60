// The authorization engine as a pure function: policy, principal and relations in, decision
// out; and minimum-necessary masking of a response.
#include "clinical/access/decision.h"
#include "clinical/access/policy.h"
#include "clinical/access/snapshot.h"
#include "clinical/case/v1/case_service.pb.h"
#include "gtest/gtest.h"

namespace clinical::access {
namespace {

using common::v1::AccessPolicy;
using Where = CaseRelations::Where;

AccessPolicy Policy(std::initializer_list<std::pair<common::v1::Role, common::v1::Relationship>> rules) {
  AccessPolicy policy;
  for (const auto& [role, relationship] : rules) {
    auto* rule = policy.add_allow();
    rule->set_role(role);
    rule->set_relationship(relationship);
  }
  return policy;
}

Principal As(common::v1::Role role, const std::string& user = "u-1") { return Principal{user, "tenant-a", role}; }

CaseRelations InTenant(const std::string& id) {
  CaseRelations c;
  c.case_id = id;
  c.where = Where::kInTenant;
  return c;
}

Relations Naming(std::vector<CaseRelations> cases) {
  Relations relations;
  relations.cases = std::move(cases);
  return relations;
}

const AccessPolicy kClinicalWrite = Policy({{common::v1::ROLE_CASE_MANAGER, common::v1::RELATIONSHIP_ASSIGNED},
                                            {common::v1::ROLE_CASE_MANAGER, common::v1::RELATIONSHIP_CARE_TEAM},
                                            {common::v1::ROLE_SUPERVISOR, common::v1::RELATIONSHIP_TEAM_SUPERVISOR}});

TEST(DecideTest, TheFirstRuleWhoseRoleAndRelationshipHoldAllows) {
  CaseRelations c = InTenant("c-1");
  c.care_team = true;
  const Decision decision = Decide(kClinicalWrite, As(common::v1::ROLE_CASE_MANAGER), Naming({c}));
  EXPECT_TRUE(decision.allowed);
  EXPECT_EQ(decision.rule, 1);
  EXPECT_EQ(decision.relationship, "care_team");
  EXPECT_TRUE(decision.denial_reason.empty());
}

TEST(DecideTest, DeniesByDefault) {
  EXPECT_EQ(Decide(AccessPolicy(), As(common::v1::ROLE_SUPERVISOR), {}).denial_reason, "no_policy");
  EXPECT_EQ(Decide(kClinicalWrite, As(common::v1::ROLE_SCHEDULER), Naming({InTenant("c-1")})).denial_reason,
            "role_not_permitted");
  EXPECT_EQ(Decide(kClinicalWrite, As(common::v1::ROLE_UNSPECIFIED), Naming({InTenant("c-1")})).denial_reason,
            "role_not_permitted");
  const Decision none = Decide(kClinicalWrite, As(common::v1::ROLE_CASE_MANAGER), Naming({InTenant("c-1")}));
  EXPECT_FALSE(none.allowed);
  EXPECT_EQ(none.rule, -1);
  EXPECT_EQ(none.denial_reason, "no_relationship");
  // A case rule with no case named holds for nothing.
  EXPECT_EQ(Decide(kClinicalWrite, As(common::v1::ROLE_CASE_MANAGER), {}).denial_reason, "no_relationship");
}

TEST(DecideTest, EveryNamedCaseMustHoldTheRelationship) {
  CaseRelations mine = InTenant("c-1");
  mine.assigned = true;
  CaseRelations other = InTenant("c-2");
  EXPECT_TRUE(Decide(kClinicalWrite, As(common::v1::ROLE_CASE_MANAGER), Naming({mine})).allowed);
  EXPECT_FALSE(Decide(kClinicalWrite, As(common::v1::ROLE_CASE_MANAGER), Naming({mine, other})).allowed);
}

TEST(DecideTest, AnotherTenantsCaseIsRefusedWhateverTheRulesAndGrants) {
  CaseRelations elsewhere;
  elsewhere.case_id = "c-9";
  elsewhere.where = Where::kOtherTenant;
  elsewhere.assigned = true;
  elsewhere.emergency_grant_id = "emergency-1";
  const AccessPolicy open = Policy({{common::v1::ROLE_INTAKE_COORDINATOR, common::v1::RELATIONSHIP_TENANT}});
  EXPECT_EQ(Decide(open, As(common::v1::ROLE_INTAKE_COORDINATOR), Naming({elsewhere})).denial_reason, "other_tenant");
  EXPECT_EQ(Decide(kClinicalWrite, As(common::v1::ROLE_CASE_MANAGER), Naming({elsewhere})).denial_reason,
            "other_tenant");
  // A role no rule names is refused as such, whatever it names: nothing is revealed.
  EXPECT_EQ(Decide(kClinicalWrite, As(common::v1::ROLE_AUDITOR), Naming({elsewhere})).denial_reason,
            "role_not_permitted");
}

TEST(DecideTest, AnUnknownCaseIsNotFoundForCaseRulesAndFineForTenantRules) {
  CaseRelations unknown;
  unknown.case_id = "c-new";
  EXPECT_EQ(Decide(kClinicalWrite, As(common::v1::ROLE_CASE_MANAGER), Naming({unknown})).denial_reason,
            "case_not_found");
  const AccessPolicy open = Policy({{common::v1::ROLE_INTAKE_COORDINATOR, common::v1::RELATIONSHIP_TENANT}});
  EXPECT_TRUE(Decide(open, As(common::v1::ROLE_INTAKE_COORDINATOR), Naming({unknown})).allowed);
}

TEST(DecideTest, BreakTheGlassAllowsACaseRuleOfTheRoleOnlyWithAGrant) {
  CaseRelations granted = InTenant("c-1");
  granted.emergency_grant_id = "emergency-2";
  const Decision decision = Decide(kClinicalWrite, As(common::v1::ROLE_CASE_MANAGER), Naming({granted}));
  EXPECT_TRUE(decision.allowed);
  EXPECT_EQ(decision.relationship, "emergency");
  EXPECT_EQ(decision.emergency_grant_id, "emergency-2");
  EXPECT_EQ(decision.rule, 0);
  // An ordinary relationship wins over the grant: the read is not an emergency one.
  granted.assigned = true;
  EXPECT_EQ(Decide(kClinicalWrite, As(common::v1::ROLE_CASE_MANAGER), Naming({granted})).relationship, "assigned");
  // A grant does not give a role what its rules never name.
  granted.assigned = false;
  EXPECT_FALSE(Decide(kClinicalWrite, As(common::v1::ROLE_SCHEDULER), Naming({granted})).allowed);
  // Nor does it open a tenant-only or subject rule's method.
  const AccessPolicy self = Policy({{common::v1::ROLE_CASE_MANAGER, common::v1::RELATIONSHIP_SELF}});
  Relations about_other = Naming({granted});
  about_other.subject_id = "u-2";
  EXPECT_FALSE(Decide(self, As(common::v1::ROLE_CASE_MANAGER), about_other).allowed);
}

TEST(DecideTest, SelfAndSupervisesAreAboutTheSubject) {
  const AccessPolicy caseload = Policy({{common::v1::ROLE_CASE_MANAGER, common::v1::RELATIONSHIP_SELF},
                                        {common::v1::ROLE_SUPERVISOR, common::v1::RELATIONSHIP_SELF},
                                        {common::v1::ROLE_SUPERVISOR, common::v1::RELATIONSHIP_SUPERVISES}});
  Relations own;
  own.subject_id = "u-1";
  EXPECT_EQ(Decide(caseload, As(common::v1::ROLE_CASE_MANAGER), own).relationship, "self");
  EXPECT_TRUE(Decide(caseload, As(common::v1::ROLE_CASE_MANAGER), Relations()).allowed) << "empty: the caller";
  Relations other;
  other.subject_id = "u-2";
  EXPECT_FALSE(Decide(caseload, As(common::v1::ROLE_CASE_MANAGER), other).allowed);
  EXPECT_FALSE(Decide(caseload, As(common::v1::ROLE_SUPERVISOR), other).allowed);
  other.supervises_subject = true;
  EXPECT_EQ(Decide(caseload, As(common::v1::ROLE_SUPERVISOR), other).relationship, "supervises");
  Relations unresolved;
  unresolved.subject_unresolved = true;
  EXPECT_FALSE(Decide(caseload, As(common::v1::ROLE_CASE_MANAGER), unresolved).allowed);
}

TEST(DecideTest, IntakeWorksOnUnassignedCasesOnly) {
  const AccessPolicy assign = Policy({{common::v1::ROLE_SUPERVISOR, common::v1::RELATIONSHIP_TEAM_SUPERVISOR},
                                      {common::v1::ROLE_INTAKE_COORDINATOR, common::v1::RELATIONSHIP_UNASSIGNED}});
  CaseRelations waiting = InTenant("c-1");
  waiting.unassigned = true;
  EXPECT_TRUE(Decide(assign, As(common::v1::ROLE_INTAKE_COORDINATOR), Naming({waiting})).allowed);
  waiting.unassigned = false;
  EXPECT_FALSE(Decide(assign, As(common::v1::ROLE_INTAKE_COORDINATOR), Naming({waiting})).allowed);
}

TEST(KeepOnlyTest, ClearsEverythingNoPathReaches) {
  case_::v1::GetCaseResponse response;
  auto* c = response.mutable_case_();
  c->set_case_id("c-1");
  c->mutable_patient()->set_given_name("Ana");
  c->mutable_patient()->set_family_name("Diaz");
  c->mutable_patient()->set_mrn("MRN-1");
  c->mutable_referral()->set_reason("reason text");
  c->add_notes()->set_note_id("note-1");
  c->set_priority(2);
  response.add_overdue_task_ids("t-1");
  google::protobuf::RepeatedPtrField<std::string> visible;
  for (const char* path : {"response.case.case_id", "response.case.patient.given_name",
                           "response.case.patient.family_name", "response.case.priority"}) {
    visible.Add(path);
  }
  EXPECT_TRUE(KeepOnly(response, visible));
  EXPECT_EQ(response.case_().case_id(), "c-1");
  EXPECT_EQ(response.case_().patient().given_name(), "Ana");
  EXPECT_EQ(response.case_().patient().family_name(), "Diaz");
  EXPECT_EQ(response.case_().priority(), 2);
  EXPECT_TRUE(response.case_().patient().mrn().empty());
  EXPECT_FALSE(response.case_().has_referral());
  EXPECT_EQ(response.case_().notes_size(), 0);
  EXPECT_EQ(response.overdue_task_ids_size(), 0);
  // Nothing more to clear the second time.
  EXPECT_FALSE(KeepOnly(response, visible));
}

TEST(KeepOnlyTest, AMessagePathKeepsEverythingBelowItAndNoPathsKeepAll) {
  case_::v1::GetCaseResponse response;
  response.mutable_case_()->mutable_patient()->set_mrn("MRN-1");
  response.mutable_case_()->add_notes()->set_note_id("note-1");
  google::protobuf::RepeatedPtrField<std::string> visible;
  visible.Add("response.case.patient.mrn");
  visible.Add("response.case.patient");  // the shorter path wins
  EXPECT_TRUE(KeepOnly(response, visible));
  EXPECT_EQ(response.case_().patient().mrn(), "MRN-1");
  EXPECT_EQ(response.case_().notes_size(), 0);
  case_::v1::GetCaseResponse whole = response;
  EXPECT_FALSE(KeepOnly(whole, {}));
}

TEST(KeepOnlyTest, TheDeclaredSchedulerViewShowsNamesNotClinicalContent) {
  auto policy = PolicyFor("/clinical.case.v1.CaseService/GetCase");
  ASSERT_TRUE(policy.has_value());
  const common::v1::AccessRule* scheduler = nullptr;
  for (const auto& rule : policy->policy.allow()) {
    if (rule.role() == common::v1::ROLE_SCHEDULER) scheduler = &rule;
  }
  ASSERT_NE(scheduler, nullptr);
  case_::v1::GetCaseResponse response;
  response.mutable_case_()->mutable_patient()->set_given_name("Ana");
  response.mutable_case_()->mutable_patient()->set_birth_date("1950-01-01");
  response.mutable_case_()->mutable_referral()->set_reason("reason");
  response.mutable_case_()->add_assessments()->set_assessment_id("a-1");
  response.mutable_case_()->add_notes()->set_note_id("note-1");
  EXPECT_TRUE(KeepOnly(response, scheduler->visible_paths()));
  EXPECT_EQ(response.case_().patient().given_name(), "Ana");
  EXPECT_TRUE(response.case_().patient().birth_date().empty());
  EXPECT_FALSE(response.case_().has_referral());
  EXPECT_EQ(response.case_().assessments_size(), 0);
  EXPECT_EQ(response.case_().notes_size(), 0);
}

TEST(PolicySnapshotTest, VersionsFollowThePolicies) {
  const auto* cases = case_::v1::GetCaseRequest::descriptor()->file()->FindServiceByName("CaseService");
  const auto snapshot = SnapshotOf(*cases);
  EXPECT_EQ(snapshot.service(), "clinical.case.v1.CaseService");
  EXPECT_EQ(snapshot.version().size(), 16u);
  EXPECT_EQ(snapshot.methods_size(), cases->method_count());
  EXPECT_EQ(snapshot.methods(0).method(), "/clinical.case.v1.CaseService/OpenCase");
  EXPECT_EQ(SnapshotOf(*cases).version(), snapshot.version()) << "deterministic";
  EXPECT_EQ(PolicyVersionOf("clinical.case.v1.CaseService"), snapshot.version());
  EXPECT_EQ(PolicyVersionOf("no.such.Service"), "");
  const auto* other = case_::v1::GetCaseRequest::descriptor()->file()->pool()->FindServiceByName(
      "clinical.case.v1.CaseService");
  EXPECT_EQ(other, cases);
}

}  // namespace
}  // namespace clinical::access

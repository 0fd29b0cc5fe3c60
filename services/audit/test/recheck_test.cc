// Policy at the time (src/domain/recheck.h) as a pure function: access records, case and
// organisation events and policy snapshots in, the reads that would have been denied out.
// The policies are the real ones (snapshots of the generated service descriptors), so the
// rules re-checked here are the rules the services enforce.
#include "recheck.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clinical/access/snapshot.h"
#include "clinical/case/v1/case_service.grpc.pb.h"
#include "clinical/case/v1/events.pb.h"
#include "clinical/relations/facts.h"
#include "clinical/views/v1/views_service.grpc.pb.h"

namespace clinical::audit {
namespace {

namespace cv1 = case_::v1;
using audit::v1::ChainedRecord;
using common::v1::EventEnvelope;

constexpr int64_t kT0 = 1'780'000'000;  // an instant in 2026; times below are kT0 + minutes
constexpr char kTenant[] = "tenant-a";
constexpr char kGetCase[] = "/clinical.case.v1.CaseService/GetCase";
constexpr char kGetCaseload[] = "/clinical.views.v1.ViewsService/GetCaseload";

google::protobuf::Timestamp At(int minutes) {
  google::protobuf::Timestamp t;
  t.set_seconds(kT0 + 60 * minutes);
  return t;
}

// A service by the file of one of its requests (naming the request links the file in).
const google::protobuf::ServiceDescriptor& Service(const google::protobuf::Descriptor& request) {
  const auto* service = request.file()->service(0);
  if (service == nullptr) std::abort();
  return *service;
}

const audit::v1::AccessPolicySnapshot& CaseSnapshot() {
  static const auto snapshot = access::SnapshotOf(Service(*cv1::GetCaseRequest::descriptor()));
  return snapshot;
}
const audit::v1::AccessPolicySnapshot& ViewsSnapshot() {
  static const auto snapshot = access::SnapshotOf(Service(*views::v1::GetCaseloadRequest::descriptor()));
  return snapshot;
}

// An access record as the chainer indexes it (chain.cc FillFromAccess).
ChainedRecord Read(const std::string& id, int minute, const std::string& actor, const std::string& role,
                   const std::string& method, std::vector<std::string> case_ids, const std::string& relationship,
                   const std::string& policy_version) {
  ChainedRecord record;
  record.set_kind(audit::v1::RECORD_KIND_ACCESS);
  record.set_source_record_id(id);
  *record.mutable_occurred_at() = At(minute);
  record.set_actor_id(actor);
  record.set_actor_role(role);
  record.set_tenant_id(kTenant);
  record.set_action(method);
  for (auto& c : case_ids) record.add_case_ids(c);
  record.set_outcome(audit::v1::AccessOutcome_Name(audit::v1::ACCESS_OUTCOME_ALLOWED));
  record.set_relationship(relationship);
  record.set_policy_version(policy_version);
  return record;
}

ChainedRecord GetCase(const std::string& id, int minute, const std::string& actor, const std::string& role,
                      const std::string& case_id, const std::string& relationship) {
  return Read(id, minute, actor, role, kGetCase, {case_id}, relationship, CaseSnapshot().version());
}

// A case event as the case service writes it: the event's own message packed (CaseAssigned,
// not the CaseEvent wrapper), occurred_at when it took effect.
EventEnvelope CaseEvent(const std::string& case_id, int64_t version, int minute, const google::protobuf::Message& event,
                        const std::string& tenant = kTenant) {
  EventEnvelope envelope;
  envelope.set_aggregate_type("case");
  envelope.set_aggregate_id(case_id);
  envelope.set_aggregate_version(version);
  envelope.set_tenant_id(tenant);
  envelope.set_event_type(event.GetDescriptor()->full_name());
  *envelope.mutable_occurred_at() = At(minute);
  envelope.mutable_payload()->PackFrom(event);
  return envelope;
}

EventEnvelope Opened(const std::string& case_id, int minute, const std::string& team = "team-1") {
  cv1::CaseOpened opened;
  opened.set_status(cv1::CASE_STATUS_ACTIVE);
  opened.set_team_id(team);
  return CaseEvent(case_id, 1, minute, opened);
}

EventEnvelope Assigned(const std::string& case_id, int64_t version, int minute, const std::string& manager) {
  cv1::CaseAssigned assigned;
  assigned.set_case_manager_id(manager);
  return CaseEvent(case_id, version, minute, assigned);
}

EventEnvelope TeamSet(int64_t version, int minute, const std::string& team, std::vector<std::string> supervisors,
                      std::vector<std::string> members, const std::string& tenant = kTenant) {
  cv1::OrganisationEvent event;
  cv1::Team* t = event.mutable_team_set()->mutable_team();
  t->set_team_id(team);
  for (auto& s : supervisors) t->add_supervisor_ids(s);
  for (auto& m : members) t->add_member_ids(m);
  EventEnvelope envelope;
  envelope.set_aggregate_type("organisation");
  envelope.set_aggregate_id(relations::OrganisationId(tenant));
  envelope.set_aggregate_version(version);
  envelope.set_tenant_id(tenant);
  *envelope.mutable_occurred_at() = At(minute);
  envelope.mutable_payload()->PackFrom(event);  // the organisation wrapper itself
  return envelope;
}

std::vector<std::string> Reasons(const RecheckOutcome& outcome) {
  std::vector<std::string> out;
  for (const auto& f : outcome.findings) out.push_back(absl::StrCat(f.record_id(), ":", f.reason()));
  return out;
}

RecheckOutcome RecheckOf(std::vector<ChainedRecord> reads, std::vector<EventEnvelope> events, size_t limit = 100) {
  const PolicyIndex policies({CaseSnapshot(), ViewsSnapshot()});
  RecheckInput input{std::move(reads), std::move(events)};
  return Recheck(input, policies, limit);
}

TEST(RecheckTest, AssignedReadsHoldUntilAReassignmentTookEffectEvenWhenEnteredLate) {
  // cm-1 is assigned at minute 1. The reassignment to cm-2 was entered late (version 3,
  // after the reads were made) but took effect at minute 10: cm-1's read at minute 12 was
  // allowed then and is a finding now; the read at minute 5 stands.
  auto outcome = RecheckOf({GetCase("r1", 5, "cm-1", "case_manager", "case-1", "assigned"),
                      GetCase("r2", 12, "cm-1", "case_manager", "case-1", "assigned"),
                      GetCase("r3", 12, "cm-2", "case_manager", "case-1", "assigned")},
                     {Assigned("case-1", 3, 10, "cm-2"), Opened("case-1", 0), Assigned("case-1", 2, 1, "cm-1")});
  EXPECT_EQ(outcome.records_checked, 3);
  EXPECT_EQ(outcome.records_without_policy, 0);
  EXPECT_FALSE(outcome.truncated);
  ASSERT_EQ(Reasons(outcome), (std::vector<std::string>{"r2:no_relationship"}));
  const auto& finding = outcome.findings[0];
  EXPECT_EQ(finding.actor_id(), "cm-1");
  EXPECT_EQ(finding.actor_role(), "case_manager");
  EXPECT_EQ(finding.method(), kGetCase);
  EXPECT_EQ(finding.case_id(), "case-1");
  EXPECT_EQ(finding.relationship_then(), "assigned");
  EXPECT_EQ(finding.policy_version(), CaseSnapshot().version());
  EXPECT_EQ(finding.occurred_at().seconds(), At(12).seconds());
}

TEST(RecheckTest, AnEventCountsFromItsOccurredAtInclusive) {
  auto outcome = RecheckOf({GetCase("before", 0, "cm-1", "case_manager", "case-1", "assigned"),
                      GetCase("same", 1, "cm-1", "case_manager", "case-1", "assigned")},
                     {Opened("case-1", 0), Assigned("case-1", 2, 1, "cm-1")});
  EXPECT_EQ(Reasons(outcome), (std::vector<std::string>{"before:no_relationship"}));
}

TEST(RecheckTest, TheCaseEventWrapperIsFoldedLikeTheEventsOwnMessage) {
  cv1::CaseEvent wrapped;
  wrapped.mutable_case_assigned()->set_case_manager_id("cm-1");
  auto outcome = RecheckOf({GetCase("r1", 5, "cm-1", "case_manager", "case-1", "assigned")},
                     {Opened("case-1", 0), CaseEvent("case-1", 2, 1, wrapped)});
  EXPECT_TRUE(outcome.findings.empty()) << Reasons(outcome)[0];
}

TEST(RecheckTest, AReadOfACaseWithNoEventsIsNotShownAllowed) {
  auto outcome = RecheckOf({GetCase("r1", 5, "cm-1", "case_manager", "case-unknown", "assigned")}, {});
  EXPECT_EQ(Reasons(outcome), (std::vector<std::string>{"r1:case_not_found"}));
}

TEST(RecheckTest, ARoleTheSnapshotDoesNotNameIsRoleNotPermitted) {
  // An administrator read a case under a policy that names no administrator for GetCase.
  auto outcome = RecheckOf({GetCase("r1", 5, "admin-1", "administrator", "case-1", "tenant")}, {Opened("case-1", 0)});
  EXPECT_EQ(Reasons(outcome), (std::vector<std::string>{"r1:role_not_permitted"}));
}

TEST(RecheckTest, TheSnapshotTheRecordNamesDecidesNotTheCurrentOne) {
  // An older version of CaseService's policy let administrators read cases tenant-wide.
  audit::v1::AccessPolicySnapshot older = CaseSnapshot();
  older.set_version("0000000000000001");
  for (auto& method : *older.mutable_methods()) {
    if (method.method() != kGetCase) continue;
    auto* rule = method.mutable_policy()->add_allow();
    rule->set_role(common::v1::ROLE_ADMINISTRATOR);
    rule->set_relationship(common::v1::RELATIONSHIP_TENANT);
  }
  const PolicyIndex policies({CaseSnapshot(), older});
  RecheckInput input;
  input.reads = {Read("old", 5, "admin-1", "administrator", kGetCase, {"case-1"}, "tenant", "0000000000000001"),
                 GetCase("new", 6, "admin-1", "administrator", "case-1", "tenant")};
  input.events = {Opened("case-1", 0)};
  auto outcome = Recheck(input, policies, 10);
  EXPECT_EQ(Reasons(outcome), (std::vector<std::string>{"new:role_not_permitted"}));
}

TEST(RecheckTest, AMissingSnapshotIsAFindingAndCounted) {
  auto outcome = RecheckOf({Read("r1", 5, "cm-1", "case_manager", kGetCase, {"case-1"}, "assigned", "ffffffffffffffff"),
                      Read("r2", 6, "cm-1", "case_manager", kGetCase, {"case-1"}, "assigned", ""),
                      Read("r3", 7, "cm-1", "case_manager", "/clinical.case.v1.CaseService/NoSuchMethod", {"case-1"},
                           "assigned", CaseSnapshot().version()),
                      GetCase("r4", 8, "cm-1", "case_manager", "case-1", "assigned")},
                     {Opened("case-1", 0), Assigned("case-1", 2, 1, "cm-1")});
  EXPECT_EQ(outcome.records_checked, 4);
  EXPECT_EQ(outcome.records_without_policy, 3);
  EXPECT_EQ(Reasons(outcome), (std::vector<std::string>{"r1:no_policy", "r2:no_policy", "r3:no_policy"}));
}

TEST(RecheckTest, EmergencyReadsHoldWhileTheGrantHeld) {
  cv1::EmergencyAccessGranted granted;
  granted.mutable_grant()->set_grant_id("emergency-1");
  granted.mutable_grant()->set_user_id("cm-9");
  *granted.mutable_grant()->mutable_expires_at() = At(20);
  ChainedRecord before = GetCase("before", 9, "cm-9", "case_manager", "case-1", "emergency");
  ChainedRecord during = GetCase("during", 15, "cm-9", "case_manager", "case-1", "emergency");
  during.set_emergency_grant_id("emergency-1");
  ChainedRecord after = GetCase("after", 20, "cm-9", "case_manager", "case-1", "emergency");
  auto outcome = RecheckOf({before, during, after},
                     {Opened("case-1", 0), Assigned("case-1", 2, 1, "cm-1"), CaseEvent("case-1", 3, 10, granted)});
  EXPECT_EQ(Reasons(outcome), (std::vector<std::string>{"before:no_relationship", "after:no_relationship"}));
}

TEST(RecheckTest, TenantRulesRecheckTrivially) {
  // Schedulers read cases tenant-wide (masked): whoever is assigned does not matter.
  auto outcome = RecheckOf({GetCase("r1", 5, "sched-1", "scheduler", "case-1", "tenant")},
                     {Opened("case-1", 0), Assigned("case-1", 2, 1, "cm-1")});
  EXPECT_EQ(outcome.records_checked, 1);
  EXPECT_TRUE(outcome.findings.empty());
}

TEST(RecheckTest, TeamSupervisionFollowsTheOrganisationEventsAsOfTheRead) {
  // sup-1 supervises team-1 from minute 10 (entered late, version 2) until minute 30 (the
  // team is set again without them).
  auto outcome = RecheckOf({GetCase("early", 5, "sup-1", "supervisor", "case-1", "team_supervisor"),
                      GetCase("while", 15, "sup-1", "supervisor", "case-1", "team_supervisor"),
                      GetCase("late", 35, "sup-1", "supervisor", "case-1", "team_supervisor")},
                     {Opened("case-1", 0), Assigned("case-1", 2, 1, "cm-1"),
                      TeamSet(3, 30, "team-1", {"sup-2"}, {"cm-1"}), TeamSet(2, 10, "team-1", {"sup-1"}, {"cm-1"}),
                      // Another tenant's organisation naming sup-1 changes nothing here.
                      TeamSet(1, 0, "team-1", {"sup-1"}, {"cm-1"}, "tenant-b")});
  EXPECT_EQ(Reasons(outcome), (std::vector<std::string>{"early:no_relationship", "late:no_relationship"}));
}

TEST(RecheckTest, CaseloadsOfOthersNeedSupervisionOfTheSubject) {
  // GetCaseload keeps its subject (case_manager_id) as the record's resource id.
  auto caseload = [](const std::string& id, int minute, const std::string& actor, const std::string& role,
                     const std::string& subject, const std::string& relationship) {
    ChainedRecord record = Read(id, minute, actor, role, kGetCaseload, {}, relationship, ViewsSnapshot().version());
    record.set_resource_id(subject);
    return record;
  };
  auto outcome = RecheckOf({caseload("own", 5, "cm-1", "case_manager", "", "self"),
                      caseload("own-named", 5, "cm-1", "case_manager", "cm-1", "self"),
                      caseload("other", 5, "cm-1", "case_manager", "cm-2", "self"),
                      caseload("supervised", 15, "sup-1", "supervisor", "cm-1", "supervises"),
                      caseload("not-yet", 5, "sup-1", "supervisor", "cm-1", "supervises")},
                     {TeamSet(1, 10, "team-1", {"sup-1"}, {"cm-1"})});
  EXPECT_EQ(Reasons(outcome), (std::vector<std::string>{"not-yet:no_relationship", "other:no_relationship"}));
}

TEST(RecheckTest, OnlyAllowedAccessRecordsAreRechecked) {
  ChainedRecord denied = GetCase("denied", 5, "cm-2", "case_manager", "case-1", "");
  denied.set_outcome(audit::v1::AccessOutcome_Name(audit::v1::ACCESS_OUTCOME_DENIED));
  ChainedRecord event = GetCase("event", 5, "cm-2", "case_manager", "case-1", "");
  event.set_kind(audit::v1::RECORD_KIND_EVENT);
  auto outcome = RecheckOf({denied, event}, {Opened("case-1", 0)});
  EXPECT_EQ(outcome.records_checked, 0);
  EXPECT_TRUE(outcome.findings.empty());
}

TEST(RecheckTest, FindingsAreOldestFirstAndTruncatedAtTheLimit) {
  std::vector<ChainedRecord> reads;
  for (int i = 4; i >= 0; --i) reads.push_back(GetCase(absl::StrCat("r", i), i, "cm-2", "case_manager", "case-1", "assigned"));
  auto outcome = RecheckOf(reads, {Opened("case-1", 0), Assigned("case-1", 2, 0, "cm-1")}, 3);
  EXPECT_EQ(outcome.records_checked, 5);
  EXPECT_TRUE(outcome.truncated);
  EXPECT_EQ(Reasons(outcome),
            (std::vector<std::string>{"r0:no_relationship", "r1:no_relationship", "r2:no_relationship"}));
  EXPECT_FALSE(RecheckOf(reads, {Opened("case-1", 0)}, 5).truncated);
}

TEST(RecheckTest, TheNamedCaseIsTheFirstCaseIdForCaseRulesOnly) {
  const PolicyIndex policies({CaseSnapshot(), ViewsSnapshot()});
  ChainedRecord read = GetCase("r1", 5, "cm-1", "case_manager", "case-1", "assigned");
  read.add_case_ids("case-2");
  const common::v1::AccessPolicy* policy = policies.PolicyOf(read);
  ASSERT_NE(policy, nullptr);
  EXPECT_EQ(NamedCaseOf(read, *policy), "case-1");
  ChainedRecord caseload = Read("r2", 5, "cm-1", "case_manager", kGetCaseload, {"case-3"}, "self", ViewsSnapshot().version());
  ASSERT_NE(policies.PolicyOf(caseload), nullptr);
  EXPECT_EQ(NamedCaseOf(caseload, *policies.PolicyOf(caseload)), std::nullopt);
  EXPECT_EQ(CasesToFold({read, caseload}, policies), (std::set<std::string>{"case-1"}));
}

TEST(RecheckTest, PolicyIndexKeepsTheFirstSnapshotOfAKeyAndIgnoresUnnamedOnes) {
  audit::v1::AccessPolicySnapshot emptied = CaseSnapshot();
  emptied.clear_methods();
  audit::v1::AccessPolicySnapshot unnamed = CaseSnapshot();
  unnamed.clear_version();
  const ChainedRecord read = GetCase("r1", 5, "cm-1", "case_manager", "case-1", "assigned");
  EXPECT_NE(PolicyIndex({CaseSnapshot(), emptied}).PolicyOf(read), nullptr);
  EXPECT_EQ(PolicyIndex({emptied, CaseSnapshot()}).PolicyOf(read), nullptr);
  EXPECT_EQ(PolicyIndex({unnamed}).PolicyOf(read), nullptr);
}

}  // namespace
}  // namespace clinical::audit

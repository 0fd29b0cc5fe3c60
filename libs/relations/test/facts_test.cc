// The relations folds and decisions as pure functions: events in, facts and relations out.
#include "clinical/access/decision.h"
#include "clinical/relations/directory.h"
#include "clinical/relations/facts.h"
#include "gtest/gtest.h"

namespace clinical::relations {
namespace {

namespace casev1 = case_::v1;

class Events {
 public:
  explicit Events(std::string tenant = "tenant-a") : tenant_(std::move(tenant)) {}

  common::v1::EventEnvelope Case(const std::string& case_id, const casev1::CaseEvent& event) {
    common::v1::EventEnvelope envelope;
    envelope.set_aggregate_type("case");
    envelope.set_aggregate_id(case_id);
    envelope.set_aggregate_version(++versions_[case_id]);
    envelope.set_tenant_id(tenant_);
    envelope.mutable_payload()->PackFrom(event);
    return envelope;
  }
  common::v1::EventEnvelope Organisation(const casev1::OrganisationEvent& event) {
    common::v1::EventEnvelope envelope;
    envelope.set_aggregate_type("organisation");
    envelope.set_aggregate_id(OrganisationId(tenant_));
    envelope.set_aggregate_version(++versions_["org"]);
    envelope.set_tenant_id(tenant_);
    envelope.mutable_payload()->PackFrom(event);
    return envelope;
  }

 private:
  std::string tenant_;
  std::map<std::string, int64_t> versions_;
};

casev1::CaseEvent Opened(const std::string& team, casev1::CaseStatus status = casev1::CASE_STATUS_ACTIVE) {
  casev1::CaseEvent event;
  event.mutable_case_opened()->set_team_id(team);
  event.mutable_case_opened()->set_status(status);
  return event;
}
casev1::CaseEvent Assigned(const std::string& manager) {
  casev1::CaseEvent event;
  event.mutable_case_assigned()->set_case_manager_id(manager);
  return event;
}
casev1::CaseEvent StaffAdded(const std::string& member, const std::string& user) {
  casev1::CaseEvent event;
  event.mutable_care_team_member_added()->mutable_member()->set_member_id(member);
  event.mutable_care_team_member_added()->mutable_member()->set_staff_user_id(user);
  return event;
}
casev1::CaseEvent MemberRemoved(const std::string& member) {
  casev1::CaseEvent event;
  event.mutable_care_team_member_removed()->set_member_id(member);
  return event;
}
casev1::CaseEvent Granted(const std::string& grant, const std::string& user, absl::Time expires) {
  casev1::CaseEvent event;
  auto* g = event.mutable_emergency_access_granted()->mutable_grant();
  g->set_grant_id(grant);
  g->set_user_id(user);
  g->mutable_expires_at()->set_seconds(absl::ToUnixSeconds(expires));
  return event;
}
casev1::OrganisationEvent Team(const std::string& id, std::vector<std::string> supervisors,
                               std::vector<std::string> members) {
  casev1::OrganisationEvent event;
  auto* team = event.mutable_team_set()->mutable_team();
  team->set_team_id(id);
  for (auto& s : supervisors) team->add_supervisor_ids(s);
  for (auto& m : members) team->add_member_ids(m);
  return event;
}

access::Principal Person(const std::string& user, const std::string& tenant = "tenant-a") {
  return access::Principal{user, tenant, common::v1::ROLE_CASE_MANAGER};
}

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

// What the case service writes: the event message itself, named by event_type (its
// ToEnvelope), not the oneof wrapper.
common::v1::EventEnvelope AsWritten(common::v1::EventEnvelope envelope, const google::protobuf::Message& event) {
  envelope.set_event_type(event.GetDescriptor()->full_name());
  envelope.mutable_payload()->PackFrom(event);
  return envelope;
}

TEST(RelationsTest, EnvelopesAsTheCaseServiceWritesThemFold) {
  Events events;
  Directory directory([] { return kNow; });
  casev1::TeamSet team = Team("north", {"sup-1"}, {"cm-1"}).team_set();
  ASSERT_TRUE(directory.Apply(AsWritten(events.Organisation({}), team)));
  casev1::OrganisationConfigured configured;
  configured.add_privacy_officer_ids("po-1");
  ASSERT_TRUE(directory.Apply(AsWritten(events.Organisation({}), configured)));

  ASSERT_TRUE(directory.Apply(AsWritten(events.Case("case-1", {}), Opened("north").case_opened())));
  ASSERT_TRUE(directory.Apply(AsWritten(events.Case("case-1", {}), Assigned("cm-1").case_assigned())));
  auto relations = directory.RelationsTo(Person("cm-1"), "case-1");
  ASSERT_TRUE(relations.ok());
  EXPECT_EQ(relations->where, access::CaseRelations::Where::kInTenant);
  EXPECT_TRUE(relations->assigned);
  EXPECT_TRUE(directory.RelationsTo(Person("sup-1"), "case-1")->team_supervisor);
  EXPECT_EQ(directory.Organisation("tenant-a").privacy_officer_ids, std::vector<std::string>{"po-1"});

  ASSERT_TRUE(directory.Apply(AsWritten(events.Case("case-1", {}), casev1::CaseClosed())));
  EXPECT_EQ(directory.Case("case-1")->status, casev1::CASE_STATUS_FINISHED);
  EXPECT_EQ(directory.Case("case-1")->version, 3);
  EXPECT_EQ(directory.case_count(), 1u);

  // A message of no case event (here an organisation event on the case topic) does not fold.
  common::v1::EventEnvelope stray = AsWritten(events.Case("case-2", {}), configured);
  EXPECT_FALSE(directory.Apply(stray));
  EXPECT_FALSE(directory.RelationsTo(Person("cm-1"), "case-2")->assigned);
}

TEST(RelationsTest, AssignmentCareTeamAndSupervisionFollowTheEvents) {
  Events events;
  Directory directory([] { return kNow; });
  directory.Apply(events.Organisation(Team("north", {"sup-1"}, {"cm-1", "cm-2"})));
  directory.Apply(events.Organisation(Team("south", {"sup-2"}, {"cm-3"})));
  directory.Apply(events.Case("case-1", Opened("")));

  auto unassigned = directory.RelationsTo(Person("cm-1"), "case-1");
  ASSERT_TRUE(unassigned.ok());
  EXPECT_EQ(unassigned->where, access::CaseRelations::Where::kInTenant);
  EXPECT_TRUE(unassigned->unassigned);
  EXPECT_FALSE(unassigned->assigned);

  directory.Apply(events.Case("case-1", Assigned("cm-1")));
  EXPECT_TRUE(directory.RelationsTo(Person("cm-1"), "case-1")->assigned);
  EXPECT_FALSE(directory.RelationsTo(Person("cm-1"), "case-1")->unassigned);
  EXPECT_FALSE(directory.RelationsTo(Person("cm-2"), "case-1")->assigned);
  // The team of the case manager: its supervisor, not the other team's.
  EXPECT_TRUE(directory.RelationsTo(Person("sup-1"), "case-1")->team_supervisor);
  EXPECT_FALSE(directory.RelationsTo(Person("sup-2"), "case-1")->team_supervisor);

  directory.Apply(events.Case("case-1", StaffAdded("member-1", "cm-3")));
  EXPECT_TRUE(directory.RelationsTo(Person("cm-3"), "case-1")->care_team);
  directory.Apply(events.Case("case-1", MemberRemoved("member-1")));
  EXPECT_FALSE(directory.RelationsTo(Person("cm-3"), "case-1")->care_team);

  EXPECT_TRUE(*directory.Supervises(Person("sup-1"), "cm-2"));
  EXPECT_FALSE(*directory.Supervises(Person("sup-1"), "cm-3"));
  EXPECT_FALSE(*directory.Supervises(Person("sup-1", "tenant-b"), "cm-2")) << "teams are per tenant";
}

TEST(RelationsTest, TheCasesTeamGivesItsSupervisorEvenUnassigned) {
  Events events;
  Directory directory([] { return kNow; });
  directory.Apply(events.Organisation(Team("north", {"sup-1"}, {})));
  directory.Apply(events.Case("case-1", Opened("north", casev1::CASE_STATUS_WAITLIST)));
  EXPECT_TRUE(directory.RelationsTo(Person("sup-1"), "case-1")->team_supervisor);
  EXPECT_TRUE(directory.RelationsTo(Person("sup-1"), "case-1")->unassigned);
}

TEST(RelationsTest, AnotherTenantsCaseAndAnUnknownOneAreToldApart) {
  Events other("tenant-b");
  Directory directory([] { return kNow; });
  directory.Apply(other.Case("case-b", Opened("")));
  EXPECT_EQ(directory.RelationsTo(Person("cm-1"), "case-b")->where, access::CaseRelations::Where::kOtherTenant);
  EXPECT_EQ(directory.RelationsTo(Person("cm-1"), "nope")->where, access::CaseRelations::Where::kUnknown);
}

TEST(RelationsTest, EmergencyGrantsHoldUntilTheyExpire) {
  Events events;
  absl::Time now = kNow;
  Directory directory([&] { return now; });
  directory.Apply(events.Case("case-1", Opened("")));
  directory.Apply(events.Case("case-1", Granted("emergency-1", "cm-9", kNow + absl::Minutes(30))));
  EXPECT_EQ(directory.RelationsTo(Person("cm-9"), "case-1")->emergency_grant_id, "emergency-1");
  EXPECT_EQ(directory.RelationsTo(Person("cm-8"), "case-1")->emergency_grant_id, "");
  now = kNow + absl::Minutes(30);
  EXPECT_EQ(directory.RelationsTo(Person("cm-9"), "case-1")->emergency_grant_id, "") << "expired";
}

TEST(RelationsTest, AnEnvelopeSeenAgainIsNotFoldedTwice) {
  Events events;
  Directory directory([] { return kNow; });
  directory.Apply(events.Case("case-1", Opened("team-1")));
  const auto grant = events.Case("case-1", Granted("emergency-1", "cm-9", kNow + absl::Minutes(30)));
  EXPECT_TRUE(directory.Apply(grant));
  EXPECT_TRUE(directory.Apply(grant)) << "a re-read is not an error";
  EXPECT_EQ(directory.Case("case-1")->grants.size(), 1u);
  EXPECT_EQ(directory.Case("case-1")->version, 2);
  // An older envelope after a newer one (a re-read from an earlier offset) changes nothing.
  Events replayed;
  const auto opened_again = replayed.Case("case-1", Opened("team-2"));
  EXPECT_TRUE(directory.Apply(opened_again));
  EXPECT_EQ(directory.Case("case-1")->team_id, "team-1");
  const auto team = events.Organisation(Team("team-1", {"sup-1"}, {"cm-1"}));
  directory.Apply(team);
  directory.Apply(team);
  EXPECT_EQ(directory.Organisation("tenant-a").version, 1);
}

TEST(RelationsTest, TheCatchUpRunsBeforeEveryAnswer) {
  int calls = 0;
  Directory directory([] { return kNow; }, [&](const std::string&) {
    ++calls;
    return calls > 1 ? absl::UnavailableError("behind") : absl::OkStatus();
  });
  EXPECT_TRUE(directory.RelationsTo(Person("cm-1"), "case-1").ok());
  EXPECT_EQ(directory.Supervises(Person("cm-1"), "cm-2").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(calls, 2);
}

TEST(RelationsTest, TheOrganisationFoldsConfigurationAndTeams) {
  Events events;
  OrganisationFacts facts;
  casev1::OrganisationEvent configured;
  configured.mutable_organisation_configured()->add_privacy_officer_ids("po-1");
  configured.mutable_organisation_configured()->set_emergency_access_max_minutes(60);
  ASSERT_TRUE(ApplyOrganisationEvent(facts, events.Organisation(configured)));
  ASSERT_TRUE(ApplyOrganisationEvent(facts, events.Organisation(Team("north", {"sup-1"}, {"cm-1"}))));
  ASSERT_TRUE(ApplyOrganisationEvent(facts, events.Organisation(Team("north", {"sup-2"}, {"cm-1"}))));
  const casev1::Organisation shown = ToProto(facts);
  EXPECT_EQ(shown.tenant_id(), "tenant-a");
  EXPECT_EQ(shown.version(), 3);
  ASSERT_EQ(shown.teams_size(), 1) << "a team set again replaces the team";
  EXPECT_EQ(shown.teams(0).supervisor_ids(0), "sup-2");
  EXPECT_EQ(shown.privacy_officer_ids(0), "po-1");
  EXPECT_EQ(shown.emergency_access_max_minutes(), 60);
}

}  // namespace
}  // namespace clinical::relations

// The case's own access rules (access_rules.h) and the organisation's (organisation.h), as
// plain tests of pure functions.
#include <string>

#include "access_rules.h"
#include "case_domain.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "organisation.h"

namespace clinical::case_service {
namespace {

using google::protobuf::util::TimeUtil;

const absl::Time kNow = absl::FromUnixSeconds(1'767'225'600);

google::protobuf::Timestamp At(absl::Time t) { return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t)); }

v1::Note NoteBy(const std::string& id, const std::string& author, v1::InformationCategory category) {
  v1::Note note;
  note.set_note_id(id);
  note.set_author_id(author);
  note.set_category(category);
  return note;
}

// A case with one ordinary note, one substance-use note, a PHQ-9 and an AUDIT-C, and a
// care-team member who is staff (user "nurse-1").
CaseState CaseWithPart2Records() {
  CaseState state = NewCase("case-1", "tenant-a");
  *state.add_notes() = NoteBy("note-1", "cm-1", v1::INFORMATION_CATEGORY_UNSPECIFIED);
  *state.add_notes() = NoteBy("note-2", "cm-1", v1::INFORMATION_CATEGORY_SUBSTANCE_USE);
  v1::Assessment* phq = state.add_assessments();
  phq->set_assessment_id("assessment-1");
  phq->set_instrument(v1::ASSESSMENT_INSTRUMENT_PHQ9);
  v1::Assessment* audit = state.add_assessments();
  audit->set_assessment_id("assessment-2");
  audit->set_instrument(v1::ASSESSMENT_INSTRUMENT_AUDIT_C);
  v1::CareTeamMember* nurse = state.add_care_team();
  nurse->set_member_id("member-1");
  nurse->set_staff_user_id("nurse-1");
  nurse->set_active(true);
  return state;
}

v1::Consent SubstanceUseConsentFor(const std::string& member_id) {
  v1::Consent consent;
  consent.set_consent_id("consent-1");
  consent.add_member_ids(member_id);
  consent.add_categories(v1::INFORMATION_CATEGORY_SUBSTANCE_USE);
  return consent;
}

TEST(NoteCorrectionTest, OnlyTheAuthorOrASupervisorOfTheTeam) {
  const v1::Note note = NoteBy("note-1", "cm-1", v1::INFORMATION_CATEGORY_UNSPECIFIED);
  EXPECT_TRUE(CheckNoteCorrection(note, "cm-1", "assigned").ok());
  EXPECT_TRUE(CheckNoteCorrection(note, "cm-1", "care_team").ok()) << "its author, however allowed in";
  EXPECT_TRUE(CheckNoteCorrection(note, "sup-1", "team_supervisor").ok());
  EXPECT_EQ(CheckNoteCorrection(note, "cm-2", "assigned").code(), absl::StatusCode::kPermissionDenied)
      << "the case's manager now, not the note's author";
  EXPECT_EQ(CheckNoteCorrection(note, "cm-3", "care_team").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(CheckNoteCorrection(note, "cm-4", "emergency").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(CheckNoteCorrection(NoteBy("note-2", "", v1::INFORMATION_CATEGORY_UNSPECIFIED), "", "assigned").code(),
            absl::StatusCode::kPermissionDenied)
      << "no author is nobody's note";
}

TEST(EffectiveTimeTest, NotInTheFutureNorBeforeTheCasesLatestEvent) {
  const absl::Time latest = kNow - absl::Hours(5);
  EXPECT_FALSE(CheckEffectiveTime(kNow - absl::Hours(1), latest, kNow).has_value());
  EXPECT_FALSE(CheckEffectiveTime(latest, latest, kNow).has_value()) << "the same instant is not before";
  EXPECT_FALSE(CheckEffectiveTime(kNow, latest, kNow).has_value());
  EXPECT_EQ(CheckEffectiveTime(kNow + absl::Seconds(1), latest, kNow), "must not be in the future");
  auto early = CheckEffectiveTime(latest - absl::Seconds(1), latest, kNow);
  ASSERT_TRUE(early.has_value());
  EXPECT_NE(early->find("before the case's latest event"), std::string::npos) << *early;
  EXPECT_FALSE(CheckEffectiveTime(kNow - absl::Hours(24 * 400), std::nullopt, kNow).has_value())
      << "a case without events bounds nothing";
}

TEST(EffectiveTimeTest, LatestEventTimeIsTheCasesUpdatedAt) {
  CaseState state = NewCase("case-1", "tenant-a");
  EXPECT_FALSE(LatestEventTime(state).has_value());
  state.set_version(3);
  *state.mutable_updated_at() = At(kNow - absl::Minutes(7));
  EXPECT_EQ(LatestEventTime(state), kNow - absl::Minutes(7));
}

TEST(SubstanceUseViewerTest, ProgramStaffAndEmergencySeeEveryRecord) {
  const CaseState state = CaseWithPart2Records();
  EXPECT_TRUE(MaySeeSubstanceUseRecords(state, "cm-1", "assigned", kNow));
  EXPECT_TRUE(MaySeeSubstanceUseRecords(state, "sup-1", "team_supervisor", kNow));
  EXPECT_TRUE(MaySeeSubstanceUseRecords(state, "cm-9", "emergency", kNow)) << "42 CFR 2.51";
  EXPECT_FALSE(MaySeeSubstanceUseRecords(state, "nurse-1", "care_team", kNow)) << "no consent";
  EXPECT_FALSE(MaySeeSubstanceUseRecords(state, "intake-1", "unassigned", kNow));
  EXPECT_FALSE(MaySeeSubstanceUseRecords(state, "sched-1", "tenant", kNow));
}

TEST(SubstanceUseViewerTest, AConsentCoversTheStaffMemberItNamesUntilRevokedOrExpired) {
  CaseState state = CaseWithPart2Records();
  *state.add_consents() = SubstanceUseConsentFor("member-1");
  EXPECT_TRUE(MaySeeSubstanceUseRecords(state, "nurse-1", "care_team", kNow));
  EXPECT_FALSE(MaySeeSubstanceUseRecords(state, "nurse-2", "care_team", kNow)) << "names member-1 only";

  CaseState other_category = CaseWithPart2Records();
  v1::Consent mental_health = SubstanceUseConsentFor("member-1");
  mental_health.set_categories(0, v1::INFORMATION_CATEGORY_BEHAVIORAL_HEALTH);
  *other_category.add_consents() = mental_health;
  EXPECT_FALSE(MaySeeSubstanceUseRecords(other_category, "nurse-1", "care_team", kNow));

  CaseState expired = CaseWithPart2Records();
  v1::Consent lapsed = SubstanceUseConsentFor("member-1");
  *lapsed.mutable_expires_at() = At(kNow);
  *expired.add_consents() = lapsed;
  EXPECT_FALSE(MaySeeSubstanceUseRecords(expired, "nurse-1", "care_team", kNow));
  EXPECT_TRUE(MaySeeSubstanceUseRecords(expired, "nurse-1", "care_team", kNow - absl::Seconds(1)));

  state.mutable_consents(0)->set_revoked(true);
  EXPECT_FALSE(MaySeeSubstanceUseRecords(state, "nurse-1", "care_team", kNow)) << "revocation: the next read";

  CaseState removed = CaseWithPart2Records();
  *removed.add_consents() = SubstanceUseConsentFor("member-1");
  removed.mutable_care_team(0)->set_active(false);
  EXPECT_FALSE(MaySeeSubstanceUseRecords(removed, "nurse-1", "care_team", kNow)) << "no longer on the care team";
}

TEST(SubstanceUseFilterTest, RemovesTheNotesAndAuditCAndTheirEvents) {
  CaseState state = CaseWithPart2Records();
  const SubstanceUseRecords records = SubstanceUseRecordsOf(state);
  EXPECT_EQ(records.note_ids, (std::set<std::string>{"note-2"}));
  EXPECT_EQ(records.assessment_ids, (std::set<std::string>{"assessment-2"}));

  ASSERT_TRUE(RemoveSubstanceUseRecords(state));
  ASSERT_EQ(state.notes_size(), 1);
  EXPECT_EQ(state.notes(0).note_id(), "note-1");
  ASSERT_EQ(state.assessments_size(), 1);
  EXPECT_EQ(state.assessments(0).assessment_id(), "assessment-1");
  EXPECT_FALSE(RemoveSubstanceUseRecords(state)) << "nothing left to remove";

  v1::CaseEvent added;
  added.mutable_note_added()->set_note_id("note-2");
  EXPECT_TRUE(IsSubstanceUseEvent(added, records));
  v1::CaseEvent amended;
  amended.mutable_note_amended()->set_note_id("note-2");
  EXPECT_TRUE(IsSubstanceUseEvent(amended, records));
  amended.mutable_note_amended()->set_note_id("note-1");
  EXPECT_FALSE(IsSubstanceUseEvent(amended, records));
  v1::CaseEvent erred;
  erred.mutable_note_entered_in_error()->set_note_id("note-2");
  EXPECT_TRUE(IsSubstanceUseEvent(erred, records));
  v1::CaseEvent assessed;
  assessed.mutable_assessment_recorded()->set_assessment_id("assessment-2");
  assessed.mutable_assessment_recorded()->set_instrument(v1::ASSESSMENT_INSTRUMENT_AUDIT_C);
  EXPECT_TRUE(IsSubstanceUseEvent(assessed, records));
  v1::CaseEvent risk;
  risk.mutable_high_risk_identified()->set_assessment_id("assessment-2");
  EXPECT_TRUE(IsSubstanceUseEvent(risk, records));
  v1::CaseEvent phq;
  phq.mutable_assessment_recorded()->set_assessment_id("assessment-1");
  phq.mutable_assessment_recorded()->set_instrument(v1::ASSESSMENT_INSTRUMENT_PHQ9);
  EXPECT_FALSE(IsSubstanceUseEvent(phq, records));
  v1::CaseEvent opened;
  opened.mutable_case_opened();
  EXPECT_FALSE(IsSubstanceUseEvent(opened, records));
}

TEST(EmergencyAccessRulesTest, DurationWithinTheTenantsLimit) {
  EXPECT_EQ(EmergencyAccessLimit(0), relations::kDefaultEmergencyAccessMaxMinutes);
  EXPECT_EQ(EmergencyAccessLimit(60), 60);
  EXPECT_FALSE(CheckEmergencyDuration(1, 0).has_value());
  EXPECT_FALSE(CheckEmergencyDuration(240, 0).has_value());
  EXPECT_TRUE(CheckEmergencyDuration(241, 0).has_value());
  EXPECT_TRUE(CheckEmergencyDuration(0, 0).has_value());
  EXPECT_FALSE(CheckEmergencyDuration(60, 60).has_value());
  auto over = CheckEmergencyDuration(61, 60);
  ASSERT_TRUE(over.has_value());
  EXPECT_NE(over->find("between 1 and 60"), std::string::npos) << *over;
}

v1::EmergencyAccessGrant Grant(const std::string& id, const std::string& user, absl::Time granted,
                               absl::Duration length = absl::Hours(1)) {
  v1::EmergencyAccessGrant grant;
  grant.set_grant_id(id);
  grant.set_user_id(user);
  *grant.mutable_granted_at() = At(granted);
  *grant.mutable_expires_at() = At(granted + length);
  return grant;
}

TEST(EmergencyAccessRulesTest, AnActiveGrantIsOneThatHasNotExpired) {
  CaseState state = NewCase("case-1", "tenant-a");
  *state.add_emergency_access() = Grant("emergency-1", "cm-9", kNow - absl::Hours(2));
  EXPECT_EQ(ActiveGrantOf(state, "cm-9", kNow), nullptr) << "expired an hour ago";
  *state.add_emergency_access() = Grant("emergency-2", "cm-9", kNow - absl::Minutes(10));
  ASSERT_NE(ActiveGrantOf(state, "cm-9", kNow), nullptr);
  EXPECT_EQ(ActiveGrantOf(state, "cm-9", kNow)->grant_id(), "emergency-2");
  EXPECT_EQ(ActiveGrantOf(state, "cm-8", kNow), nullptr);
  EXPECT_EQ(ActiveGrantOf(state, "cm-9", kNow + absl::Minutes(50)), nullptr) << "expires by itself";
}

TEST(EmergencyAccessRulesTest, ListUnreviewedFirstThenNewestAndRepeatedUse) {
  std::vector<v1::CaseEmergencyAccess> grants;
  auto add = [&](const std::string& case_id, v1::EmergencyAccessGrant grant, bool reviewed) {
    if (reviewed) grant.mutable_review()->set_justified(true);
    v1::CaseEmergencyAccess& entry = grants.emplace_back();
    entry.set_case_id(case_id);
    *entry.mutable_grant() = grant;
  };
  add("case-a", Grant("emergency-1", "cm-9", kNow - absl::Hours(24 * 40)), false);  // before the period
  add("case-a", Grant("emergency-2", "cm-9", kNow - absl::Hours(5)), true);
  add("case-b", Grant("emergency-1", "cm-9", kNow - absl::Hours(4)), false);
  add("case-c", Grant("emergency-1", "cm-9", kNow - absl::Hours(3)), false);
  add("case-c", Grant("emergency-2", "sup-4", kNow - absl::Hours(1)), true);

  EmergencyAccessQuery query;
  query.since = kNow - absl::Hours(24 * 30);
  v1::ListEmergencyAccessResponse listed = ListEmergencyAccess(grants, query);
  ASSERT_EQ(listed.grants_size(), 4);
  EXPECT_EQ(listed.grants(0).case_id(), "case-c") << "unreviewed, newest";
  EXPECT_EQ(listed.grants(1).case_id(), "case-b");
  EXPECT_EQ(listed.grants(2).grant().user_id(), "sup-4") << "reviewed, newest";
  EXPECT_EQ(listed.grants(3).case_id(), "case-a");
  ASSERT_EQ(listed.repeated_use_size(), 1);
  EXPECT_EQ(listed.repeated_use(0).user_id(), "cm-9");
  EXPECT_EQ(listed.repeated_use(0).grants(), 3) << "reviewed ones count too; the old one is outside the period";
  EXPECT_EQ(listed.repeated_use(0).first_granted_at(), At(kNow - absl::Hours(5)));
  EXPECT_EQ(listed.repeated_use(0).last_granted_at(), At(kNow - absl::Hours(3)));

  query.unreviewed_only = true;
  query.page_size = 1;
  query.repeated_use_threshold = 4;
  listed = ListEmergencyAccess(grants, query);
  ASSERT_EQ(listed.grants_size(), 1);
  EXPECT_EQ(listed.grants(0).case_id(), "case-c");
  EXPECT_EQ(listed.repeated_use_size(), 0);
}

TEST(OrganisationRulesTest, ConfigurationIsTakenAsGiven) {
  relations::OrganisationFacts facts;
  v1::ConfigureOrganisationRequest configure;
  configure.add_privacy_officer_ids("privacy-1");
  configure.set_emergency_access_max_minutes(60);
  auto event = DecideOrganisation(facts, configure);
  ASSERT_TRUE(event.ok()) << event.status();
  ASSERT_TRUE(event->has_organisation_configured());
  EXPECT_EQ(event->organisation_configured().privacy_officer_ids(0), "privacy-1");
  EXPECT_EQ(event->organisation_configured().emergency_access_max_minutes(), 60);
}

TEST(OrganisationRulesTest, ATeamReplacesItselfButNotAnotherTeamsName) {
  relations::OrganisationFacts facts;
  v1::SetTeamRequest north;
  north.mutable_team()->set_team_id("team-north");
  north.mutable_team()->set_name("North");
  north.mutable_team()->add_supervisor_ids("sup-1");
  auto event = DecideOrganisation(facts, north);
  ASSERT_TRUE(event.ok()) << event.status();
  relations::ApplyOrganisationEvent(facts, *event);
  north.mutable_team()->add_member_ids("cm-1");
  EXPECT_TRUE(DecideOrganisation(facts, north).ok()) << "the same team, changed";
  v1::SetTeamRequest clash = north;
  clash.mutable_team()->set_team_id("team-south");
  EXPECT_EQ(DecideOrganisation(facts, clash).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace clinical::case_service

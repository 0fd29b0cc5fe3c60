// Least-privilege authorization end to end (issue "Trust II", docs/security.md "Access
// control"): the five services run as real processes; an organisation (teams, supervisors,
// a privacy officer), cases, a care team, a calendar and an appointment are set up through
// the APIs as the people who would do it. Then:
//
//  * the matrix: every method of every service, called by every kind of person — the case's
//    assigned case manager, a care-team colleague, the team's supervisor, case managers and
//    supervisors of another team, an intake coordinator, a scheduler, an auditor, a privacy
//    officer, an administrator, and people of another tenant — must be let through exactly
//    when the method's policy (its clinical.common.v1.access rules) and the person's
//    relationships, as this test set them up, allow it. A refusal is PERMISSION_DENIED (or
//    NOT_FOUND for another tenant's case, revealing nothing) and leaves a DENIED access
//    record; a write let through without a command id is INVALID_ARGUMENT, so the matrix
//    changes nothing;
//  * minimum necessary: a scheduler and an intake coordinator see only their fields;
//  * 42 CFR Part 2: substance-use notes only to the program's staff or under consent;
//  * break the glass: a grant opens one case for a bounded time, recorded as emergency,
//    notified to the privacy officer and the team's supervisor, reviewed afterwards;
//  * policy at the time: a reassignment entered late makes a read that was allowed then
//    show up in the audit service's re-check.
#include <iostream>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "clinical/audit/v1/audit_service.grpc.pb.h"
#include "clinical/case/v1/case_service.grpc.pb.h"
#include "clinical/common/v1/access_policy.pb.h"
#include "clinical/notification/v1/notification_service.grpc.pb.h"
#include "clinical/scheduling/v1/scheduling_service.grpc.pb.h"
#include "clinical/testing/identity.h"
#include "clinical/testing/organisation.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/service_suite.h"
#include "clinical/testing/wait.h"
#include "clinical/testing/workflows.h"
#include "google/protobuf/dynamic_message.h"
#include "gtest/gtest.h"

namespace clinical {
namespace {

namespace cv1 = case_::v1;
namespace sv1 = scheduling::v1;
namespace nv1 = notification::v1;
namespace av1 = audit::v1;
using common::v1::Relationship;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::MethodDescriptor;
using testing::CallAs;
using testing::Person;
using testing::ServiceSuite;
using testing::UniqueName;

constexpr char kTenant[] = "tenant-authz";
constexpr char kOtherTenant[] = "tenant-authz-other";

// A person of the test and what this test made them to the cases and to the case manager
// "cm-a" (the subject of calendars, caseloads and inboxes in the matrix).
struct Persona {
  std::string label;
  Person person;
  std::set<Relationship> to_assigned_case;    // case A: assigned to cm-a, cm-b on its care team
  std::set<Relationship> to_unassigned_case;  // case U: not assigned yet
  bool is_subject = false;                    // is cm-a
  bool supervises_subject = false;            // supervises cm-a's team
};

common::v1::Role RoleOf(const std::string& role) {
  common::v1::Role parsed = common::v1::ROLE_UNSPECIFIED;
  common::v1::Role_Parse("ROLE_" + absl::AsciiStrToUpper(role), &parsed);
  return parsed;
}

class AuthorizationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto started = ServiceSuite::Start("authz");
    ASSERT_TRUE(started.ok()) << started.status();
    suite_ = started->release();
    ids_ = new Ids();

    // The organisation, as its administrator sets it up.
    {
      auto cases = cv1::CaseService::NewStub(suite_->Channel("case"));
      const absl::Status configured = testing::ConfigureOrganisationThroughApi(
          *cases, {.tenant = kTenant,
                   .administrator = "adm-1",
                   .privacy_officer_ids = {"po-1"},
                   .emergency_access_max_minutes = 0,
                   .teams = {{.team_id = "team-a", .name = "Team A", .supervisor_ids = {"sup-a"},
                              .member_ids = {"cm-a", "cm-b"}},
                             {.team_id = "team-b", .name = "Team B", .supervisor_ids = {"sup-b"},
                              .member_ids = {"cm-c"}}}});
      ASSERT_TRUE(configured.ok()) << configured;
    }

    // Case A: opened by intake, assigned by the team's supervisor, a colleague on its care
    // team. Case U: opened, not assigned.
    ids_->assigned_case = OpenCase("team-a");
    ids_->unassigned_case = OpenCase("team-a");
    Assign(ids_->assigned_case, "cm-a", std::nullopt);
    ids_->colleague_member = AddStaffToCareTeam(ids_->assigned_case, "cm-b");

    // cm-a's calendar and an appointment of case A, made by a scheduler.
    {
      auto scheduling = sv1::SchedulingService::NewStub(suite_->Channel("scheduling"));
      sv1::CreateCalendarResponse created;
      const grpc::Status status = scheduling->CreateCalendar(
          testing::ContextFor(Scheduler()).get(), testing::AroundTheClockCalendar(UniqueName("cal"), "cm-a"), &created);
      ASSERT_TRUE(status.ok()) << status.error_message();
      ids_->calendar = created.calendar_id();
      sv1::BookAppointmentRequest booking;
      booking.set_command_id(UniqueName("book"));
      booking.set_case_id(ids_->assigned_case);
      booking.set_type(sv1::APPOINTMENT_TYPE_PHONE_FOLLOW_UP);
      *booking.mutable_start_time() = testing::ProtoTime(absl::FromUnixSeconds((absl::ToUnixSeconds(absl::Now()) / 3600 + 26) * 3600));
      booking.mutable_duration()->set_seconds(1800);
      booking.set_time_zone("America/New_York");
      sv1::BookAppointmentResponse booked;
      const grpc::Status booked_status =
          scheduling->BookAppointment(testing::ContextFor(Scheduler()).get(), booking, &booked);
      ASSERT_TRUE(booked_status.ok()) << booked_status.error_message();
      ids_->appointment = booked.appointment_id();
    }

    // The assignment reaches cm-a's inbox (the matrix's SubscribeInbox reads it).
    auto notifications = nv1::NotificationService::NewStub(suite_->Channel("notification"));
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
          nv1::GetUnreadCountRequest request;
          request.set_recipient_id("cm-a");
          nv1::GetUnreadCountResponse response;
          return notifications->GetUnreadCount(testing::ContextFor(As("cm-a", "case_manager")).get(), request, &response)
                     .ok() &&
                 response.unread_count() > 0;
        },
        absl::Seconds(60)));
  }

  static void TearDownTestSuite() {
    delete suite_;
    suite_ = nullptr;
    delete ids_;
  }

  void SetUp() override { ASSERT_NE(suite_, nullptr) << "the services did not start"; }

  // ---- people ----
  static CallAs As(const std::string& user, const std::string& role, const std::string& tenant = kTenant) {
    return CallAs{.person = Person{user, role, tenant}};
  }
  static CallAs Intake() { return As("int-1", "intake_coordinator"); }
  static CallAs Scheduler() { return As("sch-1", "scheduler"); }
  static CallAs Supervisor() { return As("sup-a", "supervisor"); }
  static CallAs PrivacyOfficer() { return As("po-1", "privacy_officer"); }
  static CallAs Auditor() { return As("aud-1", "auditor"); }

  // ---- set-up through the case service, each call required to succeed ----
  template <typename Fn>
  static void CallCase(const CallAs& as, Fn fn) {
    auto cases = cv1::CaseService::NewStub(suite_->Channel("case"));
    const grpc::Status status = fn(*cases, testing::ContextFor(as).get());
    ASSERT_TRUE(status.ok()) << as.person.user << ": " << status.error_message();
  }
  static std::string OpenCase(const std::string& team) {
    std::string case_id;
    CallCase(Intake(), [&](cv1::CaseService::Stub& cases, grpc::ClientContext* context) {
      cv1::OpenCaseResponse response;
      const grpc::Status status = cases.OpenCase(context, testing::ExampleIntake(UniqueName("open"), team), &response);
      case_id = response.case_id();
      return status;
    });
    return case_id;
  }
  static void Assign(const std::string& case_id, const std::string& manager, std::optional<absl::Time> occurred_at) {
    CallCase(Supervisor(), [&](cv1::CaseService::Stub& cases, grpc::ClientContext* context) {
      cv1::AssignCaseRequest request;
      request.set_case_id(case_id);
      request.set_command_id(UniqueName("assign"));
      request.set_case_manager_id(manager);
      if (occurred_at.has_value()) *request.mutable_occurred_at() = testing::ProtoTime(*occurred_at);
      cv1::AssignCaseResponse response;
      return cases.AssignCase(context, request, &response);
    });
  }
  static std::string AddStaffToCareTeam(const std::string& case_id, const std::string& staff) {
    std::string member_id;
    CallCase(As("cm-a", "case_manager"), [&](cv1::CaseService::Stub& cases, grpc::ClientContext* context) {
      cv1::AddCareTeamMemberRequest request;
      request.set_case_id(case_id);
      request.set_command_id(UniqueName("member"));
      request.set_role(cv1::CARE_TEAM_ROLE_PROVIDER);
      request.set_name("Colleague");
      request.set_organization("Community clinic");
      request.set_staff_user_id(staff);
      cv1::AddCareTeamMemberResponse response;
      const grpc::Status status = cases.AddCareTeamMember(context, request, &response);
      member_id = response.member_id();
      return status;
    });
    return member_id;
  }
  static cv1::Case GetCase(const CallAs& as, const std::string& case_id, grpc::Status* status) {
    auto cases = cv1::CaseService::NewStub(suite_->Channel("case"));
    cv1::GetCaseRequest request;
    request.set_case_id(case_id);
    cv1::GetCaseResponse response;
    *status = cases->GetCase(testing::ContextFor(as).get(), request, &response);
    return response.case_();
  }
  static av1::AccessRecord OneRecord(const std::string& trace_id) {
    const auto records = suite_->AccessRecordsOf(trace_id);
    EXPECT_EQ(records.size(), 1u) << "trace " << trace_id;
    return records.empty() ? av1::AccessRecord() : records.front();
  }

  struct Ids {
    std::string assigned_case, unassigned_case, colleague_member, calendar, appointment;
  };
  static inline ServiceSuite* suite_ = nullptr;
  static inline Ids* ids_ = nullptr;
};

// ---- the matrix ----

// The people of the matrix and their relationships, exactly as SetUpTestSuite made them.
std::vector<Persona> Personas() {
  using R = Relationship;
  const std::set<R> none;
  return {
      {"assigned case manager", {"cm-a", "case_manager", kTenant}, {R::RELATIONSHIP_ASSIGNED}, none, true, false},
      {"care-team colleague", {"cm-b", "case_manager", kTenant}, {R::RELATIONSHIP_CARE_TEAM}, none, false, false},
      {"other team's case manager", {"cm-c", "case_manager", kTenant}, none, none, false, false},
      {"team supervisor",
       {"sup-a", "supervisor", kTenant},
       {R::RELATIONSHIP_TEAM_SUPERVISOR},
       {R::RELATIONSHIP_TEAM_SUPERVISOR},
       false,
       true},
      {"other team's supervisor", {"sup-b", "supervisor", kTenant}, none, none, false, false},
      {"intake coordinator", {"int-1", "intake_coordinator", kTenant}, none, none, false, false},
      {"scheduler", {"sch-1", "scheduler", kTenant}, none, none, false, false},
      {"auditor", {"aud-1", "auditor", kTenant}, none, none, false, false},
      {"privacy officer", {"po-1", "privacy_officer", kTenant}, none, none, false, false},
      {"administrator", {"adm-1", "administrator", kTenant}, none, none, false, false},
      {"case manager of another tenant", {"cm-x", "case_manager", kOtherTenant}, none, none, false, false},
      {"supervisor of another tenant", {"sup-x", "supervisor", kOtherTenant}, none, none, false, false},
      {"auditor of another tenant", {"aud-x", "auditor", kOtherTenant}, none, none, false, false},
  };
}

// A request that names the test's resources in the fields the policies read, and nothing
// else: no command id, so a write that gets through is refused as INVALID_ARGUMENT.
struct MatrixRequest {
  std::unique_ptr<Message> message;
  bool names_case = false;
  bool names_calendar = false;  // a resource of the tenant that is not a case
};

MatrixRequest RequestFor(const MethodDescriptor& method, const std::string& case_id, const std::string& appointment,
                         const std::string& calendar) {
  MatrixRequest out;
  out.message.reset(google::protobuf::MessageFactory::generated_factory()->GetPrototype(method.input_type())->New());
  const auto* descriptor = method.input_type();
  const auto* reflection = out.message->GetReflection();
  auto set = [&](const char* name, const std::string& value) {
    const FieldDescriptor* field = descriptor->FindFieldByName(name);
    if (field == nullptr || field->cpp_type() != FieldDescriptor::CPPTYPE_STRING) return false;
    if (field->is_repeated()) {
      reflection->AddString(out.message.get(), field, value);
    } else {
      reflection->SetString(out.message.get(), field, value);
    }
    return true;
  };
  out.names_case |= set("case_id", case_id);
  out.names_case |= set("case_ids", case_id);
  out.names_case |= set("appointment_id", appointment);
  out.names_calendar = set("calendar_id", calendar);
  for (const char* subject : {"owner_id", "case_manager_id", "recipient_id", "from_case_manager_id"}) set(subject, "cm-a");
  // Reads of a session (SubscribeInbox) answer at once with what is unread.
  if (const FieldDescriptor* unread = descriptor->FindFieldByName("include_unread"); unread != nullptr) {
    reflection->SetBool(out.message.get(), unread, true);
  }
  return out;
}

enum class Expect { kThrough, kPermissionDenied, kNotFound };

// What the policy says for `persona` — written from the rules' meaning, independently of
// the services' engine (libs/access/decision.cc).
Expect Expected(const MethodDescriptor& method, const MatrixRequest& request, const Persona& persona,
                const std::set<Relationship>& to_case, bool case_is_unassigned) {
  const auto& policy = method.options().GetExtension(common::v1::access);
  const common::v1::Role role = RoleOf(persona.person.role);
  bool role_named = false;
  for (const auto& rule : policy.allow()) role_named |= rule.role() == role;
  if (!role_named) return Expect::kPermissionDenied;
  const bool other_tenant = persona.person.tenant != kTenant;
  if (other_tenant && request.names_case) return Expect::kNotFound;
  for (const auto& rule : policy.allow()) {
    if (rule.role() != role) continue;
    switch (rule.relationship()) {
      case common::v1::RELATIONSHIP_TENANT:
        // The tenant's own calendar, named by someone of another tenant: not found, as a
        // calendar that does not exist (the handler looks it up in the caller's tenant).
        return other_tenant && request.names_calendar ? Expect::kNotFound : Expect::kThrough;
      case common::v1::RELATIONSHIP_SELF:
        if (persona.is_subject && !other_tenant) return Expect::kThrough;
        break;
      case common::v1::RELATIONSHIP_SUPERVISES:
        if (persona.supervises_subject && !other_tenant) return Expect::kThrough;
        break;
      case common::v1::RELATIONSHIP_UNASSIGNED:  // a fact of the case, for anyone of its tenant
        if (request.names_case && case_is_unassigned && !other_tenant) return Expect::kThrough;
        break;
      default:
        if (request.names_case && to_case.count(rule.relationship()) > 0) return Expect::kThrough;
    }
  }
  return Expect::kPermissionDenied;
}

const char* Name(Expect e) {
  return e == Expect::kThrough ? "let through" : e == Expect::kNotFound ? "NOT_FOUND" : "PERMISSION_DENIED";
}

TEST_F(AuthorizationTest, EveryMethodLetsThroughExactlyWhomItsPolicyAllows) {
  struct Pending {
    std::string label;
    Expect expected;
    grpc::Status status;
    std::string trace_id;
    bool is_write;
  };
  std::vector<Pending> calls;
  int methods = 0;
  for (const std::string& service_name : ServiceSuite::GrpcServices()) {
    const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service_name);
    ASSERT_NE(service, nullptr) << service_name;
    for (int m = 0; m < service->method_count(); ++m) {
      const MethodDescriptor& method = *service->method(m);
      ASSERT_TRUE(method.options().HasExtension(common::v1::access)) << method.full_name() << " has no policy";
      ++methods;
      const bool is_write = method.input_type()->FindFieldByName("command_id") != nullptr;
      // Per-case methods are called on the assigned case and on the unassigned one.
      std::vector<std::pair<std::string, bool>> targets = {{ids_->assigned_case, true}};
      if (method.input_type()->FindFieldByName("case_id") != nullptr ||
          method.input_type()->FindFieldByName("case_ids") != nullptr) {
        targets.push_back({ids_->unassigned_case, false});
      }
      for (const auto& [case_id, assigned] : targets) {
        const MatrixRequest request = RequestFor(method, case_id, ids_->appointment, ids_->calendar);
        for (const Persona& persona : Personas()) {
          const Expect expected =
              Expected(method, request, persona, assigned ? persona.to_assigned_case : persona.to_unassigned_case,
                       /*case_is_unassigned=*/!assigned);
          CallAs as{.person = persona.person};
          std::unique_ptr<Message> response(
              google::protobuf::MessageFactory::generated_factory()->GetPrototype(method.output_type())->New());
          const grpc::Status status = suite_->Call(method, *request.message, response.get(), as, absl::Seconds(15));
          calls.push_back({absl::StrCat(method.full_name(), " on the ", assigned ? "assigned" : "unassigned",
                                        " case as ", persona.label),
                           expected, status, as.trace_id, is_write});
        }
      }
    }
  }
  EXPECT_GE(methods, 79);

  // Refusals leave DENIED records (acknowledged before the refusal was answered).
  std::map<std::string, std::vector<av1::AccessRecord>> by_trace;
  for (auto& record : suite_->AccessRecords()) by_trace[record.trace_id()].push_back(std::move(record));
  int through = 0, refused = 0;
  for (const Pending& call : calls) {
    bool denied_record = false;
    for (const auto& record : by_trace[call.trace_id]) {
      denied_record |= record.outcome() == av1::ACCESS_OUTCOME_DENIED;
    }
    switch (call.expected) {
      case Expect::kThrough:
        ++through;
        EXPECT_NE(call.status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << call.label << " must be let through: " << call.status.error_message();
        EXPECT_FALSE(denied_record) << call.label << " must be let through, but was recorded as refused";
        if (call.is_write) {
          EXPECT_EQ(call.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
              << call.label << ": a write without a command id must change nothing: " << call.status.error_message();
        }
        break;
      case Expect::kPermissionDenied:
      case Expect::kNotFound:
        ++refused;
        EXPECT_EQ(call.status.error_code(), call.expected == Expect::kNotFound ? grpc::StatusCode::NOT_FOUND
                                                                               : grpc::StatusCode::PERMISSION_DENIED)
            << call.label << " must be " << Name(call.expected) << ", was " << call.status.error_code() << " "
            << call.status.error_message();
        EXPECT_TRUE(denied_record) << call.label << ": a refusal leaves a DENIED access record";
        break;
    }
  }
  std::cout << "matrix: " << methods << " methods, " << calls.size() << " calls: " << through << " let through, "
            << refused << " refused\n";
  // Both sides of the matrix are substantial: it is not "everyone refused".
  EXPECT_GT(through, 150);
  EXPECT_GT(refused, 600);
}

TEST_F(AuthorizationTest, ACaseThatDoesNotExistIsNotFound) {
  const CallAs as = As("cm-a", "case_manager");
  grpc::Status status;
  GetCase(as, "case-that-does-not-exist", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_EQ(OneRecord(as.trace_id).denial_reason(), "case_not_found");
}

// ---- minimum necessary ----

TEST_F(AuthorizationTest, ASchedulerSeesOnlyWhatBookingNeeds) {
  const CallAs as = Scheduler();
  grpc::Status status;
  const cv1::Case seen = GetCase(as, ids_->assigned_case, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(seen.case_id(), ids_->assigned_case);
  EXPECT_EQ(seen.patient().given_name(), "Ada");
  EXPECT_EQ(seen.assignment().case_manager_id(), "cm-a");
  EXPECT_TRUE(seen.patient().mrn().empty()) << "no MRN for a scheduler";
  EXPECT_TRUE(seen.patient().birth_date().empty()) << "no birth date for a scheduler";
  EXPECT_EQ(seen.care_team_size(), 0) << "no care team for a scheduler";
  EXPECT_FALSE(seen.has_referral()) << "no referral for a scheduler";
  const av1::AccessRecord record = OneRecord(as.trace_id);
  EXPECT_EQ(record.outcome(), av1::ACCESS_OUTCOME_ALLOWED);
  EXPECT_TRUE(record.masked());
  EXPECT_EQ(record.relationship(), "tenant");
  EXPECT_FALSE(record.policy_version().empty());
}

TEST_F(AuthorizationTest, AnIntakeCoordinatorSeesTheIntakeOfAnUnassignedCaseButNotItsNotes) {
  CallCase(Supervisor(), [&](cv1::CaseService::Stub& cases, grpc::ClientContext* context) {
    cv1::AddNoteRequest request;
    request.set_case_id(ids_->unassigned_case);
    request.set_command_id(UniqueName("note"));
    request.set_kind(cv1::NOTE_KIND_PROGRESS);
    request.set_text("Triage call with the daughter.");
    cv1::AddNoteResponse response;
    return cases.AddNote(context, request, &response);
  });
  const CallAs as = Intake();
  grpc::Status status;
  const cv1::Case seen = GetCase(as, ids_->unassigned_case, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(seen.patient().mrn(), "MRN-EXAMPLE") << "intake needs the patient's identity";
  EXPECT_TRUE(seen.has_referral());
  EXPECT_EQ(seen.notes_size(), 0) << "notes are the program staff's";
  EXPECT_TRUE(OneRecord(as.trace_id).masked());
  // Once the case is assigned (case A), intake has no business in it.
  GetCase(Intake(), ids_->assigned_case, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

// ---- 42 CFR Part 2 ----

TEST_F(AuthorizationTest, SubstanceUseNotesReachOnlyProgramStaffAndConsentedCareTeam) {
  const std::string case_id = OpenCase("team-a");
  Assign(case_id, "cm-a", std::nullopt);
  const std::string colleague = AddStaffToCareTeam(case_id, "cm-b");
  CallCase(As("cm-a", "case_manager"), [&](cv1::CaseService::Stub& cases, grpc::ClientContext* context) {
    cv1::AddNoteRequest request;
    request.set_case_id(case_id);
    request.set_command_id(UniqueName("note"));
    request.set_kind(cv1::NOTE_KIND_PROGRESS);
    request.set_category(cv1::INFORMATION_CATEGORY_SUBSTANCE_USE);
    request.set_text("Discussed the treatment program.");
    cv1::AddNoteResponse response;
    return cases.AddNote(context, request, &response);
  });
  auto notes_seen_by = [&](const CallAs& as, bool* masked) {
    grpc::Status status;
    const cv1::Case seen = GetCase(as, case_id, &status);
    EXPECT_TRUE(status.ok()) << as.person.user << ": " << status.error_message();
    *masked = OneRecord(as.trace_id).masked();
    return seen.notes_size();
  };
  bool masked = false;
  EXPECT_EQ(notes_seen_by(As("cm-a", "case_manager"), &masked), 1) << "the program's case manager";
  EXPECT_FALSE(masked);
  EXPECT_EQ(notes_seen_by(Supervisor(), &masked), 1) << "the program's supervisor";
  EXPECT_EQ(notes_seen_by(As("cm-b", "case_manager"), &masked), 0) << "care team without consent";
  EXPECT_TRUE(masked) << "the withheld note is recorded as masked";

  // The patient consents to share substance-use records with the colleague...
  std::string consent_id;
  CallCase(As("cm-a", "case_manager"), [&](cv1::CaseService::Stub& cases, grpc::ClientContext* context) {
    cv1::RecordConsentRequest request;
    request.set_case_id(case_id);
    request.set_command_id(UniqueName("consent"));
    request.add_member_ids(colleague);
    request.add_categories(cv1::INFORMATION_CATEGORY_SUBSTANCE_USE);
    request.add_purposes(cv1::CONSENT_PURPOSE_TREATMENT);
    request.set_source(cv1::CONSENT_SOURCE_SIGNED_FORM);
    cv1::RecordConsentResponse response;
    const grpc::Status status = cases.RecordConsent(context, request, &response);
    consent_id = response.consent_id();
    return status;
  });
  EXPECT_EQ(notes_seen_by(As("cm-b", "case_manager"), &masked), 1) << "care team under consent";
  EXPECT_FALSE(masked);
  // ...and revokes it: the next read withholds the note again.
  CallCase(As("cm-a", "case_manager"), [&](cv1::CaseService::Stub& cases, grpc::ClientContext* context) {
    cv1::RevokeConsentRequest request;
    request.set_case_id(case_id);
    request.set_command_id(UniqueName("revoke"));
    request.set_consent_id(consent_id);
    request.set_reason("patient request");
    cv1::RevokeConsentResponse response;
    return cases.RevokeConsent(context, request, &response);
  });
  EXPECT_EQ(notes_seen_by(As("cm-b", "case_manager"), &masked), 0) << "consent revoked";
  EXPECT_TRUE(masked);
}

// ---- break the glass ----

TEST_F(AuthorizationTest, EmergencyAccessOpensOneCaseForABoundedTimeAndIsNotifiedAndReviewed) {
  const std::string case_id = OpenCase("team-a");
  Assign(case_id, "cm-a", std::nullopt);
  // cm-c: a case manager of another team (each call its own trace id).
  auto outsider = [] { return As("cm-c", "case_manager"); };
  grpc::Status status;
  GetCase(outsider(), case_id, &status);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << "no relationship, no access";

  // The grant: reason required, one minute.
  auto cases = cv1::CaseService::NewStub(suite_->Channel("case"));
  cv1::RequestEmergencyAccessRequest request;
  request.set_case_id(case_id);
  request.set_command_id(UniqueName("glass"));
  request.set_duration_minutes(1);
  {
    cv1::RequestEmergencyAccessResponse response;
    status = cases->RequestEmergencyAccess(testing::ContextFor(outsider()).get(), request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "a reason is required";
  }
  request.set_reason("Patient found unresponsive at home visit; on-call coverage.");
  cv1::RequestEmergencyAccessResponse granted;
  status = cases->RequestEmergencyAccess(testing::ContextFor(outsider()).get(), request, &granted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_FALSE(granted.grant_id().empty());

  // The case opens to them, recorded as an emergency read under the grant.
  const CallAs reading = outsider();
  const cv1::Case seen = GetCase(reading, case_id, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(seen.patient().mrn(), "MRN-EXAMPLE");
  const av1::AccessRecord record = OneRecord(reading.trace_id);
  EXPECT_EQ(record.emergency_grant_id(), granted.grant_id());
  EXPECT_EQ(record.relationship(), "emergency");
  // Only that case.
  GetCase(As("cm-c", "case_manager"), ids_->assigned_case, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // The privacy officer and the team's supervisor are told at once.
  auto notifications = nv1::NotificationService::NewStub(suite_->Channel("notification"));
  for (const CallAs& told : {PrivacyOfficer(), Supervisor()}) {
    EXPECT_TRUE(testing::WaitUntil(
        [&] {
          nv1::ListInboxRequest inbox;
          inbox.set_recipient_id(told.person.user);
          nv1::ListInboxResponse response;
          if (!notifications->ListInbox(testing::ContextFor(told).get(), inbox, &response).ok()) return false;
          for (const auto& n : response.notifications()) {
            if (n.case_id() == case_id && n.title().find("mergency") != std::string::npos) return true;
          }
          return false;
        },
        absl::Seconds(60)))
        << told.person.user << " was not notified of the emergency access";
  }

  // When the grant expires, the door closes again (the wait is the grant's minute).
  EXPECT_TRUE(testing::WaitUntil(
      [&] {
        grpc::Status again;
        GetCase(As("cm-c", "case_manager"), case_id, &again);
        return again.error_code() == grpc::StatusCode::PERMISSION_DENIED;
      },
      absl::Seconds(120)))
      << "the grant did not expire";

  // The privacy officer reviews it; the list shows it reviewed.
  CallCase(PrivacyOfficer(), [&](cv1::CaseService::Stub& stub, grpc::ClientContext* context) {
    cv1::ReviewEmergencyAccessRequest review;
    review.set_case_id(case_id);
    review.set_command_id(UniqueName("review"));
    review.set_grant_id(granted.grant_id());
    review.set_justified(true);
    review.set_note("Confirmed with the on-call roster.");
    cv1::ReviewEmergencyAccessResponse response;
    return stub.ReviewEmergencyAccess(context, review, &response);
  });
  cv1::ListEmergencyAccessRequest list;
  cv1::ListEmergencyAccessResponse listed;
  status = cases->ListEmergencyAccess(testing::ContextFor(PrivacyOfficer()).get(), list, &listed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  bool found = false;
  for (const auto& grant : listed.grants()) {
    if (grant.grant().grant_id() != granted.grant_id()) continue;
    found = true;
    EXPECT_EQ(grant.case_id(), case_id);
    EXPECT_EQ(grant.grant().user_id(), "cm-c");
    EXPECT_TRUE(grant.grant().has_review());
  }
  EXPECT_TRUE(found) << "the grant is listed";
}

// ---- policy at the time ----

TEST_F(AuthorizationTest, ALateReassignmentShowsUpInTheRecheckOfReadsMadeAfterIt) {
  const absl::Time from = absl::Now() - absl::Minutes(1);
  const std::string case_id = OpenCase("team-a");
  Assign(case_id, "cm-a", std::nullopt);

  // cm-a reads the case twice, assigned to them as far as the service knows...
  const absl::Time read_at = absl::Now();
  const std::vector<CallAs> reads_by_former = {As("cm-a", "case_manager"), As("cm-a", "case_manager")};
  grpc::Status status;
  for (const CallAs& read : reads_by_former) {
    GetCase(read, case_id, &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  const CallAs read_by_supervisor = Supervisor();
  GetCase(read_by_supervisor, case_id, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // ...but the supervisor enters a reassignment that had taken effect just before.
  Assign(case_id, "cm-b", read_at);
  const CallAs read_by_new = As("cm-b", "case_manager");
  GetCase(read_by_new, case_id, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();

  std::set<std::string> former_records;
  for (const CallAs& read : reads_by_former) former_records.insert(OneRecord(read.trace_id).record_id());
  auto audit = av1::AuditService::NewStub(suite_->Channel("audit"));
  av1::RecheckAccessRequest request;
  *request.mutable_from() = testing::ProtoTime(from);
  *request.mutable_to() = testing::ProtoTime(absl::Now() + absl::Seconds(1));
  request.set_case_id(case_id);
  av1::RecheckAccessResponse response;
  // The audit log takes the reads in as they are chained; wait until all four are there.
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        response.Clear();
        status = audit->RecheckAccess(testing::ContextFor(Auditor()).get(), request, &response);
        return status.ok() && response.records_checked() >= 4;
      },
      absl::Seconds(60)))
      << status.error_message();
  // Exactly the former manager's two reads: the supervisor's and the new manager's hold.
  std::set<std::string> named;
  for (const av1::RecheckFinding& finding : response.findings()) {
    named.insert(finding.record_id());
    EXPECT_EQ(finding.actor_id(), "cm-a");
    EXPECT_EQ(finding.case_id(), case_id);
    EXPECT_EQ(finding.relationship_then(), "assigned");
    EXPECT_EQ(finding.reason(), "no_relationship");
    EXPECT_FALSE(finding.policy_version().empty());
  }
  EXPECT_EQ(named, former_records) << response.DebugString();
  EXPECT_EQ(response.records_checked(), 4);
  EXPECT_EQ(response.records_without_policy(), 0);
}

}  // namespace
}  // namespace clinical

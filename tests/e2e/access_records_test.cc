// Access records end to end (issue #8): the case, scheduling, views, notification and audit
// services run as real processes writing access records to a topic of this test. The test
// walks every method of their service descriptors: every read (a request without
// command_id) must carry the clinical.common.v1.access option, and every recorded read is
// called once with valid inputs. Reading the access topic back (read_committed, up to its
// high watermarks) must then show exactly one record per call — matched by the call's own
// W3C trace id — with the caller's user, role, tenant and purpose, the case id and the
// outcome; nothing for writes or exempt reads. Refusals are DENIED records, and a service
// whose records cannot be written answers reads UNAVAILABLE without the data.

#include <functional>
#include <map>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clinical/access/policy.h"
#include "clinical/audit/v1/access.pb.h"
#include "clinical/audit/v1/audit_service.grpc.pb.h"
#include "clinical/audit/v1/replay_service.grpc.pb.h"
#include "clinical/case/v1/case_service.grpc.pb.h"
#include "clinical/kafka/client_config.h"
#include "clinical/notification/v1/notification_service.grpc.pb.h"
#include "clinical/scheduling/v1/scheduling_service.grpc.pb.h"
#include "clinical/testing/identity.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/service_process.h"
#include "clinical/testing/service_suite.h"
#include "clinical/testing/subprocess.h"
#include "clinical/testing/topics.h"
#include "clinical/testing/workflows.h"
#include "clinical/testing/wait.h"
#include "clinical/views/v1/views_service.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical {
namespace {

namespace cv1 = case_::v1;
namespace sv1 = scheduling::v1;
namespace vv1 = views::v1;
namespace nv1 = notification::v1;
namespace av1 = audit::v1;
using audit::v1::AccessRecord;
using testing::UniqueName;

constexpr char kTenant[] = "tenant-access";
constexpr char kPurpose[] = "TREAT";

// Who calls, and the trace id that identifies the call's record.
struct CallAs {
  std::string user;
  std::string role = "case_manager";
  std::string tenant = kTenant;
  std::string trace_id = testing::NewTraceId();
};

std::unique_ptr<grpc::ClientContext> Context(const CallAs& as) {
  return testing::ContextFor(testing::CallAs{.person = {as.user, as.role, as.tenant}, .trace_id = as.trace_id,
                                             .purpose = kPurpose});
}

// One call the test made, and what its record must say.
struct Expected {
  std::string method;  // "/pkg.Service/Method"
  CallAs as;
  std::string case_id;
  audit::v1::AccessOutcome outcome = audit::v1::ACCESS_OUTCOME_ALLOWED;
  int status_code = 0;
};

class AccessRecordsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto started = testing::ServiceSuite::Start("access-e2e");
    ASSERT_TRUE(started.ok()) << started.status();
    suite_ = started->release();
  }
  static void TearDownTestSuite() {
    delete suite_;
    suite_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(suite_, nullptr) << "a service did not start";
    case_stub_ = cv1::CaseService::NewStub(suite_->Channel("case"));
    scheduling_stub_ = sv1::SchedulingService::NewStub(suite_->Channel("scheduling"));
    views_stub_ = vv1::ViewsService::NewStub(suite_->Channel("views"));
    notification_stub_ = nv1::NotificationService::NewStub(suite_->Channel("notification"));
    audit_stub_ = av1::AuditService::NewStub(suite_->Channel("audit"));
    replay_stub_ = av1::AuditReplayService::NewStub(suite_->Channel("audit"));
  }

  // Opens an active case and assigns it to `manager` (writes: no access records).
  static std::pair<std::string, common::v1::LogPosition> OpenAssignedCase(cv1::CaseService::Stub& cases,
                                                                         const std::string& manager) {
    const CallAs supervisor{.user = "sup-access", .role = "supervisor"};
    const cv1::OpenCaseRequest open = testing::ExampleIntake(UniqueName("open"), "team-access");
    cv1::OpenCaseResponse opened;
    grpc::Status status = cases.OpenCase(Context(supervisor).get(), open, &opened);
    EXPECT_TRUE(status.ok()) << status.error_message();
    cv1::AssignCaseRequest assign;
    assign.set_case_id(opened.case_id());
    assign.set_command_id(UniqueName("assign"));
    assign.set_case_manager_id(manager);
    cv1::AssignCaseResponse assigned;
    status = cases.AssignCase(Context(supervisor).get(), assign, &assigned);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {opened.case_id(), assigned.position()};
  }

  static inline testing::ServiceSuite* suite_ = nullptr;
  std::unique_ptr<cv1::CaseService::Stub> case_stub_;
  std::unique_ptr<sv1::SchedulingService::Stub> scheduling_stub_;
  std::unique_ptr<vv1::ViewsService::Stub> views_stub_;
  std::unique_ptr<nv1::NotificationService::Stub> notification_stub_;
  std::unique_ptr<av1::AuditService::Stub> audit_stub_;
  std::unique_ptr<av1::AuditReplayService::Stub> replay_stub_;
};

TEST_F(AccessRecordsTest, EveryReadIsAnnotatedAndEveryRecordedReadYieldsExactlyOneRecord) {
  const std::string manager = UniqueName("cm-access");
  const auto [case_id, assigned_at] = OpenAssignedCase(*case_stub_, manager);
  ASSERT_FALSE(case_id.empty());

  // Scheduling: the manager's calendar and one appointment of the case (writes). The
  // scheduling service learns of the case from the case topic, so booking is retried until
  // it knows the case.
  {
    const sv1::CreateCalendarRequest calendar = testing::AroundTheClockCalendar(UniqueName("cal"), manager);
    sv1::CreateCalendarResponse created;
    const grpc::Status status = scheduling_stub_->CreateCalendar(Context({.user = manager}).get(), calendar, &created);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  const absl::Time tomorrow = absl::FromUnixSeconds((absl::ToUnixSeconds(absl::Now()) / 3600 + 26) * 3600);
  std::string appointment_id;
  sv1::BookAppointmentRequest booking;
  booking.set_command_id(UniqueName("book"));
  booking.set_case_id(case_id);
  booking.set_type(sv1::APPOINTMENT_TYPE_PHONE_FOLLOW_UP);
  *booking.mutable_start_time() = testing::ProtoTime(tomorrow);
  booking.mutable_duration()->set_seconds(3600);
  booking.set_time_zone("America/New_York");
  grpc::Status booked_status;
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        sv1::BookAppointmentResponse booked;
        booked_status = scheduling_stub_->BookAppointment(Context({.user = manager}).get(), booking, &booked);
        appointment_id = booked.appointment_id();
        return booked_status.ok();
      },
      absl::Seconds(30)))
      << booked_status.error_message();

  // The assignment notification reaches the manager's inbox (GetUnreadCount is an exempt
  // read: polling it writes no records).
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        nv1::GetUnreadCountRequest request;
        request.set_recipient_id(manager);
        nv1::GetUnreadCountResponse response;
        return notification_stub_->GetUnreadCount(Context({.user = manager}).get(), request, &response).ok() &&
               response.unread_count() > 0;
      },
      absl::Seconds(30)));

  // A colleague breaks the glass on the case, so the privacy officer's list shows it.
  {
    cv1::RequestEmergencyAccessRequest glass;
    glass.set_case_id(case_id);
    glass.set_command_id(UniqueName("glass"));
    glass.set_reason("covering an urgent call");
    glass.set_duration_minutes(30);
    cv1::RequestEmergencyAccessResponse granted;
    const grpc::Status status =
        case_stub_->RequestEmergencyAccess(Context({.user = UniqueName("cm-glass")}).get(), glass, &granted);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  // One valid call per recorded read, by full method name. Each returns its status.
  using Call = std::function<grpc::Status(const CallAs&)>;
  std::map<std::string, Call> calls;
  calls["clinical.case.v1.CaseService.GetCase"] = [&](const CallAs& as) {
    cv1::GetCaseRequest request;
    request.set_case_id(case_id);
    cv1::GetCaseResponse response;
    return case_stub_->GetCase(Context(as).get(), request, &response);
  };
  calls["clinical.case.v1.CaseService.ListCaseHistory"] = [&](const CallAs& as) {
    cv1::ListCaseHistoryRequest request;
    request.set_case_id(case_id);
    cv1::ListCaseHistoryResponse response;
    return case_stub_->ListCaseHistory(Context(as).get(), request, &response);
  };
  calls["clinical.scheduling.v1.SchedulingService.FindAvailableSlots"] = [&](const CallAs& as) {
    sv1::FindAvailableSlotsRequest request;
    request.set_case_id(case_id);
    request.set_type(sv1::APPOINTMENT_TYPE_PHONE_FOLLOW_UP);
    request.mutable_duration()->set_seconds(1800);
    *request.mutable_window_start_time() = testing::ProtoTime(tomorrow + absl::Hours(24));
    *request.mutable_window_end_time() = testing::ProtoTime(tomorrow + absl::Hours(30));
    sv1::FindAvailableSlotsResponse response;
    return scheduling_stub_->FindAvailableSlots(Context(as).get(), request, &response);
  };
  calls["clinical.scheduling.v1.SchedulingService.GetAppointment"] = [&](const CallAs& as) {
    sv1::GetAppointmentRequest request;
    request.set_appointment_id(appointment_id);
    sv1::GetAppointmentResponse response;
    return scheduling_stub_->GetAppointment(Context(as).get(), request, &response);
  };
  calls["clinical.scheduling.v1.SchedulingService.ListCaseAppointments"] = [&](const CallAs& as) {
    sv1::ListCaseAppointmentsRequest request;
    request.set_case_id(case_id);
    sv1::ListCaseAppointmentsResponse response;
    return scheduling_stub_->ListCaseAppointments(Context(as).get(), request, &response);
  };
  calls["clinical.views.v1.ViewsService.GetCaseload"] = [&](const CallAs& as) {
    vv1::GetCaseloadRequest request;
    request.set_case_manager_id(manager);
    *request.add_min_positions() = assigned_at;  // read-your-writes: the case is on it
    vv1::GetCaseloadResponse response;
    return views_stub_->GetCaseload(Context(as).get(), request, &response);
  };
  calls["clinical.views.v1.ViewsService.GetWorklist"] = [&](const CallAs& as) {
    vv1::GetWorklistRequest request;
    request.set_case_manager_id(manager);
    *request.add_min_positions() = assigned_at;
    vv1::GetWorklistResponse response;
    return views_stub_->GetWorklist(Context(as).get(), request, &response);
  };
  calls["clinical.notification.v1.NotificationService.ListInbox"] = [&](const CallAs& as) {
    nv1::ListInboxRequest request;
    request.set_recipient_id(manager);
    nv1::ListInboxResponse response;
    return notification_stub_->ListInbox(Context(as).get(), request, &response);
  };
  calls["clinical.notification.v1.NotificationService.SubscribeInbox"] = [&](const CallAs& as) {
    nv1::SubscribeInboxRequest request;
    request.set_recipient_id(manager);
    request.set_include_unread(true);
    auto context = Context(as);
    auto reader = notification_stub_->SubscribeInbox(context.get(), request);
    nv1::SubscribeInboxResponse first;
    const bool got = reader->Read(&first);  // the unread assignment notification
    context->TryCancel();
    reader->Finish();
    return got && first.notification().case_id() == case_id
               ? grpc::Status::OK
               : grpc::Status(grpc::StatusCode::INTERNAL, "no notification of the case on the stream");
  };

  // The audit service's reads of patient data (auditors only).
  calls["clinical.audit.v1.AuditService.QueryRecords"] = [&](const CallAs& as) {
    av1::QueryRecordsRequest request;
    request.mutable_filter()->set_case_id(case_id);
    av1::QueryRecordsResponse response;
    return audit_stub_->QueryRecords(Context(as).get(), request, &response);
  };
  calls["clinical.audit.v1.AuditService.GetAccessReport"] = [&](const CallAs& as) {
    av1::GetAccessReportRequest request;
    request.set_case_id(case_id);
    av1::GetAccessReportResponse response;
    return audit_stub_->GetAccessReport(Context(as).get(), request, &response);
  };
  calls["clinical.audit.v1.AuditService.ExportAuditEvents"] = [&](const CallAs& as) {
    av1::ExportAuditEventsRequest request;
    request.mutable_filter()->set_case_id(case_id);
    request.set_format(av1::EXPORT_FORMAT_NDJSON);
    av1::ExportAuditEventsResponse response;
    return audit_stub_->ExportAuditEvents(Context(as).get(), request, &response);
  };
  calls["clinical.audit.v1.AuditService.RecheckAccess"] = [&](const CallAs& as) {
    av1::RecheckAccessRequest request;
    *request.mutable_from() = testing::ProtoTime(absl::Now() - absl::Hours(1));
    *request.mutable_to() = testing::ProtoTime(absl::Now());
    request.set_case_id(case_id);
    av1::RecheckAccessResponse response;
    return audit_stub_->RecheckAccess(Context(as).get(), request, &response);
  };
  calls["clinical.case.v1.CaseService.ListEmergencyAccess"] = [&](const CallAs& as) {
    cv1::ListEmergencyAccessRequest request;
    cv1::ListEmergencyAccessResponse response;
    return case_stub_->ListEmergencyAccess(Context(as).get(), request, &response);
  };
  calls["clinical.audit.v1.AuditReplayService.ReplayCase"] = [&](const CallAs& as) {
    av1::ReplayCaseRequest request;
    request.set_case_id(case_id);
    *request.mutable_as_of() = testing::ProtoTime(absl::Now());
    request.set_mode(av1::REPLAY_MODE_RECORDED_AT);
    av1::ReplayCaseResponse response;
    return replay_stub_->ReplayCase(Context(as).get(), request, &response);
  };
  calls["clinical.audit.v1.AuditReplayService.ListDisclosures"] = [&](const CallAs& as) {
    av1::ListDisclosuresRequest request;
    request.set_case_id(case_id);
    av1::ListDisclosuresResponse response;
    return replay_stub_->ListDisclosures(Context(as).get(), request, &response);
  };

  // The walk: every method of every service. Reads must be annotated; recorded reads are
  // called once each.
  std::vector<Expected> expected;
  std::set<std::string> walked;
  for (const std::string& name : testing::ServiceSuite::GrpcServices()) {
    const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      const bool annotated = method->options().HasExtension(common::v1::access);
      if (access::IsRead(*method)) {
        EXPECT_TRUE(annotated) << method->full_name()
                               << " is a read (no command_id) without the clinical.common.v1.access option";
      }
      if (!annotated || method->options().GetExtension(common::v1::access).resource_type().empty()) continue;
      walked.insert(method->full_name());
      auto call = calls.find(method->full_name());
      ASSERT_NE(call, calls.end()) << method->full_name() << " is recorded but this test has no call for it";
      // The audit log is for auditors, the emergency-access list for privacy officers;
      // everything else is the case's manager's.
      const CallAs as = service->file()->package() == "clinical.audit.v1"
                            ? CallAs{.user = "auditor-access", .role = "auditor"}
                        : method->name() == "ListEmergencyAccess" ? CallAs{.user = "po-access", .role = "privacy_officer"}
                                                                  : CallAs{.user = manager};
      const grpc::Status status = call->second(as);
      EXPECT_TRUE(status.ok()) << method->full_name() << ": " << status.error_message();
      expected.push_back({absl::StrCat("/", service->full_name(), "/", method->name()), as, case_id});
    }
  }
  EXPECT_EQ(walked.size(), calls.size()) << "a call in this test names no recorded method";
  EXPECT_GE(walked.size(), 14u);

  // Refusals: a token without a platform role (UNAUTHENTICATED, refused before the
  // service: the record has no verified actor, only the subject the token claimed), another
  // manager's caseload (PERMISSION_DENIED) and another tenant's case (NOT_FOUND, which
  // reveals nothing, marked as a refusal) are all DENIED.
  {
    CallAs no_role{.user = manager, .role = ""};
    EXPECT_EQ(calls["clinical.case.v1.CaseService.GetCase"](no_role).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    expected.push_back({"/clinical.case.v1.CaseService/GetCase", no_role, case_id,
                        audit::v1::ACCESS_OUTCOME_DENIED, grpc::StatusCode::UNAUTHENTICATED});
    CallAs other_manager{.user = UniqueName("cm-other")};
    EXPECT_EQ(calls["clinical.views.v1.ViewsService.GetCaseload"](other_manager).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    expected.push_back({"/clinical.views.v1.ViewsService/GetCaseload", other_manager, "",
                        audit::v1::ACCESS_OUTCOME_DENIED, grpc::StatusCode::PERMISSION_DENIED});
    CallAs other_tenant{.user = manager, .tenant = "tenant-elsewhere"};
    EXPECT_EQ(calls["clinical.case.v1.CaseService.GetCase"](other_tenant).error_code(), grpc::StatusCode::NOT_FOUND);
    expected.push_back({"/clinical.case.v1.CaseService/GetCase", other_tenant, case_id,
                        audit::v1::ACCESS_OUTCOME_DENIED, grpc::StatusCode::NOT_FOUND});
  }

  // Every call was acknowledged before it returned, so its record is below the
  // watermarks now. Writes and exempt reads made above have no records: the topic holds
  // exactly the expected ones.
  const std::vector<AccessRecord> records = suite_->AccessRecords();
  std::map<std::string, std::vector<const AccessRecord*>> by_trace;
  for (const auto& record : records) by_trace[record.trace_id()].push_back(&record);
  EXPECT_EQ(records.size(), expected.size()) << "one record per recorded call, none for anything else";
  std::set<std::string> record_ids;
  for (const auto& record : records) record_ids.insert(record.record_id());
  EXPECT_EQ(record_ids.size(), records.size()) << "record ids are unique";
  for (const Expected& call : expected) {
    const auto& found = by_trace[call.as.trace_id];
    ASSERT_EQ(found.size(), 1u) << call.method << " (trace " << call.as.trace_id << ")";
    const AccessRecord& record = *found[0];
    EXPECT_EQ(record.method(), call.method);
    EXPECT_EQ(record.peer_identity(), "spiffe://clinical.local/ns/local/sa/test-client") << call.method;
    if (call.status_code == grpc::StatusCode::UNAUTHENTICATED) {
      // Refused by authentication: no verified actor, the claimed subject kept apart.
      EXPECT_TRUE(record.actor_id().empty()) << call.method;
      EXPECT_EQ(record.claimed_subject(), call.as.user) << call.method;
      EXPECT_EQ(record.denial_reason(), "missing_claim") << call.method;
      EXPECT_TRUE(record.case_ids().empty()) << call.method << ": the request was never read";
      continue;
    }
    EXPECT_EQ(record.actor_id(), call.as.user) << call.method;
    EXPECT_EQ(record.actor_role(), call.as.role) << call.method;
    EXPECT_EQ(record.tenant_id(), call.as.tenant) << call.method;
    EXPECT_EQ(record.purpose_of_use(), kPurpose) << call.method;
    EXPECT_EQ(record.outcome(), call.outcome) << call.method;
    EXPECT_EQ(record.status_code(), call.status_code) << call.method;
    EXPECT_FALSE(record.resource_type().empty()) << call.method;
    EXPECT_NE(record.source_address().find("127.0.0.1"), std::string::npos) << call.method;
    EXPECT_EQ(record.record_id().size(), 36u) << call.method;
    if (!call.case_id.empty()) {
      EXPECT_NE(std::find(record.case_ids().begin(), record.case_ids().end(), call.case_id),
                record.case_ids().end())
          << call.method << " does not name the case it showed";
    }
  }
}

TEST_F(AccessRecordsTest, AServiceWhoseRecordsCannotBeWrittenAnswersReadsWithoutData) {
  // A case service whose access topic the broker refuses (an illegal topic name): each
  // record fails, so each read must fail closed. A broker outage takes the same path
  // (libs/access/test/kafka_recorder_test.cc: UNAVAILABLE within the bound).
  auto refusing = testing::ServiceProcess::Start(
      {.service = "case",
       .args = {"--access-topic=clinical.access.v1!refused", "--access-timeout=2s",
                "--access-policy-topic=" + UniqueName("clinical.access.policies.refused"),
                "--organisation-topic=" + UniqueName("clinical.case.organisation.refused"),
                "--case-topic=" + UniqueName("clinical.case.access-refused"), "--case-topic-partitions=3",
                "--writer-id=" + UniqueName("case-service.access-refused")}});
  ASSERT_TRUE(refusing.ok()) << refusing.status();
  auto stub = cv1::CaseService::NewStub((*refusing)->NewChannel());
  const std::string case_id = OpenAssignedCase(*stub, UniqueName("cm-refused")).first;  // writes still work
  ASSERT_FALSE(case_id.empty());

  cv1::GetCaseRequest request;
  request.set_case_id(case_id);
  cv1::GetCaseResponse response;
  const absl::Time started = absl::Now();
  const grpc::Status status = stub->GetCase(Context({.user = "cm-refused"}).get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_FALSE(response.has_case_()) << "no patient data without a record";
  EXPECT_EQ(response.ByteSizeLong(), 0u);
  EXPECT_LT(absl::Now() - started, absl::Seconds(10)) << "bounded by --access-timeout";
  EXPECT_EQ((*refusing)->Terminate(absl::Seconds(30)), 0);
}

}  // namespace
}  // namespace clinical

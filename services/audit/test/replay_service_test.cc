// The replay service without gRPC or Kafka: what it refuses (every field violation),
// tenant scoping, the six-year default window and paging, over a fake source. Who may call
// is the methods' policy (audit_policy_test, and replay_integration_test over gRPC).
#include "replay_service.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

#include "case_domain.h"
#include "google/protobuf/util/time_util.h"

namespace clinical::audit::replay {
namespace {

namespace casev1 = ::clinical::case_::v1;
using google::protobuf::util::TimeUtil;

const absl::Time kNow = absl::FromUnixSeconds(1'790'000'000);

google::protobuf::Timestamp Ts(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

LogEvent Event(const std::string& case_id, const std::string& tenant, int version,
               casev1::CaseEvent body, absl::Time at) {
  case_service::Event event;
  event.body = std::move(body);
  event.occurred_at = at;
  LogEvent logged;
  case_service::ToEnvelope(event, &logged.envelope);
  logged.envelope.set_aggregate_id(case_id);
  logged.envelope.set_tenant_id(tenant);
  logged.envelope.set_aggregate_version(version);
  logged.envelope.set_event_id(absl::StrCat(case_id, "-", version));
  *logged.envelope.mutable_recorded_at() = Ts(at);
  return logged;
}

casev1::CaseEvent Opened(const std::string& mrn) {
  casev1::CaseEvent e;
  e.mutable_case_opened()->mutable_patient()->set_mrn(mrn);
  e.mutable_case_opened()->set_status(casev1::CASE_STATUS_ACTIVE);
  return e;
}

casev1::CaseEvent Disclosed(int n) {
  casev1::CaseEvent e;
  e.mutable_information_disclosed()->set_disclosure_id(absl::StrCat("disclosure-", n));
  e.mutable_information_disclosed()->set_member_id("member-1");
  e.mutable_information_disclosed()->set_purpose(casev1::CONSENT_PURPOSE_TREATMENT);
  return e;
}

class FakeSource final : public EventSource {
 public:
  std::map<std::string, std::vector<LogEvent>> cases;
  absl::Status failure = absl::OkStatus();

  absl::StatusOr<std::vector<LogEvent>> CaseEvents(const std::string& case_id) override {
    if (!failure.ok()) return failure;
    return cases[case_id];
  }
  absl::StatusOr<std::vector<LogEvent>> AppointmentEvents(const std::string&,
                                                          const std::string&) override {
    if (!failure.ok()) return failure;
    return std::vector<LogEvent>();
  }
  absl::StatusOr<std::map<std::string, std::vector<LogEvent>>> PatientCaseEvents(
      const std::string& tenant, const std::string& mrn) override {
    if (!failure.ok()) return failure;
    std::map<std::string, std::vector<LogEvent>> out;
    for (const auto& [id, events] : cases) {
      casev1::CaseOpened opened;
      if (events.empty() || events[0].envelope.tenant_id() != tenant ||
          !events[0].envelope.payload().UnpackTo(&opened) || opened.patient().mrn() != mrn) {
        continue;
      }
      out[id] = events;
    }
    return out;
  }
};

grpcx::Caller Caller(common::v1::Role role, const std::string& tenant = "tenant-a") {
  grpcx::Caller caller;
  caller.actor.set_user_id("auditor-1");
  caller.actor.set_role(role);
  caller.tenant_id = tenant;
  return caller;
}

std::vector<std::string> Fields(const absl::Status& status) {
  std::vector<std::string> fields;
  for (const auto& v : grpcx::FieldViolationsOf(status)) fields.push_back(v.field);
  return fields;
}

// The gRPC edge is not exercised here (Replay and Disclosures take the caller directly).
class NoCallers : public grpcx::CallerSource {
 public:
  absl::StatusOr<grpcx::Caller> CallerOf(const grpc::ServerContextBase&) const override {
    return absl::UnauthenticatedError("not a gRPC call");
  }
  absl::StatusOr<grpcx::Caller> Authorize(const grpc::ServerContextBase&,
                                          const google::protobuf::Message&) const override {
    return absl::UnauthenticatedError("not a gRPC call");
  }
  void MarkMasked(const grpc::ServerContextBase&) const override {}
};

class ReplayServiceTest : public ::testing::Test {
 protected:
  ReplayServiceTest() : service_(source_, [] { return kNow; }, callers_) {
    // Case "c1" of patient MRN-1: disclosures 7 years ago, 5 years ago and 3 this week.
    auto& c1 = source_.cases["c1"];
    c1.push_back(Event("c1", "tenant-a", 1, Opened("MRN-1"), kNow - absl::Hours(24 * 365 * 8)));
    c1.push_back(Event("c1", "tenant-a", 2, Disclosed(1), kNow - absl::Hours(24 * 365 * 7)));
    c1.push_back(Event("c1", "tenant-a", 3, Disclosed(2), kNow - absl::Hours(24 * 365 * 5)));
    for (int i = 3; i <= 5; ++i) {
      c1.push_back(Event("c1", "tenant-a", i + 1, Disclosed(i), kNow - absl::Hours(24 * (8 - i))));
    }
    // Case "c2": the same patient, a second case.
    auto& c2 = source_.cases["c2"];
    c2.push_back(Event("c2", "tenant-a", 1, Opened("MRN-1"), kNow - absl::Hours(48)));
    c2.push_back(Event("c2", "tenant-a", 2, Disclosed(1), kNow - absl::Hours(1)));
    // Case "c3": another tenant's patient with the same MRN.
    auto& c3 = source_.cases["c3"];
    c3.push_back(Event("c3", "tenant-b", 1, Opened("MRN-1"), kNow - absl::Hours(48)));
    c3.push_back(Event("c3", "tenant-b", 2, Disclosed(1), kNow - absl::Hours(2)));
  }

  NoCallers callers_;
  FakeSource source_;
  ReplayService service_;
};

TEST_F(ReplayServiceTest, ReplayRequestViolations) {
  const auto auditor = Caller(common::v1::ROLE_AUDITOR);
  v1::ReplayCaseRequest empty;
  EXPECT_EQ(Fields(service_.Replay(auditor, empty).status()),
            (std::vector<std::string>{"case_id", "as_of", "mode"}));
  v1::ReplayCaseRequest bad;
  bad.set_case_id(std::string(129, 'x'));
  *bad.mutable_as_of() = Ts(kNow + absl::Seconds(1));
  bad.set_mode(static_cast<v1::ReplayMode>(9));
  const absl::Status status = service_.Replay(auditor, bad).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Fields(status), (std::vector<std::string>{"case_id", "as_of", "mode"}));
  bad.set_case_id("c1");
  bad.mutable_as_of()->set_nanos(-1);
  bad.set_mode(v1::REPLAY_MODE_OCCURRED_AT);
  EXPECT_EQ(Fields(service_.Replay(auditor, bad).status()), std::vector<std::string>{"as_of"});
}

TEST_F(ReplayServiceTest, DisclosuresRequestViolations) {
  const auto officer = Caller(common::v1::ROLE_PRIVACY_OFFICER);
  v1::ListDisclosuresRequest none;
  EXPECT_EQ(Fields(service_.Disclosures(officer, none).status()), std::vector<std::string>{"case_id"});
  v1::ListDisclosuresRequest both;
  both.set_case_id("c1");
  both.set_patient_mrn("MRN-1");
  EXPECT_EQ(Fields(service_.Disclosures(officer, both).status()),
            std::vector<std::string>{"patient_mrn"});
  v1::ListDisclosuresRequest bad;
  bad.set_patient_mrn(std::string(200, 'm'));
  *bad.mutable_start_time() = Ts(kNow);
  *bad.mutable_end_time() = Ts(kNow - absl::Seconds(1));
  bad.set_page_size(501);
  bad.set_page_token("not-a-token");
  EXPECT_EQ(Fields(service_.Disclosures(officer, bad).status()),
            (std::vector<std::string>{"patient_mrn", "start_time", "page_size", "page_token"}));
  bad.set_patient_mrn("MRN-1");
  bad.clear_start_time();
  bad.mutable_end_time()->set_seconds(TimeUtil::kTimestampMaxSeconds + 1);
  bad.set_page_size(-1);
  bad.clear_page_token();
  EXPECT_EQ(Fields(service_.Disclosures(officer, bad).status()),
            (std::vector<std::string>{"end_time", "page_size"}));
}

TEST_F(ReplayServiceTest, AnotherTenantsCaseIsNotFound) {
  const auto auditor = Caller(common::v1::ROLE_AUDITOR, "tenant-b");
  v1::ReplayCaseRequest replay;
  replay.set_case_id("c1");
  *replay.mutable_as_of() = Ts(kNow);
  replay.set_mode(v1::REPLAY_MODE_RECORDED_AT);
  EXPECT_EQ(service_.Replay(auditor, replay).status().code(), absl::StatusCode::kNotFound);
  v1::ListDisclosuresRequest list;
  list.set_case_id("c1");
  EXPECT_EQ(service_.Disclosures(auditor, list).status().code(), absl::StatusCode::kNotFound);
  list.set_case_id("no-such-case");
  EXPECT_EQ(service_.Disclosures(Caller(common::v1::ROLE_AUDITOR), list).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ReplayServiceTest, BrokerDownIsUnavailable) {
  source_.failure = absl::UnavailableError("broker down");
  v1::ListDisclosuresRequest list;
  list.set_patient_mrn("MRN-1");
  EXPECT_EQ(service_.Disclosures(Caller(common::v1::ROLE_AUDITOR), list).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(ReplayServiceTest, PatientAccountingCoversSixYearsAcrossCasesOfTheTenantOnly) {
  v1::ListDisclosuresRequest list;
  list.set_patient_mrn("MRN-1");
  auto found = service_.Disclosures(Caller(common::v1::ROLE_PRIVACY_OFFICER), list);
  ASSERT_TRUE(found.ok()) << found.status();
  std::vector<std::string> ids;
  for (const auto& d : found->disclosures()) ids.push_back(absl::StrCat(d.case_id(), "/", d.disclosure_id()));
  // Not the 7-year-old one, not tenant-b's.
  EXPECT_EQ(ids, (std::vector<std::string>{"c1/disclosure-2", "c1/disclosure-3", "c1/disclosure-4",
                                           "c1/disclosure-5", "c2/disclosure-1"}));
  EXPECT_EQ(found->end_time().seconds(), absl::ToUnixSeconds(kNow));
  EXPECT_EQ(found->start_time().seconds(), absl::ToUnixSeconds(SixYearsBefore(kNow)));
  EXPECT_TRUE(found->next_page_token().empty());
}

TEST_F(ReplayServiceTest, PagesContinueAfterTheLastEntryEvenWhenNewOnesArrive) {
  v1::ListDisclosuresRequest list;
  list.set_case_id("c1");
  list.set_page_size(2);
  const auto officer = Caller(common::v1::ROLE_PRIVACY_OFFICER);
  std::vector<std::string> ids;
  int pages = 0;
  for (; pages < 10; ++pages) {
    auto page = service_.Disclosures(officer, list);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& d : page->disclosures()) ids.push_back(d.disclosure_id());
    if (pages == 0) {
      // A disclosure recorded between two pages lands at the end, not in a page already read.
      source_.cases["c1"].push_back(Event("c1", "tenant-a", 7, Disclosed(6), kNow - absl::Minutes(1)));
    }
    if (page->next_page_token().empty()) break;
    list.set_page_token(page->next_page_token());
  }
  EXPECT_EQ(pages, 2);
  EXPECT_EQ(ids, (std::vector<std::string>{"disclosure-2", "disclosure-3", "disclosure-4",
                                           "disclosure-5", "disclosure-6"}));
}

TEST_F(ReplayServiceTest, ExplicitWindowBoundsBothEnds) {
  v1::ListDisclosuresRequest list;
  list.set_case_id("c1");
  *list.mutable_start_time() = Ts(kNow - absl::Hours(24 * 365 * 7) - absl::Hours(1));
  *list.mutable_end_time() = Ts(kNow - absl::Hours(24 * 365 * 5));
  auto found = service_.Disclosures(Caller(common::v1::ROLE_AUDITOR), list);
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->disclosures_size(), 2);
  EXPECT_EQ(found->disclosures(0).disclosure_id(), "disclosure-1");
  EXPECT_EQ(found->disclosures(1).disclosure_id(), "disclosure-2");
}

}  // namespace
}  // namespace clinical::audit::replay

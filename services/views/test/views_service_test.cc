// The views service as a real process next to the case service (both real processes, real
// Kafka and redis-server), driven over gRPC: a command's position passed to a query shows
// its effect; identity, tenancy and validation at the edge; SIGKILL during a load and
// restart equals a fresh rebuild key by key; a rebuild under query load serves without
// errors and switches atomically (never back).
#include <signal.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clinical/case/v1/case_service.grpc.pb.h"
#include "clinical/projection/versions.h"
#include "clinical/redis/connection.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/subprocess.h"
#include "clinical/testing/wait.h"
#include "clinical/views/v1/views_service.grpc.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace clinical::views {
namespace {

namespace cv1 = ::clinical::case_::v1;
namespace vv1 = ::clinical::views::v1;
using ::clinical::testing::Platform;
using ::clinical::testing::Subprocess;
using ::clinical::testing::UniqueName;

int ListeningPort(const std::string& line) {
  auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || parsed.value("msg", "") != "listening") return 0;
  return parsed.value("port", 0);
}

// A service binary as a child process with its gRPC channel.
class Process {
 public:
  explicit Process(std::vector<std::string> argv) : argv_(std::move(argv)) {}
  void Start() {
    auto process = Subprocess::Start(argv_);
    ASSERT_TRUE(process.ok()) << process.status();
    process_ = std::move(*process);
    auto line = process_->WaitForLine([](const std::string& l) { return ListeningPort(l) > 0; },
                                      absl::Seconds(90));
    ASSERT_TRUE(line.has_value()) << absl::StrJoin(process_->Lines(), "\n");
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", ListeningPort(*line)),
                                   grpc::InsecureChannelCredentials());
  }
  void Kill() {
    process_->Signal(SIGKILL);
    ASSERT_TRUE(process_->Wait(absl::Seconds(10)).has_value());
  }
  void Stop() {
    process_->Signal(SIGTERM);
    auto status = process_->Wait(absl::Seconds(30));
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << absl::StrJoin(process_->Lines(), "\n");
  }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  std::vector<std::string> argv_;
  std::unique_ptr<Subprocess> process_;
  std::shared_ptr<grpc::Channel> channel_;
};

Process CaseService(const std::string& topic) {
  return Process({testing::BinaryPath("services/case/case_service"), "--grpc-port=0",
                  "--shutdown-grace=5s", "--case-topic-partitions=3", "--case-topic=" + topic,
                  "--writer-id=" + UniqueName("views-test-writer"),
                  "--kafka-bootstrap=" + Platform::Get().kafka_bootstrap});
}

Process ViewsService(const std::string& topic, const std::string& root, const std::string& version) {
  return Process({testing::BinaryPath("services/views/views_service"), "--grpc-port=0",
                  "--shutdown-grace=5s", "--case-topic-partitions=3", "--case-topic=" + topic,
                  "--view-root=" + root, "--view-version=" + version,
                  "--redis-host=" + Platform::Get().redis_host,
                  absl::StrCat("--redis-port=", Platform::Get().redis_port),
                  "--kafka-bootstrap=" + Platform::Get().kafka_bootstrap});
}

struct Who {
  std::string user = "sup-1";
  std::string role = "supervisor";
  std::string tenant = "tenant-a";
};

std::unique_ptr<grpc::ClientContext> Context(const Who& who, absl::Duration timeout = absl::Seconds(30)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  context->AddMetadata("x-clinical-user", who.user);
  context->AddMetadata("x-clinical-role", who.role);
  context->AddMetadata("x-clinical-tenant", who.tenant);
  return context;
}

// Case commands through the real case service; each returns the command's log position.
class Cases {
 public:
  explicit Cases(std::shared_ptr<grpc::Channel> channel) : stub_(cv1::CaseService::NewStub(channel)) {}

  std::pair<std::string, common::v1::LogPosition> Open(const std::string& tag, int acuity,
                                                      const Who& who = {"intake-1", "case_manager", "tenant-a"}) {
    cv1::OpenCaseRequest r;
    r.set_command_id(UniqueName(tag));
    r.mutable_patient()->set_mrn("MRN-1");
    r.mutable_patient()->set_given_name("Test");
    r.mutable_patient()->set_family_name("Patient");
    r.mutable_patient()->set_birth_date("1950-01-01");
    r.set_program("elder_care");
    r.set_priority(2);
    r.set_acuity(acuity);
    r.mutable_referral()->set_source(cv1::REFERRAL_SOURCE_HOSPITAL);
    r.mutable_referral()->set_reason("discharge");
    r.set_initial_status(cv1::CASE_STATUS_ACTIVE);
    r.set_team_id("team-north");
    cv1::OpenCaseResponse response;
    auto status = stub_->OpenCase(Context(who).get(), r, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.case_id(), response.position()};
  }
  common::v1::LogPosition Assign(const std::string& case_id, const std::string& cm,
                                 const std::string& tenant = "tenant-a") {
    cv1::AssignCaseRequest r;
    r.set_case_id(case_id);
    r.set_command_id(UniqueName("assign"));
    r.set_case_manager_id(cm);
    cv1::AssignCaseResponse response;
    auto status = stub_->AssignCase(Context({"sup-1", "supervisor", tenant}).get(), r, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.position();
  }
  common::v1::LogPosition Accept(const std::string& case_id, const std::string& cm) {
    cv1::AcceptAssignmentRequest r;
    r.set_case_id(case_id);
    r.set_command_id(UniqueName("accept"));
    cv1::AcceptAssignmentResponse response;
    auto status = stub_->AcceptAssignment(Context({cm, "case_manager", "tenant-a"}).get(), r, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.position();
  }
  common::v1::LogPosition Contact(const std::string& case_id, const std::string& cm) {
    cv1::AddNoteRequest r;
    r.set_case_id(case_id);
    r.set_command_id(UniqueName("note"));
    r.set_kind(cv1::NOTE_KIND_CONTACT);
    r.set_channel(cv1::CONTACT_CHANNEL_PHONE);
    r.set_text("called");
    r.set_duration_minutes(20);
    cv1::AddNoteResponse response;
    auto status = stub_->AddNote(Context({cm, "case_manager", "tenant-a"}).get(), r, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.position();
  }
  common::v1::LogPosition Close(const std::string& case_id, const std::string& cm) {
    cv1::RequestClosureRequest r;
    r.set_case_id(case_id);
    r.set_command_id(UniqueName("close"));
    r.set_reason(cv1::CLOSURE_REASON_GOALS_MET);
    r.set_outcome_summary("stable at home");
    r.set_satisfaction(cv1::SATISFACTION_SATISFIED);
    cv1::RequestClosureResponse response;
    auto status = stub_->RequestClosure(Context({cm, "case_manager", "tenant-a"}).get(), r, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    cv1::ApproveClosureRequest a;
    a.set_case_id(case_id);
    a.set_command_id(UniqueName("approve"));
    a.set_comment("approved");
    cv1::ApproveClosureResponse approved;
    status = stub_->ApproveClosure(Context({"sup-1", "supervisor", "tenant-a"}).get(), a, &approved);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return approved.position();
  }

 private:
  std::unique_ptr<cv1::CaseService::Stub> stub_;
};

std::vector<std::string> FieldsOf(const grpc::Status& status) {
  google::rpc::Status details;
  std::vector<std::string> fields;
  if (!details.ParseFromString(status.error_details())) return fields;
  for (const auto& any : details.details()) {
    google::rpc::BadRequest bad;
    if (any.UnpackTo(&bad)) {
      for (const auto& v : bad.field_violations()) fields.push_back(v.field());
    }
  }
  return fields;
}

TEST(ViewsServiceTest, CommandPositionPassedToQueryShowsItsEffect) {
  const std::string topic = UniqueName("views-test-case");
  const std::string root = UniqueName("views-test");
  Process case_service = CaseService(topic);
  ASSERT_NO_FATAL_FAILURE(case_service.Start());
  Process views = ViewsService(topic, root, "v1");
  ASSERT_NO_FATAL_FAILURE(views.Start());
  Cases cases(case_service.channel());
  auto stub = vv1::ViewsService::NewStub(views.channel());

  // Each command's position, passed to the query, makes its effect visible at once.
  auto [case_id, opened] = cases.Open("open", 3);
  const auto assigned = cases.Assign(case_id, "cm-7");
  vv1::GetCaseloadRequest caseload;
  caseload.set_case_manager_id("cm-7");
  *caseload.add_min_positions() = assigned;
  vv1::GetCaseloadResponse got;
  auto status = stub->GetCaseload(Context({}).get(), caseload, &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(got.cases_size(), 1);
  EXPECT_EQ(got.cases(0).case_id(), case_id);
  EXPECT_FALSE(got.cases(0).assignment_accepted());
  EXPECT_EQ(got.counters().open_cases(), 1);
  EXPECT_EQ(got.counters().acuity_load(), 3);
  EXPECT_EQ(got.counters().unaccepted_assignments(), 1);
  EXPECT_EQ(got.counters().by_status().at("CASE_STATUS_ACTIVE"), 1);
  EXPECT_EQ(got.view_version(), "v1");

  const auto accepted = cases.Accept(case_id, "cm-7");
  vv1::GetWorklistRequest worklist;
  worklist.set_case_manager_id("cm-7");
  *worklist.add_min_positions() = accepted;
  vv1::GetWorklistResponse items;
  status = stub->GetWorklist(Context({"cm-7", "case_manager", "tenant-a"}).get(), worklist, &items);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(items.items_size(), 1);
  EXPECT_TRUE(items.items(0).summary().assignment_accepted());
  EXPECT_FALSE(items.items(0).summary().has_last_contact_at());

  const auto contacted = cases.Contact(case_id, "cm-7");
  *worklist.mutable_min_positions(0) = contacted;
  status = stub->GetWorklist(Context({"cm-7", "case_manager", "tenant-a"}).get(), worklist, &items);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(items.items_size(), 1);
  EXPECT_TRUE(items.items(0).summary().has_last_contact_at());

  // Balancing sees the load: 3 of 60 taken.
  vv1::SuggestCaseManagersRequest suggest;
  suggest.set_program("elder_care");
  suggest.set_acuity(5);
  vv1::SuggestCaseManagersResponse suggested;
  status = stub->SuggestCaseManagers(Context({}).get(), suggest, &suggested);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(suggested.candidates_size(), 1);
  EXPECT_EQ(suggested.candidates(0).case_manager_id(), "cm-7");
  EXPECT_EQ(suggested.candidates(0).acuity_load(), 3);
  EXPECT_EQ(suggested.candidates(0).caseload_limit(), 60);

  // Closure (elder_care needs approval): the outcome view of this month shows it.
  const auto closed = cases.Close(case_id, "cm-7");
  vv1::GetOutcomesRequest outcomes;
  outcomes.set_dimension(vv1::DIMENSION_CASE_MANAGER);
  outcomes.set_group_id("cm-7");
  outcomes.set_period_kind(vv1::PERIOD_KIND_MONTH);
  outcomes.mutable_period_at()->set_seconds(absl::ToUnixSeconds(absl::Now()));
  *outcomes.add_min_positions() = closed;
  vv1::GetOutcomesResponse figures;
  status = stub->GetOutcomes(Context({}).get(), outcomes, &figures);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(figures.cases_assigned(), 1);
  EXPECT_EQ(figures.cases_closed(), 1);
  EXPECT_EQ(figures.closure_reasons().at("CLOSURE_REASON_GOALS_MET"), 1);
  EXPECT_DOUBLE_EQ(figures.goals_met_closure_rate(), 1.0);
  EXPECT_DOUBLE_EQ(figures.mean_satisfaction(), 4.0);
  EXPECT_EQ(figures.first_contacts(), 1);
  EXPECT_EQ(figures.contact_minutes(), 20);
  EXPECT_TRUE(figures.has_median_days_to_close());
  outcomes.set_dimension(vv1::DIMENSION_TENANT);
  outcomes.clear_group_id();
  status = stub->GetOutcomes(Context({}).get(), outcomes, &figures);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(figures.cases_opened(), 1);

  *caseload.mutable_min_positions(0) = closed;
  status = stub->GetCaseload(Context({}).get(), caseload, &got);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(got.cases_size(), 0);
  EXPECT_EQ(got.counters().open_cases(), 0);

  // Tenancy: another tenant's supervisor sees nothing of tenant-a.
  vv1::ListRollupsRequest rollups;
  rollups.set_dimension(vv1::DIMENSION_CASE_MANAGER);
  vv1::ListRollupsResponse listed;
  status = stub->ListRollups(Context({"sup-9", "supervisor", "tenant-b"}).get(), rollups, &listed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(listed.rollups_size(), 0);
  status = stub->ListRollups(Context({}).get(), rollups, &listed);
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(listed.rollups_size(), 1);
  EXPECT_EQ(listed.rollups(0).group_id(), "cm-7");
  status = stub->GetOutcomes(Context({"sup-9", "supervisor", "tenant-b"}).get(), outcomes, &figures);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(figures.cases_opened(), 0);
  EXPECT_EQ(figures.cases_closed(), 0);

  // Identity and roles.
  status = stub->GetCaseload(Context({"cm-8", "case_manager", "tenant-a"}).get(), caseload, &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  status = stub->ListRollups(Context({"cm-7", "case_manager", "tenant-a"}).get(), rollups, &listed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  {
    grpc::ClientContext anonymous;
    status = stub->GetCaseload(&anonymous, caseload, &got);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }

  // Validation: every bad field at once, as google.rpc.BadRequest.
  vv1::GetOutcomesRequest bad;
  bad.set_dimension(vv1::DIMENSION_TEAM);
  status = stub->GetOutcomes(Context({}).get(), bad, &figures);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const auto fields = FieldsOf(status);
  EXPECT_EQ(std::set<std::string>(fields.begin(), fields.end()),
            (std::set<std::string>{"group_id", "period_kind", "period_at"}));
  vv1::GetCaseloadRequest wrong_topic = caseload;
  wrong_topic.mutable_min_positions(0)->set_topic("clinical.other.events.v1");
  status = stub->GetCaseload(Context({}).get(), wrong_topic, &got);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(FieldsOf(status), std::vector<std::string>{"min_positions[0].topic"});

  // A position the view cannot reach: bounded by the call's deadline.
  vv1::GetCaseloadRequest future = caseload;
  future.mutable_min_positions(0)->set_offset(1'000'000'000);
  const absl::Time asked = absl::Now();
  status = stub->GetCaseload(Context({}, absl::Seconds(2)).get(), future, &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(absl::Now() - asked, absl::Seconds(10));

  views.Stop();
  case_service.Stop();
}

// Every key of one version, by type, as comparable text (offset keys included).
std::map<std::string, std::string> Dump(redis::Connection& redis, const std::string& prefix) {
  std::map<std::string, std::string> out;
  std::string cursor = "0";
  do {
    auto scan = redis.Command({"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
    EXPECT_TRUE(scan.ok());
    if (!scan.ok()) return out;
    cursor = scan->elements()[0].str();
    for (const auto& k : scan->elements()[1].elements()) {
      const std::string key = k.str();
      auto type = redis.Command({"TYPE", key});
      std::vector<std::string> values;
      if (type->str() == "hash") {
        auto all = redis.Command({"HGETALL", key});
        for (size_t i = 0; i + 1 < all->elements().size(); i += 2) {
          values.push_back(all->elements()[i].str() + "=" + all->elements()[i + 1].str());
        }
      } else if (type->str() == "set") {
        auto all = redis.Command({"SMEMBERS", key});
        for (const auto& m : all->elements()) values.push_back(m.str());
      } else if (type->str() == "zset") {
        auto all = redis.Command({"ZRANGE", key, "0", "-1", "WITHSCORES"});
        for (const auto& m : all->elements()) values.push_back(m.str());
      } else {
        auto value = redis.Command({"GET", key});
        values.push_back(value->str());
      }
      std::sort(values.begin(), values.end());
      out[key.substr(prefix.size())] = absl::StrJoin(values, ",");
    }
  } while (cursor != "0");
  return out;
}

TEST(ViewsServiceTest, SigkillDuringLoadThenRebuildUnderQueriesEqualsFreshRebuild) {
  const std::string topic = UniqueName("views-crash-case");
  const std::string root = UniqueName("views-crash");
  Process case_service = CaseService(topic);
  ASSERT_NO_FATAL_FAILURE(case_service.Start());
  Process views = ViewsService(topic, root, "v1");
  ASSERT_NO_FATAL_FAILURE(views.Start());

  // A writer thread drives cases through the case service while the views die and return.
  constexpr int kCases = 60;
  std::atomic<int> done{0};
  common::v1::LogPosition last;
  std::mutex last_mutex;
  std::thread writer([&] {
    Cases cases(case_service.channel());
    for (int i = 0; i < kCases; ++i) {
      const std::string cm = absl::StrCat("cm-", i % 7);
      auto [id, p] = cases.Open("load-open", 1 + i % 5);
      cases.Assign(id, cm);
      if (i % 2 == 0) cases.Accept(id, cm);
      auto p2 = cases.Contact(id, cm);
      if (i % 5 == 0) p2 = cases.Close(id, cm);
      {
        std::lock_guard<std::mutex> lock(last_mutex);
        last = p2;
      }
      done = i + 1;
    }
  });
  auto stub = vv1::ViewsService::NewStub(views.channel());
  ASSERT_TRUE(testing::WaitUntil([&] { return done.load() >= kCases / 4; }, absl::Seconds(120)));
  ASSERT_NO_FATAL_FAILURE(views.Kill());
  ASSERT_TRUE(testing::WaitUntil([&] { return done.load() >= kCases / 2; }, absl::Seconds(120)));
  ASSERT_NO_FATAL_FAILURE(views.Start());
  writer.join();
  ASSERT_EQ(done.load(), kCases);

  // Wait until the restarted view has everything: the tenant rollup counts every case.
  stub = vv1::ViewsService::NewStub(views.channel());
  auto redis = redis::Connection::Connect(Platform::Get().redis_host, Platform::Get().redis_port,
                                          absl::Seconds(5));
  ASSERT_TRUE(redis.ok());
  vv1::ListRollupsRequest all;
  all.set_dimension(vv1::DIMENSION_TENANT);
  {
    std::lock_guard<std::mutex> lock(last_mutex);
    *all.add_min_positions() = last;
  }
  vv1::ListRollupsResponse rollups;
  auto status = stub->ListRollups(Context({}).get(), all, &rollups);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(rollups.rollups(0).counters().open_cases(), kCases - kCases / 5);

  // A rebuild (v2) in a second process, while a client keeps querying the first.
  std::atomic<bool> querying{true};
  std::atomic<int> errors{0};
  std::atomic<int> answered{0};
  std::atomic<bool> saw_v2{false};
  std::vector<std::string> versions_seen;  // written by the reader only, read after join
  std::thread reader([&] {
    auto query = vv1::ViewsService::NewStub(views.channel());
    for (int i = 0; i < 100000 && querying.load(); ++i) {
      vv1::GetCaseloadRequest r;
      r.set_case_manager_id("cm-1");
      vv1::GetCaseloadResponse response;
      auto s = query->GetCaseload(Context({}).get(), r, &response);
      if (!s.ok()) {
        ++errors;
        continue;
      }
      if (versions_seen.empty() || versions_seen.back() != response.view_version()) {
        versions_seen.push_back(response.view_version());
      }
      if (response.view_version() == "v2") saw_v2 = true;
      ++answered;
    }
  });
  ASSERT_TRUE(testing::WaitUntil([&] { return answered.load() > 0; }, absl::Seconds(30)));
  Process rebuild = ViewsService(topic, root, "v2");
  ASSERT_NO_FATAL_FAILURE(rebuild.Start());
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        auto active = projection::ActiveVersion(*redis, root);
        return active.ok() && active->has_value() && **active == "v2";
      },
      absl::Seconds(120)));
  // Keep querying past the switch until the first process answers from v2.
  const bool switched = testing::WaitUntil([&] { return saw_v2.load(); }, absl::Seconds(30));
  querying = false;
  reader.join();
  EXPECT_TRUE(switched);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(answered.load(), 10);
  // Exactly one switch, v1 -> v2, never back.
  EXPECT_EQ(versions_seen, (std::vector<std::string>{"v1", "v2"}))
      << absl::StrJoin(versions_seen, " -> ");

  // The view that was SIGKILLed mid-load equals the fresh rebuild, key by key.
  const auto v1 = Dump(*redis, absl::StrCat(root, ":v1:"));
  const auto v2 = Dump(*redis, absl::StrCat(root, ":v2:"));
  EXPECT_GT(v1.size(), static_cast<size_t>(kCases));
  EXPECT_EQ(v1.size(), v2.size());
  for (const auto& [key, value] : v1) {
    auto other = v2.find(key);
    ASSERT_NE(other, v2.end()) << key;
    EXPECT_EQ(value, other->second) << key;
  }

  rebuild.Stop();
  views.Stop();
  case_service.Stop();
}

}  // namespace
}  // namespace clinical::views

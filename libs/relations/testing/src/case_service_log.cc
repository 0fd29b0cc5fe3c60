#include "clinical/relations/testing/case_service_log.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "clinical/kafka/admin.h"
#include "clinical/relations/facts.h"
#include "clinical/testing/platform.h"
#include "gtest/gtest.h"

namespace clinical::relations::testing {
namespace {

namespace cv1 = case_::v1;

std::unique_ptr<eventstore::EventStore> OpenStore(const std::string& topic, const std::string& aggregate_type,
                                                  logging::Logger& logger) {
  eventstore::StoreOptions options;
  options.cluster = clinical::testing::Platform::Get().kafka_admin;
  options.topic = topic;
  options.aggregate_type = aggregate_type;
  options.writer_id = clinical::testing::UniqueName("case-service.log");
  options.kafka_timeout = absl::Seconds(30);
  options.checkpoint_every_events = 0;
  auto store = eventstore::EventStore::Open(options, logger);
  EXPECT_TRUE(store.ok()) << topic << ": " << store.status();
  if (!store.ok()) return nullptr;
  const absl::Status acquired = (*store)->Acquire();
  EXPECT_TRUE(acquired.ok()) << topic << ": " << acquired;
  return std::move(*store);
}

}  // namespace

CaseServiceLog::CaseServiceLog(std::string case_topic, std::string organisation_topic)
    : case_topic_(std::move(case_topic)),
      organisation_topic_(std::move(organisation_topic)),
      logger_("case-service-log", std::cerr, logging::Level::kWarn) {}

CaseServiceLog::~CaseServiceLog() {
  if (cases_) cases_->Release();
  if (organisations_) organisations_->Release();
}

std::unique_ptr<CaseServiceLog> CaseServiceLog::Create(const std::string& case_topic,
                                                       const std::string& organisation_topic, int partitions) {
  kafka::TopicSpec case_spec, organisation_spec;
  case_spec.name = case_topic;
  organisation_spec.name = organisation_topic;
  case_spec.partitions = organisation_spec.partitions = partitions;
  const absl::Status created = kafka::EnsureTopics(clinical::testing::Platform::Get().kafka_admin,
                                                   {case_spec, organisation_spec}, absl::Seconds(30));
  EXPECT_TRUE(created.ok()) << created;
  std::unique_ptr<CaseServiceLog> log(new CaseServiceLog(case_topic, organisation_topic));
  log->cases_ = OpenStore(case_topic, "case", log->logger_);
  log->organisations_ = OpenStore(organisation_topic, "organisation", log->logger_);
  return log;
}

common::v1::LogPosition CaseServiceLog::Append(eventstore::EventStore& store, const std::string& tenant,
                                               const std::string& aggregate_id,
                                               const google::protobuf::Message& event, const std::string& actor) {
  eventstore::AppendRequest request;
  request.aggregate_id = aggregate_id;
  request.command_id = clinical::testing::UniqueName("command");
  common::v1::EventEnvelope& envelope = request.events.emplace_back();
  envelope.set_event_type(event.GetDescriptor()->full_name());
  envelope.mutable_payload()->PackFrom(event);
  envelope.set_tenant_id(tenant);
  envelope.mutable_occurred_at()->set_seconds(absl::ToUnixSeconds(absl::Now()));
  envelope.mutable_actor()->set_user_id(actor);
  envelope.set_schema_version(1);
  auto appended = store.Append(std::move(request));
  EXPECT_TRUE(appended.ok()) << event.GetDescriptor()->name() << ": " << appended.status();
  return appended.ok() ? appended->position : common::v1::LogPosition();
}

common::v1::LogPosition CaseServiceLog::Case(const std::string& tenant, const std::string& case_id,
                                             const google::protobuf::Message& event, const std::string& actor) {
  return Append(*cases_, tenant, case_id, event, actor);
}

common::v1::LogPosition CaseServiceLog::Organisation(const std::string& tenant, const google::protobuf::Message& event) {
  return Append(*organisations_, tenant, OrganisationId(tenant), event, "case-test");
}

std::string CaseServiceLog::Open(const std::string& tenant, const std::string& team, const std::string& manager) {
  const std::string case_id = clinical::testing::UniqueName("case");
  cv1::CaseOpened opened;
  opened.set_program("elder_care");
  opened.set_priority(2);
  opened.set_acuity(2);
  opened.set_status(cv1::CASE_STATUS_ACTIVE);
  opened.set_team_id(team);
  Case(tenant, case_id, opened);
  teams_[case_id] = team;
  if (!manager.empty()) Assign(tenant, case_id, manager);
  return case_id;
}

common::v1::LogPosition CaseServiceLog::Assign(const std::string& tenant, const std::string& case_id,
                                               const std::string& manager) {
  // As the case service writes it: the manager it replaces and the case's team (what the
  // notification rules route by).
  cv1::CaseAssigned assigned;
  assigned.set_case_manager_id(manager);
  assigned.set_previous_case_manager_id(managers_[case_id]);
  assigned.set_team_id(teams_[case_id]);
  managers_[case_id] = manager;
  return Case(tenant, case_id, assigned);
}

common::v1::LogPosition CaseServiceLog::AddStaff(const std::string& tenant, const std::string& case_id,
                                                 const std::string& member_id, const std::string& user_id) {
  cv1::CareTeamMemberAdded added;
  added.mutable_member()->set_member_id(member_id);
  added.mutable_member()->set_staff_user_id(user_id);
  return Case(tenant, case_id, added);
}

common::v1::LogPosition CaseServiceLog::Close(const std::string& tenant, const std::string& case_id) {
  return Case(tenant, case_id, cv1::CaseClosed());
}

common::v1::LogPosition CaseServiceLog::Grant(const std::string& tenant, const std::string& case_id,
                                              const std::string& grant_id, const std::string& user_id,
                                              const std::string& team_id, absl::Time expires_at) {
  cv1::EmergencyAccessGranted granted;
  cv1::EmergencyAccessGrant* grant = granted.mutable_grant();
  grant->set_grant_id(grant_id);
  grant->set_user_id(user_id);
  grant->set_role(common::v1::ROLE_CASE_MANAGER);
  grant->set_reason("patient unresponsive, history needed");
  grant->mutable_granted_at()->set_seconds(absl::ToUnixSeconds(absl::Now()));
  grant->mutable_expires_at()->set_seconds(absl::ToUnixSeconds(expires_at));
  grant->set_team_id(team_id);
  return Case(tenant, case_id, granted, user_id);
}

common::v1::LogPosition CaseServiceLog::SetTeam(const std::string& tenant, const std::string& team,
                                                const std::vector<std::string>& supervisors,
                                                const std::vector<std::string>& members) {
  cv1::TeamSet set;
  set.mutable_team()->set_team_id(team);
  for (const std::string& s : supervisors) set.mutable_team()->add_supervisor_ids(s);
  for (const std::string& m : members) set.mutable_team()->add_member_ids(m);
  return Organisation(tenant, set);
}

common::v1::LogPosition CaseServiceLog::Configure(const std::string& tenant,
                                                  const std::vector<std::string>& privacy_officers) {
  cv1::OrganisationConfigured configured;
  for (const std::string& id : privacy_officers) configured.add_privacy_officer_ids(id);
  return Organisation(tenant, configured);
}

}  // namespace clinical::relations::testing

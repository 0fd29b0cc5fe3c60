#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "clinical/case/v1/events.pb.h"
#include "clinical/common/v1/types.pb.h"
#include "clinical/eventstore/event_store.h"
#include "clinical/logging/logger.h"
#include "google/protobuf/message.h"

namespace clinical::relations::testing {

// The case service's topics as the services that follow them see them, written by a test:
// case events on the case topic (aggregate type "case") and organisation events on the
// organisation topic (aggregate type "organisation", id "organisation-<tenant>"), through the
// same transactional event store the case service appends with, each envelope carrying the
// event message itself (as the case service's ToEnvelope packs it). Tests of the scheduling,
// views and notification services use it to set up exactly the assignments, care teams,
// teams and grants an authorization case needs, without depending on who the case service
// lets do what. Writes as the platform's admin principal; the topics are created if missing.
// Every write fails the running test if it is not acknowledged. Not thread-safe: one test
// thread writes.
class CaseServiceLog {
 public:
  static std::unique_ptr<CaseServiceLog> Create(const std::string& case_topic,
                                                const std::string& organisation_topic, int partitions = 3);
  ~CaseServiceLog();

  // Appends one event (a message of the clinical.case.v1.CaseEvent oneof, e.g. CaseAssigned)
  // to the case; returns its log position.
  common::v1::LogPosition Case(const std::string& tenant, const std::string& case_id,
                               const google::protobuf::Message& event, const std::string& actor = "case-test");
  // Appends one organisation event (OrganisationConfigured, TeamSet) to the tenant's
  // organisation.
  common::v1::LogPosition Organisation(const std::string& tenant, const google::protobuf::Message& event);

  // Shorthands. Open: a new case (random id) of `team`, ACTIVE, program "elder_care",
  // assigned to `manager` unless empty; returns its id.
  std::string Open(const std::string& tenant, const std::string& team, const std::string& manager = "");
  common::v1::LogPosition Assign(const std::string& tenant, const std::string& case_id, const std::string& manager);
  common::v1::LogPosition AddStaff(const std::string& tenant, const std::string& case_id, const std::string& member_id,
                                   const std::string& user_id);
  common::v1::LogPosition Close(const std::string& tenant, const std::string& case_id);
  common::v1::LogPosition Grant(const std::string& tenant, const std::string& case_id, const std::string& grant_id,
                                const std::string& user_id, const std::string& team_id, absl::Time expires_at);
  common::v1::LogPosition SetTeam(const std::string& tenant, const std::string& team,
                                  const std::vector<std::string>& supervisors, const std::vector<std::string>& members);
  common::v1::LogPosition Configure(const std::string& tenant, const std::vector<std::string>& privacy_officers);

  const std::string& case_topic() const { return case_topic_; }
  const std::string& organisation_topic() const { return organisation_topic_; }

 private:
  CaseServiceLog(std::string case_topic, std::string organisation_topic);
  common::v1::LogPosition Append(eventstore::EventStore& store, const std::string& tenant, const std::string& aggregate_id,
                                 const google::protobuf::Message& event, const std::string& actor);

  const std::string case_topic_;
  const std::string organisation_topic_;
  logging::Logger logger_;
  std::unique_ptr<eventstore::EventStore> cases_;
  std::unique_ptr<eventstore::EventStore> organisations_;
  // What the case service would remember to fill in later events: each case's team and
  // current manager (by case id).
  std::map<std::string, std::string> teams_;
  std::map<std::string, std::string> managers_;
};

}  // namespace clinical::relations::testing

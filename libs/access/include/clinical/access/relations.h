#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "clinical/access/decision.h"
#include "clinical/common/v1/access_policy.pb.h"
#include "google/protobuf/message.h"

namespace clinical::access {

// Where a service's authorization facts come from: the organisation (teams, supervisors)
// and case data (assignments, care teams, emergency grants) it folds from the events, never
// request fields. Each service has one (libs/relations holds the shared fold); a service
// whose rules need no facts (tenant-wide roles only) has none. Implementations are
// thread-safe and answer as of now, read-your-writes where the service can (a follower of
// another service's topic catches up first); UNAVAILABLE when it cannot.
class RelationsSource {
 public:
  virtual ~RelationsSource() = default;

  // How `principal` stands to `case_id` (Where::kUnknown when there is no such case).
  virtual absl::StatusOr<CaseRelations> RelationsTo(const Principal& principal, const std::string& case_id) const = 0;

  // Whether `principal` supervises a team that `person_id` is a member or supervisor of.
  virtual absl::StatusOr<bool> Supervises(const Principal& principal, const std::string& person_id) const = 0;

  // The case a resource belongs to (an appointment's case), for case_of_path; "" when
  // unknown. Only services with such resources override it.
  virtual absl::StatusOr<std::string> CaseOf(const Principal& principal, const std::string& resource_id) const;

  // The person a subject_path value stands for: the value itself (a person id) unless the
  // service maps a resource to its person (a calendar to its owner).
  virtual absl::StatusOr<std::string> SubjectOf(const Principal& principal, const std::string& value) const;
};

// The facts `policy` needs about `request` for `principal`, from `source` (null: the service
// holds no facts; named cases are then kUnknown and the subject is taken as named). Only
// what the rules of the caller's role use is looked up.
absl::StatusOr<Relations> RelationsFor(const common::v1::AccessPolicy& policy, const Principal& principal,
                                       const google::protobuf::Message& request, const RelationsSource* source);

}  // namespace clinical::access

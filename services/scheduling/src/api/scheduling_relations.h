#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "clinical/access/relations.h"
#include "clinical/relations/followed_directory.h"
#include "scheduling_engine.h"

namespace clinical::scheduling {

// The cases as the scheduling service sees them: the shared follower of the case service's
// topics (relations::FollowedDirectory), read-your-writes, reduced to what booking needs.
class FollowedCaseDirectory final : public CaseDirectory {
 public:
  explicit FollowedCaseDirectory(const relations::FollowedDirectory& followed) : followed_(followed) {}
  absl::StatusOr<CaseInfo> Lookup(const std::string& case_id) override;

 private:
  const relations::FollowedDirectory& followed_;
};

// The facts of scheduling's access decisions (host.SetRelations): case relationships and
// team supervision from the followed directory, plus scheduling's own resources —
// an appointment belongs to its case (case_of_path "request.appointment_id"), a calendar to
// the case manager who owns it (subject_path "request.calendar_id"). A resource of another
// tenant maps to nothing a caller of this tenant could stand in a relation to: its case is
// answered as another tenant's (NOT_FOUND), its owner as nobody.
class SchedulingRelations final : public access::RelationsSource {
 public:
  SchedulingRelations(const relations::Directory& directory, const SchedulingEngine& engine)
      : directory_(directory), engine_(engine) {}

  absl::StatusOr<access::CaseRelations> RelationsTo(const access::Principal& principal,
                                                    const std::string& case_id) const override {
    return directory_.RelationsTo(principal, case_id);
  }
  absl::StatusOr<bool> Supervises(const access::Principal& principal, const std::string& person_id) const override {
    return directory_.Supervises(principal, person_id);
  }
  absl::StatusOr<std::string> CaseOf(const access::Principal& principal, const std::string& appointment_id) const override;
  // A calendar id names its owner; any other value (CreateCalendar's owner_id) is the person
  // itself.
  absl::StatusOr<std::string> SubjectOf(const access::Principal& principal, const std::string& value) const override;

 private:
  const relations::Directory& directory_;
  const SchedulingEngine& engine_;
};

}  // namespace clinical::scheduling

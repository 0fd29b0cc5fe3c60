#include "clinical/relations/directory.h"

namespace clinical::relations {

Directory::Directory(Clock clock, CatchUp catch_up) : clock_(std::move(clock)), catch_up_(std::move(catch_up)) {}

bool Directory::Apply(const common::v1::EventEnvelope& envelope) {
  absl::MutexLock lock(&mutex_);
  // Each aggregate's events reach a directory in version order (one partition per
  // aggregate, or the writer's own appends); an envelope at or below the version already
  // folded is one seen again (a follower re-reading after a retry, a writer rebuilding after
  // a lost acknowledgement) and must not be folded twice (a grant would count twice).
  if (envelope.aggregate_type() == "case") {
    CaseFacts& facts = cases_[envelope.aggregate_id()];
    if (envelope.aggregate_version() > 0 && envelope.aggregate_version() <= facts.version) return true;
    return ApplyCaseEvent(facts, envelope);
  }
  if (envelope.aggregate_type() == "organisation") {
    OrganisationFacts& facts = organisations_[envelope.tenant_id()];
    if (envelope.aggregate_version() > 0 && envelope.aggregate_version() <= facts.version) return true;
    return ApplyOrganisationEvent(facts, envelope);
  }
  return true;
}

std::optional<CaseFacts> Directory::Case(const std::string& case_id) const {
  absl::MutexLock lock(&mutex_);
  auto it = cases_.find(case_id);
  if (it == cases_.end()) return std::nullopt;
  return it->second;
}

OrganisationFacts Directory::Organisation(const std::string& tenant_id) const {
  absl::MutexLock lock(&mutex_);
  auto it = organisations_.find(tenant_id);
  if (it == organisations_.end()) {
    OrganisationFacts empty;
    empty.tenant_id = tenant_id;
    return empty;
  }
  return it->second;
}

size_t Directory::case_count() const {
  absl::MutexLock lock(&mutex_);
  return cases_.size();
}

absl::StatusOr<access::CaseRelations> Directory::RelationsTo(const access::Principal& principal,
                                                             const std::string& case_id) const {
  if (catch_up_) {
    if (absl::Status status = catch_up_(case_id); !status.ok()) return status;
  }
  absl::MutexLock lock(&mutex_);
  auto found = cases_.find(case_id);
  if (found == cases_.end()) {
    access::CaseRelations unknown;
    unknown.case_id = case_id;
    return unknown;
  }
  auto organisation = organisations_.find(principal.tenant_id);
  return relations::RelationsTo(case_id, found->second,
                                organisation == organisations_.end() ? nullptr : &organisation->second, principal,
                                clock_());
}

absl::StatusOr<bool> Directory::Supervises(const access::Principal& principal, const std::string& person_id) const {
  if (catch_up_) {
    if (absl::Status status = catch_up_(""); !status.ok()) return status;
  }
  absl::MutexLock lock(&mutex_);
  auto organisation = organisations_.find(principal.tenant_id);
  if (organisation == organisations_.end()) return false;
  return relations::Supervises(organisation->second, principal.user_id, person_id);
}

}  // namespace clinical::relations

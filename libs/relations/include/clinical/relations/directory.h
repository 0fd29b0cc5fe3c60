#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "clinical/access/relations.h"
#include "clinical/relations/facts.h"

namespace clinical::relations {

// The relations of one process: every case's and every tenant's organisation facts, folded
// from the envelopes handed to Apply (the case service from its own appends, the other
// services from a follower of the case and organisation topics), answering the access
// decisions (access::RelationsSource). Thread-safe.
class Directory : public access::RelationsSource {
 public:
  using Clock = std::function<absl::Time()>;
  // Read-your-writes for a follower: called before an answer, with the case id asked about
  // ("" for organisation facts); it returns once what was committed before the call has
  // been applied, or UNAVAILABLE. Empty: answers come from what has been applied.
  using CatchUp = std::function<absl::Status(const std::string& case_id)>;

  explicit Directory(Clock clock = [] { return absl::Now(); }, CatchUp catch_up = {});

  // Folds one envelope: aggregate type "case" into its case, "organisation" into its
  // tenant's organisation; anything else is ignored. An envelope whose version was already
  // folded is skipped (idempotent). False when the payload did not decode.
  bool Apply(const common::v1::EventEnvelope& envelope);

  std::optional<CaseFacts> Case(const std::string& case_id) const;
  // The tenant's organisation (empty facts, version 0, when never configured).
  OrganisationFacts Organisation(const std::string& tenant_id) const;
  // How many cases have been folded (a metric of the followers).
  size_t case_count() const;

  absl::StatusOr<access::CaseRelations> RelationsTo(const access::Principal& principal,
                                                    const std::string& case_id) const override;
  absl::StatusOr<bool> Supervises(const access::Principal& principal, const std::string& person_id) const override;

 private:
  const Clock clock_;
  const CatchUp catch_up_;
  mutable absl::Mutex mutex_;
  std::map<std::string, CaseFacts> cases_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, OrganisationFacts> organisations_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace clinical::relations

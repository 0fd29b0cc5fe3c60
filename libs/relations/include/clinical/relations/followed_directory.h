#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/kafka/cluster.h"
#include "clinical/logging/logger.h"
#include "clinical/relations/directory.h"
#include "clinical/relations/kafka_follower.h"

namespace clinical::relations {

// The relations of a service other than the case service: a Directory folded by a
// KafkaFollower of the case topic and/or the organisation topic (both written by the case
// service), read-your-writes. Every answer first catches the follower up — with the case's
// partition for a case, with the organisation topic for organisation facts — so a case
// assigned or a team changed in the case service just before the question is seen. UNAVAILABLE
// when the topics cannot be read up to date within `sync_timeout` (retry).
//
// Which topics: the scheduling service follows both (case relationships need the case's
// team and assignment, team supervision needs the organisation), the views and the
// notification service the organisation topic only. Thread-safe.
class FollowedDirectory {
 public:
  struct Options {
    kafka::Cluster cluster;
    std::string case_topic;          // empty: no case facts are followed
    std::string organisation_topic;  // empty: no organisation facts are followed
    absl::Duration sync_timeout = absl::Seconds(5);
    // The follower's name in logs, metrics and its consumer group.
    std::string name = "relations";
    // Now, for emergency grants' expiry.
    Directory::Clock clock = [] { return absl::Now(); };
  };

  static absl::StatusOr<std::unique_ptr<FollowedDirectory>> Start(Options options, logging::Logger& logger);

  // The facts of the access decisions (host.SetRelations), read-your-writes.
  const Directory& directory() const { return directory_; }
  // A case's facts as of every case event committed before the call; nullopt when there is
  // no such case.
  absl::StatusOr<std::optional<CaseFacts>> Case(const std::string& case_id) const;
  // The tenant's organisation as of every organisation event committed before the call
  // (empty facts when never configured).
  absl::StatusOr<OrganisationFacts> Organisation(const std::string& tenant_id) const;

  const KafkaFollower& follower() const { return *follower_; }
  const Options& options() const { return options_; }

 private:
  explicit FollowedDirectory(Options options);
  absl::Status CatchUp(const std::string& case_id) const;

  const Options options_;
  Directory directory_;
  // Declared last: destroyed first, so its thread stops before the directory it feeds.
  std::unique_ptr<KafkaFollower> follower_;
};

}  // namespace clinical::relations

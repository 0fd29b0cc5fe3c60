#include "clinical/relations/followed_directory.h"

namespace clinical::relations {

FollowedDirectory::FollowedDirectory(Options options)
    : options_(std::move(options)),
      directory_(options_.clock, [this](const std::string& case_id) { return CatchUp(case_id); }) {}

absl::Status FollowedDirectory::CatchUp(const std::string& case_id) const {
  // "" asks about organisation facts; anything else is a case id (the key of its events).
  if (case_id.empty()) return follower_->CatchUp(options_.organisation_topic, "");
  return follower_->CatchUp(options_.case_topic, case_id);
}

absl::StatusOr<std::unique_ptr<FollowedDirectory>> FollowedDirectory::Start(Options options,
                                                                            logging::Logger& logger) {
  KafkaFollower::Options follow;
  follow.cluster = options.cluster;
  for (const std::string* topic : {&options.case_topic, &options.organisation_topic}) {
    if (!topic->empty()) follow.topics.push_back(*topic);
  }
  if (follow.topics.empty()) {
    return absl::InvalidArgumentError("a followed directory needs the case topic or the organisation topic");
  }
  if (options.case_topic == options.organisation_topic) {
    return absl::InvalidArgumentError("the case topic and the organisation topic must differ");
  }
  follow.name = options.name;
  follow.sync_timeout = options.sync_timeout;
  std::unique_ptr<FollowedDirectory> followed(new FollowedDirectory(std::move(options)));
  FollowedDirectory* raw = followed.get();
  auto follower = KafkaFollower::Start(
      std::move(follow),
      [raw, &logger](const std::string& topic, const common::v1::EventEnvelope& envelope) {
        // A payload the fold cannot read changes nothing; retrying would not help.
        if (!raw->directory_.Apply(envelope)) {
          logger.Warn("event not folded into the relations",
                      {{"topic", topic}, {"aggregate_type", envelope.aggregate_type()},
                       {"event_type", envelope.event_type()}});
        }
        return absl::OkStatus();
      },
      logger);
  if (!follower.ok()) return follower.status();
  followed->follower_ = std::move(*follower);
  return followed;
}

absl::StatusOr<std::optional<CaseFacts>> FollowedDirectory::Case(const std::string& case_id) const {
  if (absl::Status status = CatchUp(case_id); !status.ok()) return status;
  return directory_.Case(case_id);
}

absl::StatusOr<OrganisationFacts> FollowedDirectory::Organisation(const std::string& tenant_id) const {
  if (absl::Status status = CatchUp(""); !status.ok()) return status;
  return directory_.Organisation(tenant_id);
}

}  // namespace clinical::relations

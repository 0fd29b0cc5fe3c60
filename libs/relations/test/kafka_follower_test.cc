// The follower against the test run's real broker: topics that appear after it started,
// read-your-writes for case and organisation facts written through the case service's
// transactional event store, handler failures retried without skipping a record, records
// that are not envelopes skipped, and a catch-up that cannot finish bounded by its timeout.
#include <atomic>
#include <iostream>
#include <mutex>

#include "clinical/kafka/client_config.h"
#include "clinical/relations/followed_directory.h"
#include "clinical/relations/kafka_follower.h"
#include "clinical/relations/testing/case_service_log.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/topics.h"
#include "clinical/testing/wait.h"
#include "gtest/gtest.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical::relations {
namespace {

using clinical::testing::Platform;
using clinical::testing::UniqueName;
using clinical::testing::WaitUntil;

logging::Logger& Log() {
  static logging::Logger logger("relations-follower-test", std::cerr, logging::Level::kWarn);
  return logger;
}

access::Principal Person(const std::string& user, const std::string& tenant = "tenant-f") {
  return access::Principal{user, tenant, common::v1::ROLE_CASE_MANAGER};
}

TEST(KafkaFollowerTest, TopicsCreatedAfterStartAreFollowedAndEveryAnswerReadsItsWrites) {
  const std::string case_topic = UniqueName("clinical.case.follower");
  const std::string organisation_topic = UniqueName("clinical.case.organisation.follower");
  FollowedDirectory::Options options;
  options.cluster = Platform::Get().kafka_admin;
  options.case_topic = case_topic;
  options.organisation_topic = organisation_topic;
  options.name = UniqueName("follower-test");
  auto followed = FollowedDirectory::Start(options, Log());
  ASSERT_TRUE(followed.ok()) << followed.status();

  // Neither topic exists: nothing was committed to them, so the answers are "nothing" at
  // once, and the follower creates neither (only their writer may).
  auto none = (*followed)->Case("case-x");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  auto empty = (*followed)->Organisation("tenant-f");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->teams.empty());
  EXPECT_TRUE(clinical::testing::EndOffsets(case_topic).empty());

  auto log = testing::CaseServiceLog::Create(case_topic, organisation_topic);
  log->SetTeam("tenant-f", "north", {"sup-1"}, {"cm-1", "cm-2"});
  const std::string case_id = log->Open("tenant-f", "north", "cm-1");
  // Acknowledged just now: the very next question sees it (the follower found the topics
  // when asked, and caught up with the case's partition first).
  auto facts = (*followed)->Case(case_id);
  ASSERT_TRUE(facts.ok()) << facts.status();
  ASSERT_TRUE(facts->has_value());
  EXPECT_EQ((*facts)->case_manager_id, "cm-1");
  EXPECT_EQ((*facts)->team_id, "north");
  auto organisation = (*followed)->Organisation("tenant-f");
  ASSERT_TRUE(organisation.ok());
  EXPECT_EQ(organisation->teams.count("north"), 1u);

  // Every reassignment is seen by the decision made right after it, through the directory
  // the access engine asks.
  const access::RelationsSource& source = (*followed)->directory();
  for (int i = 0; i < 15; ++i) {
    const std::string manager = i % 2 == 0 ? "cm-2" : "cm-1";
    const std::string former = i % 2 == 0 ? "cm-1" : "cm-2";
    log->Assign("tenant-f", case_id, manager);
    auto now = source.RelationsTo(Person(manager), case_id);
    ASSERT_TRUE(now.ok()) << now.status();
    EXPECT_TRUE(now->assigned) << "reassignment " << i;
    EXPECT_FALSE(source.RelationsTo(Person(former), case_id)->assigned) << "reassignment " << i;
  }
  EXPECT_TRUE(*source.Supervises(Person("sup-1"), "cm-2"));
  log->SetTeam("tenant-f", "north", {"sup-2"}, {"cm-1", "cm-2"});
  EXPECT_FALSE(*source.Supervises(Person("sup-1"), "cm-2")) << "the team changed just before";
  EXPECT_TRUE(*source.Supervises(Person("sup-2"), "cm-2"));
  // Another tenant's case is known as such, never as this tenant's.
  const std::string other = log->Open("tenant-g", "north", "cm-1");
  EXPECT_EQ(source.RelationsTo(Person("cm-1"), other)->where, access::CaseRelations::Where::kOtherTenant);
  EXPECT_EQ((*followed)->directory().case_count(), 2u);
}

// A raw record on a topic, as a misbehaving writer might leave one.
void ProduceRaw(const std::string& topic, const std::string& value) {
  auto conf = kafka::MakeConf(kafka::ProducerDefaults(Platform::Get().kafka_admin));
  ASSERT_TRUE(conf.ok()) << conf.status();
  std::string error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf->get(), error));
  ASSERT_NE(producer, nullptr) << error;
  const RdKafka::ErrorCode err = producer->produce(topic, 0, RdKafka::Producer::RK_MSG_COPY,
                                                   const_cast<char*>(value.data()), value.size(), nullptr, 0, 0,
                                                   nullptr);
  ASSERT_EQ(err, RdKafka::ERR_NO_ERROR) << RdKafka::err2str(err);
  ASSERT_EQ(producer->flush(30000), RdKafka::ERR_NO_ERROR);
}

TEST(KafkaFollowerTest, FailedHandlersAreRetriedInOrderAndGarbageIsSkipped) {
  const std::string case_topic = UniqueName("clinical.case.follower");
  auto log = testing::CaseServiceLog::Create(case_topic, UniqueName("clinical.case.organisation.follower"), 1);
  std::vector<std::string> written;
  for (int i = 0; i < 5; ++i) written.push_back(log->Open("tenant-f", "north"));
  ProduceRaw(case_topic, "not an envelope");
  written.push_back(log->Open("tenant-f", "north"));

  std::mutex mutex;
  std::vector<std::string> handled;
  int failures_left = 3;
  std::atomic<size_t> handled_at_catch_up{0};
  KafkaFollower::Options options;
  options.cluster = Platform::Get().kafka_admin;
  options.topics = {case_topic};
  options.name = UniqueName("follower-test");
  options.caught_up = [&] {
    std::lock_guard<std::mutex> lock(mutex);
    handled_at_catch_up = handled.size();
  };
  auto follower = KafkaFollower::Start(
      options,
      [&](const std::string& topic, const common::v1::EventEnvelope& envelope) {
        EXPECT_EQ(topic, case_topic);
        std::lock_guard<std::mutex> lock(mutex);
        // The third case's event fails three times (a broker it appends to is down).
        if (envelope.aggregate_id() == written[2] && failures_left > 0) {
          --failures_left;
          return absl::UnavailableError("down");
        }
        handled.push_back(envelope.aggregate_id());
        return absl::OkStatus();
      },
      Log());
  ASSERT_TRUE(follower.ok()) << follower.status();
  ASSERT_TRUE(WaitUntil([&] { return handled_at_catch_up.load() > 0; }, absl::Seconds(30)));
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_EQ(handled, written) << "every event once, in order, the failed one retried in place";
  EXPECT_EQ(failures_left, 0);
  EXPECT_EQ(handled_at_catch_up.load(), written.size()) << "caught up only after what was there at start";
  EXPECT_EQ((*follower)->undecodable(), 1);
}

TEST(KafkaFollowerTest, ACatchUpThatCannotFinishIsUnavailableWithinItsTimeout) {
  const std::string case_topic = UniqueName("clinical.case.follower");
  auto log = testing::CaseServiceLog::Create(case_topic, UniqueName("clinical.case.organisation.follower"), 1);
  KafkaFollower::Options options;
  options.cluster = Platform::Get().kafka_admin;
  options.topics = {case_topic};
  options.name = UniqueName("follower-test");
  options.sync_timeout = absl::Milliseconds(800);
  std::atomic<bool> broken{false};
  auto follower = KafkaFollower::Start(
      options,
      [&](const std::string&, const common::v1::EventEnvelope&) {
        return broken ? absl::UnavailableError("down") : absl::OkStatus();
      },
      Log());
  ASSERT_TRUE(follower.ok()) << follower.status();
  const std::string case_id = log->Open("tenant-f", "north");
  ASSERT_TRUE((*follower)->CatchUp(case_topic, case_id).ok());

  broken = true;  // from now on the reader is stuck on the next record
  log->Assign("tenant-f", case_id, "cm-1");
  const absl::Time start = absl::Now();
  const absl::Status stuck = (*follower)->CatchUp(case_topic, case_id);
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(stuck.code(), absl::StatusCode::kUnavailable) << stuck;
  EXPECT_GE(took, absl::Milliseconds(700));
  EXPECT_LT(took, absl::Seconds(5));
  // A topic it does not follow needs no waiting.
  EXPECT_TRUE((*follower)->CatchUp("clinical.case.not-followed", case_id).ok());

  broken = false;  // the retry goes through: the same record, not skipped
  EXPECT_TRUE((*follower)->CatchUp(case_topic, case_id).ok());
  std::vector<KafkaFollower::PartitionLag> lag = (*follower)->Lag();
  ASSERT_EQ(lag.size(), 1u);
  EXPECT_EQ(lag[0].topic, case_topic);
}

}  // namespace
}  // namespace clinical::relations

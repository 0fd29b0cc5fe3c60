// The key property of the runtime: a projection process killed with SIGKILL at arbitrary
// points mid-stream and restarted ends byte-for-byte equal to a fresh rebuild from offset 0.
#include <signal.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/subprocess.h"
#include "clinical/testing/wait.h"
#include "counter_model.h"
#include "gtest/gtest.h"
#include "test_support.h"

namespace clinical::projection {
namespace {

using clinical::testing::Platform;
using clinical::testing::UniqueName;
using clinical::testing::WaitUntil;
using testing::Landed;
using testing::MakeEvent;

constexpr int kPartitions = 4;
constexpr absl::Duration kCatchUp = absl::Seconds(120);

class CrashTest : public ::testing::Test {
 protected:
  std::unique_ptr<clinical::testing::Subprocess> StartWorker(const std::string& version) {
    auto worker = clinical::testing::Subprocess::Start(
        {clinical::testing::BinaryPath("libs/projection/projection_worker"),
         absl::StrCat("--topic=", topic_), absl::StrCat("--root=", root_),
         absl::StrCat("--version=", version), absl::StrCat("--dead-letter-topic=", dlq_),
         "--max-batch=20"},
        // As the views service runs: its Kafka principal and Redis user, so the crashes
        // happen under the views' ACLs (topics clinical.case.*, keys and dead letters views.*).
        Platform::Get().ClientEnvironment("views"));
    EXPECT_TRUE(worker.ok()) << worker.status();
    return std::move(*worker);
  }

  // Produces `count` records in transactions of 100: mostly counted events, every 97th a
  // poison event and every 53rd an ignored one, so those paths also cross the crashes.
  void Produce(int count) {
    std::vector<std::pair<std::string, std::string>> batch;
    for (int i = 0; i < count; ++i) {
      const int n = produced_++;
      const std::string aggregate = absl::StrCat("agg-", n % 60);
      std::string type = testing::kCountedType;
      if (n % 97 == 0) type = testing::kPoisonType;
      if (n % 53 == 0) type = testing::kIgnoredType;
      if (type == testing::kCountedType) ++counted_;
      batch.emplace_back(aggregate, MakeEvent(aggregate, ++versions_[aggregate], type));
      if (batch.size() == 100 || i + 1 == count) {
        auto sent = producer_.Send(topic_, batch);
        landed_.insert(landed_.end(), sent.begin(), sent.end());
        batch.clear();
      }
    }
  }

  int64_t Total(const std::string& version) {
    auto reply = redis_.Command({"GET", absl::StrCat(root_, ":", version, ":total")});
    int64_t total = 0;
    if (reply.ok() && !reply->is_nil()) {
      EXPECT_TRUE(absl::SimpleAtoi(reply->str(), &total));
    }
    return total;
  }

  bool Complete(const std::string& version) {
    return testing::OffsetsReached(redis_, absl::StrCat(root_, ":", version, ":"), topic_,
                                   testing::LastOffsets(landed_));
  }

  const std::string topic_ = testing::CreateTopic("clinical.case.projection-crash", kPartitions);
  const std::string root_ = UniqueName("views.crash");
  const std::string dlq_ = UniqueName("views.projection-crash-dlq");
  testing::TestProducer producer_;
  redis::Connection redis_ = testing::ConnectPlatformRedis();
  std::vector<Landed> landed_;
  std::map<std::string, int64_t> versions_;
  int produced_ = 0;
  int64_t counted_ = 0;
};

TEST_F(CrashTest, KilledAndRestartedWorkerEndsEqualToAFreshRebuild) {
  Produce(3000);
  int kills = 0;
  int64_t killed_at = 0;
  for (int round = 0; round < 4; ++round) {
    auto worker = StartWorker("crashing");
    // Kill as soon as it made some progress past the previous kill: mid-stream, in the
    // middle of whatever batch it is applying.
    const int64_t threshold = killed_at + 400;
    ASSERT_TRUE(WaitUntil([&] { return Total("crashing") >= threshold; }, kCatchUp,
                          absl::ZeroDuration()))
        << "round " << round << " total " << Total("crashing");
    worker->Signal(SIGKILL);
    const auto status = worker->Wait(absl::Seconds(10));
    ASSERT_TRUE(status.has_value());
    ASSERT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
    ++kills;
    killed_at = Total("crashing");
    // More events arrive while it is down; the stream is never complete at a kill.
    ASSERT_LT(killed_at, counted_) << "the kill must land mid-stream";
    Produce(1000);
  }
  EXPECT_EQ(kills, 4);

  auto worker = StartWorker("crashing");
  ASSERT_TRUE(WaitUntil([&] { return Complete("crashing"); }, kCatchUp));
  worker->Signal(SIGTERM);
  ASSERT_TRUE(worker->Wait(absl::Seconds(30)).has_value());

  auto fresh = StartWorker("fresh");
  ASSERT_TRUE(WaitUntil([&] { return Complete("fresh"); }, kCatchUp));
  fresh->Signal(SIGTERM);
  ASSERT_TRUE(fresh->Wait(absl::Seconds(30)).has_value());

  const auto crashed_view = testing::Snapshot(redis_, absl::StrCat(root_, ":crashing:"));
  const auto fresh_view = testing::Snapshot(redis_, absl::StrCat(root_, ":fresh:"));
  // 60 aggregates + total + aggregates set + one offset per partition.
  EXPECT_EQ(fresh_view.size(), 60u + 2u + kPartitions);
  EXPECT_EQ(Total("fresh"), counted_) << "each counted event exactly once";
  EXPECT_EQ(Total("crashing"), counted_);
  EXPECT_TRUE(crashed_view == fresh_view) << "views differ after crashes";
  for (const auto& [key, value] : fresh_view) {
    auto it = crashed_view.find(key);
    if (it == crashed_view.end() || it->second != value) ADD_FAILURE() << "differs: " << key;
  }
}

}  // namespace
}  // namespace clinical::projection

#include "clinical/projection/projection.h"

#include <algorithm>
#include <map>
#include <optional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/log_bridge.h"
#include "clinical/projection/batch.h"
#include "clinical/projection/versions.h"
#include "clinical/redis/connection.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical::projection {
namespace {

using TopicPartition = std::pair<std::string, int32_t>;

int Millis(absl::Duration duration) {
  return static_cast<int>(absl::ToInt64Milliseconds(duration));
}

// librdkafka calls this from flush()/poll() on the runtime thread, so no locking: it
// records each dead letter's delivery result under the id given as the message opaque.
class DeliveryRecorder : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    results_[reinterpret_cast<uintptr_t>(message.msg_opaque())] = message.err();
  }
  std::map<uintptr_t, RdKafka::ErrorCode>& results() { return results_; }

 private:
  std::map<uintptr_t, RdKafka::ErrorCode> results_;
};

struct PartitionState {
  int64_t applied = -1;   // last offset committed to Redis with its effects
  int64_t next = 0;       // next offset to apply (past transaction markers at the end)
  bool reached_end = false;
};

}  // namespace

class Projection::Impl {
 public:
  Impl(ProjectionOptions options, const ReadModel& model, logging::Logger& logger, KeySpace keys)
      : options_(std::move(options)),
        model_(model),
        logger_(logger),
        log_bridge_(logger),
        keys_(std::move(keys)),
        topics_(model.Topics()),
        scripts_(model.Scripts()) {}

  ~Impl() {
    Stop();
    if (consumer_ != nullptr) consumer_->close();
    if (producer_ != nullptr) producer_->flush(Millis(options_.kafka_timeout));
  }

  absl::Status Init() {
    kafka::Properties consumer_props =
        kafka::ConsumerDefaults(options_.kafka, options_.consumer_group);
    for (const auto& [key, value] : options_.consumer_overrides) consumer_props[key] = value;
    auto consumer_conf = kafka::MakeConf(consumer_props, &log_bridge_);
    if (!consumer_conf.ok()) return consumer_conf.status();
    std::string error;
    consumer_.reset(RdKafka::KafkaConsumer::create(consumer_conf->get(), error));
    if (consumer_ == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("kafka consumer: ", error));
    }

    kafka::Properties producer_props = kafka::ProducerDefaults(options_.kafka);
    for (const auto& [key, value] : options_.producer_overrides) producer_props[key] = value;
    auto producer_conf = kafka::MakeConf(producer_props, &log_bridge_);
    if (!producer_conf.ok()) return producer_conf.status();
    if ((*producer_conf)->set("dr_cb", &deliveries_, error) != RdKafka::Conf::CONF_OK) {
      return absl::InternalError("kafka producer: cannot set delivery callback");
    }
    producer_.reset(RdKafka::Producer::create(producer_conf->get(), error));
    if (producer_ == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("kafka producer: ", error));
    }
    return absl::OkStatus();
  }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() {
    {
      absl::MutexLock lock(&stop_mutex_);
      stop_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  absl::Status WaitForPosition(const std::string& topic, int32_t partition, int64_t offset,
                               absl::Time deadline) const {
    const TopicPartition tp(topic, partition);
    absl::MutexLock lock(&mutex_);
    auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
      if (!status_.ok()) return true;
      auto it = partitions_.find(tp);
      return it != partitions_.end() && it->second.applied >= offset;
    };
    const bool done = mutex_.AwaitWithDeadline(absl::Condition(&reached), deadline);
    if (!status_.ok()) return status_;
    if (!done) {
      return absl::DeadlineExceededError(
          absl::StrCat("position ", topic, "/", partition, "/", offset, " not applied yet"));
    }
    return absl::OkStatus();
  }

  ProjectionStats Stats() const {
    ProjectionStats stats;
    {
      absl::MutexLock lock(&mutex_);
      stats = stats_;
      stats.status = status_;
      bool all_reached = !partitions_.empty();
      for (const auto& [tp, state] : partitions_) {
        PartitionStats p;
        p.topic = tp.first;
        p.partition = tp.second;
        p.applied_offset = state.applied;
        int64_t low = -1, high = -1;
        // A local read of what the fetcher last saw; for read_committed this is the last
        // stable offset. Thread-safe in librdkafka.
        if (consumer_->get_watermark_offsets(tp.first, tp.second, &low, &high) ==
                RdKafka::ERR_NO_ERROR &&
            high >= 0) {
          p.high_watermark = high;
          p.lag = std::max<int64_t>(0, high - std::max(state.next, state.applied + 1));
        }
        all_reached = all_reached && state.reached_end;
        stats.partitions.push_back(std::move(p));
      }
      stats.caught_up = all_reached;
    }
    return stats;
  }

  const KeySpace& keys() const { return keys_; }

 private:
  bool Stopping() {
    absl::MutexLock lock(&stop_mutex_);
    return stop_;
  }

  // Waits for `duration` or until Stop(), whichever comes first: a retry delay that never
  // delays shutdown.
  void Pause(absl::Duration duration) {
    absl::MutexLock lock(&stop_mutex_);
    stop_mutex_.AwaitWithTimeout(absl::Condition(&stop_), duration);
  }

  void CountRedisError(const absl::Status& status) {
    {
      absl::MutexLock lock(&mutex_);
      ++stats_.redis_errors;
    }
    logger_.Warn("projection redis unavailable",
                 {{"view", keys_.root()},
                  {"version", keys_.version()},
                  {"code", absl::StatusCodeToString(status.code())}});
  }

  void CountKafkaError(const std::string& what, const std::string& code) {
    int64_t count;
    {
      absl::MutexLock lock(&mutex_);
      count = ++stats_.kafka_errors;
    }
    // Brokers down produce an error per poll; log the first and then every 100th.
    if (count % 100 == 1) {
      logger_.Warn("projection kafka error", {{"view", keys_.root()},
                                              {"what", what},
                                              {"code", code},
                                              {"count", count}});
    }
  }

  void Fail(const absl::Status& status) {
    logger_.Error("projection stopped: broken invariant",
                  {{"view", keys_.root()},
                   {"version", keys_.version()},
                   {"code", absl::StatusCodeToString(status.code())},
                   {"detail", std::string(status.message())}});
    absl::MutexLock lock(&mutex_);
    status_ = status;
  }

  void Run() {
    Backoff backoff(options_.initial_backoff, options_.max_backoff);
    bool ready = false;
    std::map<TopicPartition, std::vector<SourceRecord>> pending;
    std::map<TopicPartition, int64_t> ends;
    while (!Stopping()) {
      if (!ready) {
        const absl::Status setup = Setup();
        if (setup.code() == absl::StatusCode::kInternal) return;  // Fail() recorded it
        if (!setup.ok()) {
          Pause(backoff.Next());
          continue;
        }
        backoff.Reset();
        ready = true;
      }
      pending.clear();
      ends.clear();
      Collect(pending, ends);
      bool resync = false;
      for (auto& [tp, records] : pending) {
        const absl::Status applied = ApplyWithRetry(tp, records);
        if (applied.ok()) continue;
        if (applied.code() == absl::StatusCode::kCancelled) return;
        if (applied.code() == absl::StatusCode::kAborted) {
          resync = true;
          break;
        }
        Fail(applied);
        return;
      }
      if (resync) {
        // Another writer moved an offset, or Redis lost writes: trust Redis, re-seek Kafka.
        ready = false;
        absl::MutexLock lock(&mutex_);
        ++stats_.resyncs;
        continue;
      }
      if (!ends.empty()) {
        absl::MutexLock lock(&mutex_);
        for (const auto& [tp, end] : ends) {
          PartitionState& state = partitions_[tp];
          state.next = std::max(state.next, end);
          state.reached_end = true;
        }
      }
      MaybeActivate();
    }
  }

  // Connects to Redis, learns the partitions, loads their offsets from Redis and assigns the
  // consumer there. Run at start and after every resync.
  absl::Status Setup() {
    if (!redis_.has_value()) {
      auto connection = redis::Connection::Connect(options_.redis, options_.redis_timeout);
      if (!connection.ok()) {
        CountRedisError(connection.status());
        return connection.status();
      }
      redis_.emplace(std::move(*connection));
    }
    if (!dead_letter_topic_ready_) {
      kafka::TopicSpec spec;
      spec.name = options_.dead_letter_topic;
      spec.partitions = options_.dead_letter_partitions;
      const absl::Status created =
          kafka::EnsureTopics(options_.kafka, {spec}, options_.kafka_timeout);
      if (!created.ok()) {
        CountKafkaError("create dead-letter topic", absl::StatusCodeToString(created.code()));
        return created;
      }
      dead_letter_topic_ready_ = true;
    }
    std::vector<TopicPartition> tps;
    for (const std::string& topic : topics_) {
      auto count = kafka::PartitionCount(options_.kafka, topic, options_.kafka_timeout);
      if (!count.ok()) {
        CountKafkaError("partition count", absl::StatusCodeToString(count.status().code()));
        return count.status();
      }
      for (int32_t p = 0; p < *count; ++p) tps.emplace_back(topic, p);
    }
    std::vector<redis::Args> gets;
    for (const auto& [topic, partition] : tps) gets.push_back({"GET", keys_.OffsetKey(topic, partition)});
    auto replies = redis_->Pipeline(gets);
    if (!replies.ok()) {
      CountRedisError(replies.status());
      return replies.status();
    }
    std::map<TopicPartition, PartitionState> states;
    std::vector<RdKafka::TopicPartition*> assignment;
    for (size_t i = 0; i < tps.size(); ++i) {
      auto stored = ParseOffset((*replies)[i]);
      if (!stored.ok()) {
        RdKafka::TopicPartition::destroy(assignment);
        Fail(stored.status());
        return stored.status();
      }
      PartitionState state;
      state.applied = *stored;
      state.next = *stored + 1;
      states[tps[i]] = state;
      assignment.push_back(RdKafka::TopicPartition::create(
          tps[i].first, tps[i].second,
          *stored >= 0 ? *stored + 1 : RdKafka::Topic::OFFSET_BEGINNING));
    }
    // assign() replaces the previous assignment; records fetched for it are discarded by
    // librdkafka, and anything that slips through is skipped by the offset check anyway.
    const RdKafka::ErrorCode assigned = consumer_->assign(assignment);
    RdKafka::TopicPartition::destroy(assignment);
    if (assigned != RdKafka::ERR_NO_ERROR) {
      CountKafkaError("assign", RdKafka::err2str(assigned));
      return absl::UnavailableError("kafka assign failed");
    }
    {
      absl::MutexLock lock(&mutex_);
      partitions_ = std::move(states);
    }
    logger_.Info("projection assigned", {{"view", keys_.root()},
                                         {"version", keys_.version()},
                                         {"partitions", tps.size()}});
    return absl::OkStatus();
  }

  static absl::StatusOr<int64_t> ParseOffset(const redis::Reply& reply) {
    if (reply.is_nil()) return -1;
    int64_t offset = 0;
    if (reply.type() != redis::Reply::Type::kString || !absl::SimpleAtoi(reply.str(), &offset)) {
      return absl::InternalError("stored projection offset is not a number");
    }
    return offset;
  }

  // Takes up to max_batch_events records from the consumer: waits briefly for the first,
  // then takes what is already buffered.
  void Collect(std::map<TopicPartition, std::vector<SourceRecord>>& pending,
               std::map<TopicPartition, int64_t>& ends) {
    int taken = 0;
    while (taken < options_.max_batch_events) {
      std::unique_ptr<RdKafka::Message> message(consumer_->consume(taken == 0 ? 100 : 0));
      const RdKafka::ErrorCode err = message->err();
      if (err == RdKafka::ERR__TIMED_OUT) return;
      const TopicPartition tp(message->topic_name(), message->partition());
      if (err == RdKafka::ERR__PARTITION_EOF) {
        ends[tp] = message->offset();
        continue;
      }
      if (err != RdKafka::ERR_NO_ERROR) {
        CountKafkaError("consume", RdKafka::err2str(err));
        return;
      }
      SourceRecord record;
      record.topic = tp.first;
      record.partition = tp.second;
      record.offset = message->offset();
      if (message->key() != nullptr) record.key = *message->key();
      record.value.assign(static_cast<const char*>(message->payload()), message->len());
      pending[tp].push_back(std::move(record));
      ends.erase(tp);  // an end seen before this record is not the end any more
      ++taken;
    }
  }

  absl::Status ApplyWithRetry(const TopicPartition& tp, const std::vector<SourceRecord>& records) {
    Backoff backoff(options_.initial_backoff, options_.max_backoff);
    while (true) {
      if (Stopping()) return absl::CancelledError("stopping");
      const absl::Status applied = ApplyOnce(tp, records);
      if (applied.code() != absl::StatusCode::kUnavailable) return applied;
      Pause(backoff.Next());
    }
  }

  // One attempt to apply a partition's batch:
  //   WATCH offset; GET offset      (one round trip)
  //   dead letters -> Kafka, acked  (only if the batch has poison)
  //   MULTI ... SET offset; EXEC    (one round trip)
  // UNAVAILABLE: retry; ABORTED: offsets in Redis differ from ours, resync; INTERNAL: stop.
  absl::Status ApplyOnce(const TopicPartition& tp, const std::vector<SourceRecord>& records) {
    const std::string offset_key = keys_.OffsetKey(tp.first, tp.second);
    auto watched = redis_->Pipeline({{"WATCH", offset_key}, {"GET", offset_key}});
    if (!watched.ok()) {
      CountRedisError(watched.status());
      return watched.status();
    }
    if ((*watched)[0].is_error()) return Unavailable((*watched)[0].ToStatus());
    if ((*watched)[1].is_error()) return Unavailable((*watched)[1].ToStatus());
    auto stored = ParseOffset((*watched)[1]);
    if (!stored.ok()) return stored.status();

    int64_t expected;
    {
      absl::MutexLock lock(&mutex_);
      expected = partitions_[tp].applied;
    }
    if (*stored != expected) {
      // Higher: another instance applied past us (a zombie, or a commit whose reply we
      // lost). Lower: Redis lost acknowledged writes (restart without them). Either way
      // Redis is the truth and Kafka must be re-read from there.
      Unwatch();
      logger_.Warn("projection offset differs from expected; resyncing",
                   {{"view", keys_.root()},
                    {"topic", tp.first},
                    {"partition", tp.second},
                    {"stored", *stored},
                    {"expected", expected}});
      return absl::AbortedError("stored offset moved");
    }

    BatchPlan plan = PlanBatch(model_, keys_, records, *stored);
    if (plan.last_offset <= *stored) {
      Unwatch();
      absl::MutexLock lock(&mutex_);
      stats_.events_skipped += plan.events_skipped;
      return absl::OkStatus();
    }
    if (!plan.dead_letters.empty()) {
      const absl::Status sent = SendDeadLetters(plan.dead_letters);
      if (!sent.ok()) {
        Unwatch();
        return sent;
      }
    }

    const std::vector<redis::Args> transaction =
        TransactionCommands(plan, scripts_, offset_key);
    const absl::Time start = absl::Now();
    auto replies = redis_->Pipeline(transaction);
    const absl::Duration latency = absl::Now() - start;
    if (!replies.ok()) {
      // Unknown whether EXEC ran; the next attempt's GET tells (and resyncs if it did).
      CountRedisError(replies.status());
      return replies.status();
    }
    const redis::Reply& exec = replies->back();
    if (exec.is_nil()) {
      logger_.Warn("projection transaction aborted by WATCH; resyncing",
                   {{"view", keys_.root()}, {"topic", tp.first}, {"partition", tp.second}});
      return absl::AbortedError("offset changed during the transaction");
    }
    if (exec.is_error()) {
      // EXECABORT: a command was refused while queueing (wrong arity, unknown command).
      // Nothing ran. A transient refusal (LOADING, ...) is retried; anything else is a
      // model bug that retrying cannot fix.
      for (size_t i = 1; i + 1 < replies->size(); ++i) {
        const absl::Status queued = (*replies)[i].ToStatus();
        if (queued.code() == absl::StatusCode::kUnavailable) return Unavailable(queued);
      }
      return absl::InternalError(absl::StrCat(
          "redis refused the transaction for ", tp.first, "/", tp.second, " up to offset ",
          plan.last_offset, ": ", FirstErrorKind(*replies)));
    }
    for (size_t i = 0; i < exec.elements().size(); ++i) {
      if (!exec.elements()[i].is_error()) continue;
      // Ran, failed, and was not rolled back: the view may be half-applied.
      const size_t command = i - std::min(i, scripts_.size());
      const int64_t offset = command < plan.command_offsets.size()
                                 ? plan.command_offsets[command]
                                 : plan.last_offset;
      return absl::InternalError(absl::StrCat(
          "redis command for ", tp.first, "/", tp.second, "/", offset, " failed with ",
          exec.elements()[i].error_kind(), " inside a committed transaction"));
    }

    absl::MutexLock lock(&mutex_);
    PartitionState& state = partitions_[tp];
    state.applied = plan.last_offset;
    state.next = std::max(state.next, plan.last_offset + 1);
    stats_.events_applied += plan.events_new - static_cast<int64_t>(plan.dead_letters.size());
    stats_.events_skipped += plan.events_skipped;
    stats_.dead_lettered += static_cast<int64_t>(plan.dead_letters.size());
    ++stats_.batches;
    stats_.apply_latency_total += latency;
    stats_.apply_latency_max = std::max(stats_.apply_latency_max, latency);
    return absl::OkStatus();
  }

  static std::string FirstErrorKind(const std::vector<redis::Reply>& replies) {
    for (const redis::Reply& reply : replies) {
      if (reply.is_error()) return reply.error_kind();
    }
    return "unknown";
  }

  absl::Status Unavailable(const absl::Status& status) {
    CountRedisError(status);
    return absl::UnavailableError(std::string(status.message()));
  }

  void Unwatch() { redis_->Command({"UNWATCH"}).IgnoreError(); }

  // Produces every dead letter and waits for all acks. Any failure is UNAVAILABLE and the
  // caller retries the whole batch (so a dead letter can be sent twice; see DeadLetterKey).
  absl::Status SendDeadLetters(const std::vector<DeadLetter>& dead_letters) {
    std::vector<uintptr_t> ids;
    for (const DeadLetter& dead : dead_letters) {
      std::unique_ptr<RdKafka::Headers> headers(RdKafka::Headers::create());
      headers->add("reason", dead.reason);
      headers->add("source.topic", dead.record.topic);
      headers->add("source.partition", absl::StrCat(dead.record.partition));
      headers->add("source.offset", absl::StrCat(dead.record.offset));
      headers->add("projection", keys_.prefix());
      const std::string key = DeadLetterKey(dead.record);
      const uintptr_t id = ++next_delivery_id_;
      const RdKafka::ErrorCode err = producer_->produce(
          options_.dead_letter_topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
          const_cast<char*>(dead.record.value.data()), dead.record.value.size(), key.data(),
          key.size(), 0, headers.get(), reinterpret_cast<void*>(id));
      if (err != RdKafka::ERR_NO_ERROR) {
        CountKafkaError("dead-letter produce", RdKafka::err2str(err));
        return absl::UnavailableError("dead-letter produce failed");
      }
      headers.release();  // librdkafka owns the headers once produce() succeeded
      ids.push_back(id);
    }
    producer_->flush(Millis(options_.kafka_timeout));
    auto& results = deliveries_.results();
    bool all_ok = true;
    for (uintptr_t id : ids) {
      auto it = results.find(id);
      all_ok = all_ok && it != results.end() && it->second == RdKafka::ERR_NO_ERROR;
    }
    // Late reports of earlier attempts are of no use any more.
    results.clear();
    if (!all_ok) {
      CountKafkaError("dead-letter delivery", "not acknowledged");
      return absl::UnavailableError("dead letters not acknowledged");
    }
    logger_.Info("projection dead-lettered events",
                 {{"view", keys_.root()}, {"count", dead_letters.size()}});
    return absl::OkStatus();
  }

  void MaybeActivate() {
    if (!options_.activate_when_caught_up || activated_) return;
    std::vector<std::string> suffixes;
    {
      absl::MutexLock lock(&mutex_);
      if (partitions_.empty()) return;
      for (const auto& [tp, state] : partitions_) {
        if (!state.reached_end) return;
        suffixes.push_back(KeySpace::OffsetSuffix(tp.first, tp.second));
      }
    }
    auto activated = ActivateIfNotBehind(*redis_, keys_, suffixes);
    if (!activated.ok()) {
      CountRedisError(activated.status());
      return;
    }
    if (!*activated) return;  // the serving version is ahead; try again after more records
    activated_ = true;
    {
      absl::MutexLock lock(&mutex_);
      stats_.active = true;
    }
    logger_.Info("projection version activated",
                 {{"view", keys_.root()}, {"version", keys_.version()}});
  }

  const ProjectionOptions options_;
  const ReadModel& model_;
  logging::Logger& logger_;
  kafka::LogBridge log_bridge_;  // librdkafka's logs as JSON; outlives the clients below
  const KeySpace keys_;
  const std::vector<std::string> topics_;
  const std::vector<LuaScript> scripts_;

  // Owned by the runtime thread (and created before it starts).
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::unique_ptr<RdKafka::Producer> producer_;
  DeliveryRecorder deliveries_;
  uintptr_t next_delivery_id_ = 0;
  std::optional<redis::Connection> redis_;
  bool dead_letter_topic_ready_ = false;
  bool activated_ = false;
  std::thread thread_;

  absl::Mutex stop_mutex_;
  bool stop_ ABSL_GUARDED_BY(stop_mutex_) = false;

  mutable absl::Mutex mutex_;
  std::map<TopicPartition, PartitionState> partitions_ ABSL_GUARDED_BY(mutex_);
  ProjectionStats stats_ ABSL_GUARDED_BY(mutex_);
  absl::Status status_ ABSL_GUARDED_BY(mutex_);
};

absl::StatusOr<std::unique_ptr<Projection>> Projection::Create(ProjectionOptions options,
                                                               const ReadModel& model,
                                                               logging::Logger& logger) {
  if (options.kafka.bootstrap.empty()) {
    return absl::InvalidArgumentError("projection: the Kafka bootstrap is required");
  }
  if (model.Topics().empty()) return absl::InvalidArgumentError("projection: model has no topics");
  if (options.max_batch_events < 1) {
    return absl::InvalidArgumentError("projection: max_batch_events must be positive");
  }
  if (options.root.empty()) options.root = model.Name();
  auto keys = KeySpace::Create(options.root, options.version);
  if (!keys.ok()) return keys.status();
  if (options.dead_letter_topic.empty()) {
    options.dead_letter_topic =
        absl::StrCat(absl::StrReplaceAll(options.root, {{":", "."}}), ".deadletter.v1");
  }
  if (options.consumer_group.empty()) {
    options.consumer_group = absl::StrCat("projection.", options.root, ".", options.version);
  }
  auto impl = std::make_unique<Impl>(std::move(options), model, logger, std::move(*keys));
  if (absl::Status init = impl->Init(); !init.ok()) return init;
  return std::unique_ptr<Projection>(new Projection(std::move(impl)));
}

Projection::Projection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Projection::~Projection() { Stop(); }
void Projection::Start() { impl_->Start(); }
void Projection::Stop() { impl_->Stop(); }

absl::Status Projection::WaitForPosition(const std::string& topic, int32_t partition,
                                         int64_t offset, absl::Time deadline) const {
  return impl_->WaitForPosition(topic, partition, offset, deadline);
}

ProjectionStats Projection::Stats() const { return impl_->Stats(); }
const KeySpace& Projection::keys() const { return impl_->keys(); }

}  // namespace clinical::projection

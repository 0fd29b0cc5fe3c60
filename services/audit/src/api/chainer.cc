#include "chainer.h"

#include <algorithm>
#include <set>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "chain.h"
#include "clinical/case/v1/events.pb.h"
#include "clinical/common/v1/envelope.pb.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/client_config.h"
#include "clinical/kafka/log_bridge.h"
#include "clinical/redis/connection.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical::audit {
namespace {

using TopicPartition = std::pair<std::string, int32_t>;

int Millis(absl::Duration duration) { return static_cast<int>(absl::ToInt64Milliseconds(duration)); }

struct ChainState {
  int64_t sequence = 0;
  std::string hash = std::string(kGenesisHash);
  int64_t offset = -1;
  int64_t checkpoint_sequence = 0;
  // When the oldest unsigned record was chained by this process (InfinitePast: unknown,
  // e.g. after a restart, which makes it due at once).
  absl::Time first_unsigned = absl::InfiniteFuture();
};

class DeliveryRecorder : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    last_error_ = message.err();
    ++reports_;
  }
  void Reset() {
    last_error_ = RdKafka::ERR_NO_ERROR;
    reports_ = 0;
  }
  RdKafka::ErrorCode last_error() const { return last_error_; }
  int reports() const { return reports_; }

 private:
  RdKafka::ErrorCode last_error_ = RdKafka::ERR_NO_ERROR;
  int reports_ = 0;
};

absl::StatusOr<int64_t> ParseInt(const redis::Reply& reply) {
  int64_t value = 0;
  if (reply.type() != redis::Reply::Type::kString || !absl::SimpleAtoi(reply.str(), &value)) {
    return absl::InternalError("stored chain head field is not a number");
  }
  return value;
}

}  // namespace

class Chainer::Impl {
 public:
  Impl(ChainerOptions options, const CheckpointSigner* signer, std::function<absl::Time()> clock,
       logging::Logger& logger)
      : options_(std::move(options)),
        signer_(signer),
        clock_(std::move(clock)),
        logger_(logger),
        log_bridge_(logger),
        keys_(options_.key_root) {
    for (const std::string& topic : options_.event_topics) formats_[topic] = SourceFormat::kEvents;
    if (!options_.access_topic.empty()) formats_[options_.access_topic] = SourceFormat::kAccess;
  }

  ~Impl() {
    Stop();
    if (consumer_ != nullptr) consumer_->close();
    if (producer_ != nullptr) producer_->flush(Millis(options_.kafka_timeout));
  }

  absl::Status Init() {
    if (formats_.empty()) return absl::InvalidArgumentError("no source topics configured");
    auto consumer_conf = kafka::MakeConf(
        kafka::ConsumerDefaults(options_.kafka, "chainer." + options_.key_root),
        &log_bridge_);
    if (!consumer_conf.ok()) return consumer_conf.status();
    std::string error;
    consumer_.reset(RdKafka::KafkaConsumer::create(consumer_conf->get(), error));
    if (consumer_ == nullptr) return absl::InvalidArgumentError("kafka consumer: " + error);
    auto producer_conf = kafka::MakeConf(kafka::ProducerDefaults(options_.kafka), &log_bridge_);
    if (!producer_conf.ok()) return producer_conf.status();
    if ((*producer_conf)->set("dr_cb", &deliveries_, error) != RdKafka::Conf::CONF_OK) {
      return absl::InternalError("kafka producer: cannot set delivery callback");
    }
    producer_.reset(RdKafka::Producer::create(producer_conf->get(), error));
    if (producer_ == nullptr) return absl::InvalidArgumentError("kafka producer: " + error);
    return absl::OkStatus();
  }

  void Start() { thread_ = std::thread([this] { Run(); }); }

  void Stop() {
    {
      absl::MutexLock lock(&stop_mutex_);
      stop_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  ChainStats Stats() const {
    absl::MutexLock lock(&mutex_);
    ChainStats stats = stats_;
    stats.chains = static_cast<int>(chains_.size());
    int64_t lag = 0;
    bool known = !chains_.empty();
    for (const auto& [tp, state] : chains_) {
      int64_t low = -1, high = -1;
      if (consumer_->get_watermark_offsets(tp.first, tp.second, &low, &high) ==
              RdKafka::ERR_NO_ERROR &&
          high >= 0) {
        // A transaction's commit marker is the last offset of a partition, not a record:
        // count from the end read_committed reached once it is past the chained records.
        auto end = read_to_.find(tp);
        const int64_t read = std::max(state.offset + 1, end == read_to_.end() ? 0 : end->second);
        lag += std::max<int64_t>(0, high - read);
      } else {
        known = false;
      }
    }
    stats.lag = known ? lag : -1;
    return stats;
  }

 private:
  bool Stopping() {
    absl::MutexLock lock(&stop_mutex_);
    return stop_;
  }

  void Pause(absl::Duration duration) {
    absl::MutexLock lock(&stop_mutex_);
    stop_mutex_.AwaitWithTimeout(absl::Condition(&stop_), duration);
  }

  void CountRedisError(const absl::Status& status) {
    int64_t count;
    {
      absl::MutexLock lock(&mutex_);
      count = ++stats_.redis_errors;
    }
    if (count % 100 == 1) {
      logger_.Warn("audit chainer: redis unavailable",
                   {{"code", absl::StatusCodeToString(status.code())}, {"count", count}});
    }
  }

  void CountKafkaError(const std::string& what, const std::string& code) {
    int64_t count;
    {
      absl::MutexLock lock(&mutex_);
      count = ++stats_.kafka_errors;
    }
    if (count % 100 == 1) {
      logger_.Warn("audit chainer: kafka error", {{"what", what}, {"code", code}, {"count", count}});
    }
  }

  void Fail(const absl::Status& status) {
    logger_.Error("audit chainer stopped: broken invariant",
                  {{"code", absl::StatusCodeToString(status.code())},
                   {"detail", std::string(status.message())}});
    absl::MutexLock lock(&mutex_);
    stats_.status = status;
  }

  // Connects Redis, finds the partitions of every topic that exists, loads their heads and
  // assigns the consumer just after each head's offset.
  absl::Status Setup() {
    if (!redis_.has_value()) {
      auto connection = redis::Connection::Connect(options_.redis, options_.redis_timeout);
      if (!connection.ok()) {
        CountRedisError(connection.status());
        return connection.status();
      }
      redis_.emplace(std::move(*connection));
    }
    if (signer_ != nullptr && !checkpoint_topic_ready_) {
      kafka::TopicSpec spec;
      spec.name = options_.checkpoint_topic;
      spec.partitions = 1;
      const absl::Status created =
          kafka::EnsureTopics(options_.kafka, {spec}, options_.kafka_timeout);
      if (!created.ok()) {
        CountKafkaError("create checkpoint topic", absl::StatusCodeToString(created.code()));
        return created;
      }
      checkpoint_topic_ready_ = true;
    }
    std::vector<TopicPartition> tps;
    std::vector<std::string> missing;
    for (const auto& [topic, format] : formats_) {
      auto count = kafka::PartitionCount(options_.kafka, topic, options_.kafka_timeout);
      if (count.status().code() == absl::StatusCode::kNotFound) {
        missing.push_back(topic);
        continue;
      }
      if (!count.ok()) {
        CountKafkaError("partition count", absl::StatusCodeToString(count.status().code()));
        return count.status();
      }
      for (int32_t p = 0; p < *count; ++p) tps.emplace_back(topic, p);
    }
    std::map<TopicPartition, ChainState> states;
    std::vector<RdKafka::TopicPartition*> assignment;
    for (const TopicPartition& tp : tps) {
      auto head = LoadHead(ChainId(tp.first, tp.second));
      if (!head.ok()) {
        RdKafka::TopicPartition::destroy(assignment);
        if (head.status().code() == absl::StatusCode::kInternal) Fail(head.status());
        return head.status();
      }
      states[tp] = *head;
      assignment.push_back(RdKafka::TopicPartition::create(
          tp.first, tp.second,
          head->offset >= 0 ? head->offset + 1 : RdKafka::Topic::OFFSET_BEGINNING));
    }
    const RdKafka::ErrorCode assigned = consumer_->assign(assignment);
    RdKafka::TopicPartition::destroy(assignment);
    if (assigned != RdKafka::ERR_NO_ERROR) {
      CountKafkaError("assign", RdKafka::err2str(assigned));
      return absl::UnavailableError("kafka assign failed");
    }
    {
      absl::MutexLock lock(&mutex_);
      chains_ = std::move(states);
      stats_.waiting_for_topics = missing;
    }
    next_topic_check_ = missing.empty() ? absl::InfiniteFuture() : clock_() + options_.topic_retry;
    logger_.Info("audit chainer assigned",
                 {{"chains", tps.size()}, {"topics_missing", missing.size()}});
    return absl::OkStatus();
  }

  absl::StatusOr<ChainState> LoadHead(const std::string& chain) {
    auto reply = redis_->Command({"HMGET", keys_.Head(chain), "seq", "hash", "offset", "ckpt_seq"});
    if (!reply.ok()) {
      CountRedisError(reply.status());
      return absl::UnavailableError(std::string(reply.status().message()));
    }
    ChainState state;
    const auto& fields = reply->elements();
    if (fields.size() != 4 || fields[0].is_nil()) return state;  // a new chain
    auto sequence = ParseInt(fields[0]);
    auto offset = ParseInt(fields[2]);
    if (!sequence.ok()) return sequence.status();
    if (!offset.ok()) return offset.status();
    state.sequence = *sequence;
    state.hash = fields[1].str();
    state.offset = *offset;
    if (!fields[3].is_nil()) {
      auto checkpoint = ParseInt(fields[3]);
      if (!checkpoint.ok()) return checkpoint.status();
      state.checkpoint_sequence = *checkpoint;
    }
    // Unsigned records left by an earlier process: due for a checkpoint right away.
    if (state.sequence > state.checkpoint_sequence) state.first_unsigned = absl::InfinitePast();
    return state;
  }

  // Takes up to max_batch_records records into `pending`; `ends` gets, per partition that
  // reported its end, the offset read_committed reached there (past commit markers and
  // aborted records, which are no records to chain).
  void Collect(std::map<TopicPartition, std::vector<SourceRecord>>& pending,
               std::map<TopicPartition, int64_t>& ends) {
    int taken = 0;
    while (taken < options_.max_batch_records) {
      std::unique_ptr<RdKafka::Message> message(consumer_->consume(taken == 0 ? 100 : 0));
      const RdKafka::ErrorCode err = message->err();
      if (err == RdKafka::ERR__TIMED_OUT) return;
      if (err == RdKafka::ERR__PARTITION_EOF) {
        ends[{message->topic_name(), message->partition()}] = message->offset();
        continue;
      }
      if (err != RdKafka::ERR_NO_ERROR) {
        CountKafkaError("consume", RdKafka::err2str(err));
        return;
      }
      SourceRecord record;
      record.topic = message->topic_name();
      record.partition = message->partition();
      record.offset = message->offset();
      record.value.assign(static_cast<const char*>(message->payload()), message->len());
      pending[{record.topic, record.partition}].push_back(std::move(record));
      ++taken;
    }
  }

  // The patient index entry of a CaseOpened event (case -> keyed hash of the MRN).
  std::optional<std::pair<std::string, std::string>> PatientIndexEntry(const SourceRecord& source,
                                                                      const audit::v1::ChainedRecord& record) {
    if (options_.patient_index_key.empty() || record.action() != "clinical.case.v1.CaseOpened" ||
        record.case_ids().empty()) {
      return std::nullopt;
    }
    common::v1::EventEnvelope event;
    case_::v1::CaseOpened opened;
    if (!event.ParseFromString(source.value) || !event.payload().UnpackTo(&opened) ||
        opened.patient().mrn().empty()) {
      return std::nullopt;
    }
    return std::make_pair(
        keys_.PatientCases(record.tenant_id(),
                           PatientKey(options_.patient_index_key, record.tenant_id(), opened.patient().mrn())),
        record.case_ids(0));
  }

  // One attempt to append a partition's batch:
  //   WATCH head; HMGET head          (one round trip)
  //   MULTI; HSET records; ZADD indexes; SADD patient; HSET head; EXEC   (one round trip)
  // UNAVAILABLE: retry; ABORTED: the head moved under us (another writer), resync.
  absl::Status ApplyOnce(const TopicPartition& tp, const std::vector<SourceRecord>& records) {
    const std::string chain = ChainId(tp.first, tp.second);
    const std::string head_key = keys_.Head(chain);
    ChainState state;
    {
      absl::MutexLock lock(&mutex_);
      state = chains_[tp];
    }
    const int64_t expected_sequence = state.sequence;
    // The records only depend on the chain's head, which the WATCH below confirms.
    std::vector<std::pair<const SourceRecord*, audit::v1::ChainedRecord>> built;
    for (const SourceRecord& source : records) {
      if (source.offset <= state.offset) continue;  // already chained
      audit::v1::ChainedRecord record =
          BuildRecord(source, formats_.at(tp.first), state.sequence + 1, state.hash);
      state.sequence = record.sequence();
      state.hash = record.hash();
      state.offset = source.offset;
      built.emplace_back(&source, std::move(record));
    }
    if (built.empty()) return absl::OkStatus();

    // Events of other aggregates (appointments, notifications) name their case only in
    // the first event (e.g. AppointmentBooked.case_id); later ones are indexed under the
    // case remembered for their aggregate. Index only: the chained record stays a pure
    // function of its source record.
    std::map<std::string, std::string> aggregate_cases;  // key -> case id (this batch)
    std::vector<std::string> lookups;
    for (const auto& [source, record] : built) {
      if (record.kind() != audit::v1::RECORD_KIND_EVENT || record.resource_type() == "case" ||
          record.resource_id().empty() || record.tenant_id().empty()) {
        continue;
      }
      const std::string key =
          keys_.AggregateCase(record.tenant_id(), record.resource_type(), record.resource_id());
      if (!record.case_ids().empty()) {
        aggregate_cases.emplace(key, record.case_ids(0));
      } else if (!aggregate_cases.count(key)) {
        lookups.push_back(key);
      }
    }
    std::vector<redis::Args> first_round = {{"WATCH", head_key}, {"HGET", head_key, "seq"}};
    if (!lookups.empty()) {
      redis::Args mget = {"MGET"};
      mget.insert(mget.end(), lookups.begin(), lookups.end());
      first_round.push_back(std::move(mget));
    }
    auto watched = redis_->Pipeline(first_round);
    if (!watched.ok()) {
      CountRedisError(watched.status());
      return watched.status();
    }
    const redis::Reply& stored_seq = (*watched)[1];
    const int64_t stored = stored_seq.is_nil() ? 0 : ParseInt(stored_seq).value_or(-1);
    if (stored != expected_sequence) {
      redis_->Command({"UNWATCH"}).IgnoreError();
      logger_.Warn("audit chain head differs from expected; resyncing",
                   {{"chain", chain}, {"stored", stored}, {"expected", expected_sequence}});
      return absl::AbortedError("chain head moved");
    }
    std::map<std::string, std::string> known;  // stored mappings
    if (!lookups.empty()) {
      const auto& values = (*watched)[2].elements();
      for (size_t i = 0; i < lookups.size() && i < values.size(); ++i) {
        if (!values[i].is_nil()) known[lookups[i]] = values[i].str();
      }
    }

    std::vector<redis::Args> transaction = {{"MULTI"}};
    redis::Args hset = {"HSET", keys_.Records(chain)};
    std::map<std::string, std::string> batch_cases;
    for (const auto& [source, record] : built) {
      hset.push_back(absl::StrCat(record.sequence()));
      hset.push_back(record.SerializeAsString());
      std::vector<std::string> derived;
      if (record.kind() == audit::v1::RECORD_KIND_EVENT && record.resource_type() != "case" &&
          !record.resource_id().empty() && !record.tenant_id().empty()) {
        const std::string key =
            keys_.AggregateCase(record.tenant_id(), record.resource_type(), record.resource_id());
        if (!record.case_ids().empty()) {
          if (!batch_cases.count(key) && !known.count(key)) {
            transaction.push_back({"SET", key, record.case_ids(0)});
          }
          batch_cases[key] = record.case_ids(0);
        } else if (auto it = batch_cases.find(key); it != batch_cases.end()) {
          derived.push_back(it->second);
        } else if (auto stored_case = known.find(key); stored_case != known.end()) {
          derived.push_back(stored_case->second);
        }
      }
      const std::string member =
          IndexMember(ToMillis(record.occurred_at()), chain, record.sequence());
      for (const std::string& index : IndexKeysFor(keys_, record, derived)) {
        transaction.push_back({"ZADD", index, "0", member});
      }
      if (auto patient = PatientIndexEntry(*source, record)) {
        transaction.push_back({"SADD", patient->first, patient->second});
      }
    }
    const int64_t appended = static_cast<int64_t>(built.size());
    transaction.push_back(hset);
    transaction.push_back({"SADD", keys_.Chains(), chain});
    transaction.push_back({"HSET", head_key, "seq", absl::StrCat(state.sequence), "hash", state.hash,
                           "offset", absl::StrCat(state.offset)});
    transaction.push_back({"EXEC"});
    auto replies = redis_->Pipeline(transaction);
    if (!replies.ok()) {
      // Unknown whether EXEC ran: the next attempt's HGET tells (and resyncs if it did).
      CountRedisError(replies.status());
      return replies.status();
    }
    const redis::Reply& exec = replies->back();
    if (exec.is_nil()) return absl::AbortedError("chain head changed during the transaction");
    if (exec.is_error()) {
      for (const redis::Reply& reply : *replies) {
        if (reply.ToStatus().code() == absl::StatusCode::kUnavailable) {
          CountRedisError(reply.ToStatus());
          return absl::UnavailableError("redis refused the transaction for now");
        }
      }
      return absl::InternalError(absl::StrCat("redis refused the transaction for chain ", chain));
    }
    for (const redis::Reply& reply : exec.elements()) {
      if (reply.is_error()) {
        return absl::InternalError(absl::StrCat("a command for chain ", chain,
                                                " failed inside a committed transaction: ",
                                                reply.error_kind()));
      }
    }
    absl::MutexLock lock(&mutex_);
    ChainState& current = chains_[tp];
    if (current.sequence == current.checkpoint_sequence) current.first_unsigned = clock_();
    current.sequence = state.sequence;
    current.hash = state.hash;
    current.offset = state.offset;
    stats_.records_chained += appended;
    return absl::OkStatus();
  }

  // How many records the chain of `tp` may take before it is due for a checkpoint (all
  // of a batch when nothing signs).
  size_t ChunkSize(const TopicPartition& tp) {
    if (signer_ == nullptr) return static_cast<size_t>(options_.max_batch_records);
    absl::MutexLock lock(&mutex_);
    const ChainState& state = chains_[tp];
    const int64_t room = options_.checkpoint_every - (state.sequence - state.checkpoint_sequence);
    // Due already (its signing failed and is retried): take a full cadence's worth.
    return static_cast<size_t>(room > 0 ? room : options_.checkpoint_every);
  }

  absl::Status ApplyWithRetry(const TopicPartition& tp, const std::vector<SourceRecord>& records) {
    absl::Duration backoff = absl::Milliseconds(50);
    while (true) {
      if (Stopping()) return absl::CancelledError("stopping");
      const absl::Status applied = ApplyOnce(tp, records);
      if (applied.code() != absl::StatusCode::kUnavailable) return applied;
      if (redis_->broken()) redis_->Reconnect().IgnoreError();
      Pause(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }

  // Signs every chain that is due; publishes each checkpoint to Kafka (acknowledged) and
  // then records it in Redis. A failure leaves the chain due; it is retried next round.
  absl::Status SignDueCheckpoints() {
    if (signer_ == nullptr) return absl::OkStatus();
    std::vector<std::pair<TopicPartition, ChainState>> due;
    const absl::Time now = clock_();
    {
      absl::MutexLock lock(&mutex_);
      for (const auto& [tp, state] : chains_) {
        const int64_t unsigned_records = state.sequence - state.checkpoint_sequence;
        if (unsigned_records <= 0) continue;
        if (unsigned_records >= options_.checkpoint_every ||
            now - state.first_unsigned >= options_.checkpoint_interval) {
          due.emplace_back(tp, state);
        }
      }
    }
    for (const auto& [tp, state] : due) {
      const std::string chain = ChainId(tp.first, tp.second);
      const audit::v1::Checkpoint checkpoint = signer_->Sign(chain, state.sequence, state.hash, now);
      const std::string bytes = checkpoint.SerializeAsString();
      deliveries_.Reset();
      const RdKafka::ErrorCode err = producer_->produce(
          options_.checkpoint_topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
          const_cast<char*>(bytes.data()), bytes.size(), chain.data(), chain.size(), 0, nullptr);
      if (err != RdKafka::ERR_NO_ERROR) {
        CountKafkaError("checkpoint produce", RdKafka::err2str(err));
        return absl::UnavailableError("checkpoint produce failed");
      }
      producer_->flush(Millis(options_.kafka_timeout));
      if (deliveries_.reports() == 0 || deliveries_.last_error() != RdKafka::ERR_NO_ERROR) {
        CountKafkaError("checkpoint delivery", RdKafka::err2str(deliveries_.last_error()));
        return absl::UnavailableError("checkpoint not acknowledged");
      }
      auto replies = redis_->Pipeline(
          {{"RPUSH", keys_.Checkpoints(chain), bytes},
           {"HSET", keys_.Head(chain), "ckpt_seq", absl::StrCat(state.sequence), "ckpt_ms",
            absl::StrCat(absl::ToUnixMillis(now))}});
      if (!replies.ok()) {
        CountRedisError(replies.status());
        return replies.status();
      }
      absl::MutexLock lock(&mutex_);
      ChainState& current = chains_[tp];
      current.checkpoint_sequence = state.sequence;
      current.first_unsigned =
          current.sequence > state.sequence ? now : absl::InfiniteFuture();
      ++stats_.checkpoints_signed;
    }
    return absl::OkStatus();
  }

  void Run() {
    absl::Duration backoff = absl::Milliseconds(50);
    bool ready = false;
    std::map<TopicPartition, std::vector<SourceRecord>> pending;
    std::map<TopicPartition, int64_t> ends;
    while (!Stopping()) {
      if (ready && clock_() >= next_topic_check_) ready = false;  // look for missing topics
      if (!ready) {
        const absl::Status setup = Setup();
        if (setup.code() == absl::StatusCode::kInternal) return;
        if (!setup.ok()) {
          if (redis_.has_value() && redis_->broken()) redis_->Reconnect().IgnoreError();
          Pause(backoff);
          backoff = std::min(backoff * 2, options_.max_backoff);
          continue;
        }
        backoff = absl::Milliseconds(50);
        ready = true;
        absl::MutexLock lock(&mutex_);
        stats_.started = true;
      }
      pending.clear();
      ends.clear();
      Collect(pending, ends);
      bool resync = false;
      for (auto& [tp, records] : pending) {
        // Cut the batch where the chain reaches checkpoint_every unsigned records, so each
        // checkpoint signs exactly that record (not wherever the batch happened to end).
        size_t begin = 0;
        while (begin < records.size() && !resync) {
          const size_t size = std::min(records.size() - begin, ChunkSize(tp));
          const std::vector<SourceRecord> chunk(records.begin() + static_cast<ptrdiff_t>(begin),
                                                records.begin() + static_cast<ptrdiff_t>(begin + size));
          begin += size;
          const absl::Status applied = ApplyWithRetry(tp, chunk);
          if (applied.code() == absl::StatusCode::kCancelled) return;
          if (applied.code() == absl::StatusCode::kAborted) {
            resync = true;
            break;
          }
          if (!applied.ok()) {
            Fail(applied);
            return;
          }
          if (begin < records.size() && SignDueCheckpoints().ok()) continue;
        }
        if (resync) break;
      }
      if (resync) {
        ready = false;
        absl::MutexLock lock(&mutex_);
        ++stats_.resyncs;
        continue;
      }
      {
        // Every record before these ends is chained now: the lag may count from them.
        absl::MutexLock lock(&mutex_);
        for (const auto& [tp, end] : ends) read_to_[tp] = std::max(read_to_[tp], end);
      }
      if (const absl::Status signed_ok = SignDueCheckpoints(); !signed_ok.ok()) {
        if (redis_->broken()) redis_->Reconnect().IgnoreError();
        Pause(backoff);
        backoff = std::min(backoff * 2, options_.max_backoff);
      }
    }
  }

  const ChainerOptions options_;
  const CheckpointSigner* const signer_;
  const std::function<absl::Time()> clock_;
  logging::Logger& logger_;
  kafka::LogBridge log_bridge_;
  const LogKeys keys_;
  std::map<std::string, SourceFormat> formats_;
  DeliveryRecorder deliveries_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::unique_ptr<RdKafka::Producer> producer_;
  std::optional<redis::Connection> redis_;  // only the chainer thread uses it
  bool checkpoint_topic_ready_ = false;
  absl::Time next_topic_check_ = absl::InfiniteFuture();

  mutable absl::Mutex mutex_;
  std::map<TopicPartition, ChainState> chains_ ABSL_GUARDED_BY(mutex_);
  // Per partition, the offset read_committed reached at its last end, applied once the
  // records before it were chained.
  std::map<TopicPartition, int64_t> read_to_ ABSL_GUARDED_BY(mutex_);
  ChainStats stats_ ABSL_GUARDED_BY(mutex_);

  absl::Mutex stop_mutex_;
  bool stop_ ABSL_GUARDED_BY(stop_mutex_) = false;
  std::thread thread_;
};

Chainer::Chainer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Chainer::~Chainer() = default;

absl::StatusOr<std::unique_ptr<Chainer>> Chainer::Create(ChainerOptions options,
                                                         const CheckpointSigner* signer,
                                                         std::function<absl::Time()> clock,
                                                         logging::Logger& logger) {
  auto impl = std::make_unique<Impl>(std::move(options), signer, std::move(clock), logger);
  if (absl::Status init = impl->Init(); !init.ok()) return init;
  return std::unique_ptr<Chainer>(new Chainer(std::move(impl)));
}

void Chainer::Start() { impl_->Start(); }
void Chainer::Stop() { impl_->Stop(); }
ChainStats Chainer::Stats() const { return impl_->Stats(); }

metrics::Collector ChainerMetrics(const Chainer& chainer) {
  return [&chainer](metrics::Sink& sink) {
    const ChainStats stats = chainer.Stats();
    sink.Counter("clinical_audit_records_chained_total", "Records appended to the audit log's chains",
                 {}, static_cast<double>(stats.records_chained));
    sink.Counter("clinical_audit_checkpoints_signed_total",
                 "Signed checkpoints published by this process", {},
                 static_cast<double>(stats.checkpoints_signed));
    sink.Counter("clinical_audit_redis_errors_total", "Failed Redis round trips of the chainer", {},
                 static_cast<double>(stats.redis_errors));
    sink.Counter("clinical_audit_kafka_errors_total", "Kafka errors of the chainer", {},
                 static_cast<double>(stats.kafka_errors));
    sink.Gauge("clinical_audit_chains", "Chains (source partitions) followed", {},
               static_cast<double>(stats.chains));
    sink.Gauge("clinical_audit_consumer_lag_records",
               "Records in the source partitions not chained yet (-1: unknown)", {},
               static_cast<double>(stats.lag));
    sink.Gauge("clinical_audit_topics_missing", "Configured source topics not found yet", {},
               static_cast<double>(stats.waiting_for_topics.size()));
    sink.Gauge("clinical_audit_chainer_failed", "1 once the chainer stopped on a broken invariant",
               {}, stats.status.ok() ? 0.0 : 1.0);
  };
}

}  // namespace clinical::audit

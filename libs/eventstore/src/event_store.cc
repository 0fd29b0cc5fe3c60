#include "clinical/eventstore/event_store.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clinical/eventstore/partition_index.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/status.h"
#include "clinical/kafka/log_bridge.h"
#include "clinical/kafka/partitioner.h"
#include "google/protobuf/util/time_util.h"
#include "librdkafka/rdkafkacpp.h"
#include "log_reader.h"

namespace clinical::eventstore {
namespace {

int TimeoutMs(absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); }

// Where a produced record's delivery report lands: written by librdkafka's callback during
// flush(), on the writer thread, read after flush() returns.
struct DeliverySlot {
  RdKafka::ErrorCode error = RdKafka::ERR__IN_PROGRESS;
  int64_t offset = -1;
};

class DeliveryRecorder : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    auto* slot = static_cast<DeliverySlot*>(message.msg_opaque());
    if (slot == nullptr) return;
    slot->error = message.err();
    slot->offset = message.offset();
  }
};

std::string NewUuid(std::mt19937_64& random) {
  const uint64_t hi = (random() & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  const uint64_t lo = (random() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 1
  const std::string hex = absl::StrCat(absl::Hex(hi, absl::kZeroPad16), absl::Hex(lo, absl::kZeroPad16));
  return absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-", hex.substr(12, 4), "-",
                      hex.substr(16, 4), "-", hex.substr(20));
}

bool IsFencingCode(RdKafka::ErrorCode code) {
  return code == RdKafka::ERR__FENCED || code == RdKafka::ERR_PRODUCER_FENCED ||
         code == RdKafka::ERR_INVALID_PRODUCER_EPOCH;
}

bool IsFencing(const RdKafka::Error& error) { return IsFencingCode(error.code()); }

}  // namespace

// One owned partition: its transactional producer, its index, and the writer thread that
// turns queued appends into transactions (group commit).
class EventStore::PartitionWriter {
 public:
  PartitionWriter(const StoreOptions& options, int32_t partition, logging::Logger& logger)
      : options_(options),
        partition_(partition),
        logger_(logger),
        log_bridge_(logger),
        random_(std::random_device{}()),
        index_(options.commands_kept) {}

  ~PartitionWriter() { Stop(); }

  // Fences earlier owners, rebuilds the index from the log, starts the writer thread.
  absl::Status Start() {
    const absl::Time started = absl::Now();
    if (absl::Status init = InitProducers(); !init.ok()) return init;
    const int64_t checkpoint_offset = RestoreCheckpoint();
    auto replayed = CatchUp();
    if (!replayed.ok()) return replayed.status();
    if (absl::Status snapshots = LoadSnapshotOffsets(); !snapshots.ok()) return snapshots;
    Count(&StoreStats::events_replayed_on_acquire, *replayed);
    {
      std::lock_guard<std::mutex> lock(index_mutex_);
      logger_.Info("partition acquired",
                   {{"topic", options_.topic}, {"partition", partition_},
                    {"aggregates", index_.aggregate_count()}, {"next_offset", index_.next_offset()},
                    {"checkpoint_offset", checkpoint_offset}, {"events_replayed", *replayed},
                    {"rebuild_ms", absl::ToInt64Milliseconds(absl::Now() - started)}});
    }
    thread_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }

  // Finishes what is queued, then stops the thread.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(queue_mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    queue_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  absl::StatusOr<AppendResult> Append(AppendRequest request) {
    auto pending = std::make_unique<Pending>();
    pending->request = std::move(request);
    std::future<absl::StatusOr<AppendResult>> done = pending->done.get_future();
    {
      std::lock_guard<std::mutex> lock(queue_mutex_);
      if (stopping_) return NotOwner();
      queue_.push_back(std::move(pending));
    }
    queue_cv_.notify_one();
    return done.get();
  }

  absl::StatusOr<int64_t> CurrentVersion(const std::string& aggregate_id) const {
    if (fenced_) return NotOwner();
    std::lock_guard<std::mutex> lock(index_mutex_);
    return index_.Version(aggregate_id);
  }

  absl::StatusOr<std::vector<LoggedEvent>> Load(const std::string& aggregate_id,
                                                int64_t from_version,
                                                int64_t scan_floor = 0) const {
    if (fenced_) return NotOwner();
    PartitionIndex::EventLocation location;
    {
      std::lock_guard<std::mutex> lock(index_mutex_);
      location = index_.Locate(aggregate_id, from_version);
    }
    std::vector<LoggedEvent> events;
    if (location.offsets.empty() && location.scan_from < 0) return events;
    // Exact offsets when the index has them; otherwise a scan by key from the aggregate's
    // first event (or from its snapshot, `scan_floor`), the cold path.
    const int64_t start = location.offsets.empty() ? std::max(location.scan_from, scan_floor)
                                                   : location.offsets.front();
    from_version = std::max<int64_t>(from_version, 1);
    std::lock_guard<std::mutex> lock(load_mutex_);
    if (loader_ == nullptr) {
      auto reader = internal::MakeReader(options_.cluster, &log_bridge_);
      if (!reader.ok()) return reader.status();
      loader_ = std::move(*reader);
    }
    // A commit returns once the coordinator has decided it, but the transaction markers are
    // written just after; until then read_committed readers stop short of the newest
    // records (the last stable offset lags). So this reads until the aggregate's last
    // version has been seen, asking again while the deadline allows.
    const absl::Time deadline = absl::Now() + options_.kafka_timeout;
    int64_t from = start;
    while (true) {
      auto read = internal::ReadPartition(
          *loader_, options_.topic, partition_, from,
          [&](const LoggedEvent& event) {
            const auto& envelope = event.envelope;
            if (envelope.aggregate_id() == aggregate_id &&
                envelope.aggregate_version() >= from_version &&
                envelope.aggregate_version() <= location.last_version) {
              events.push_back(event);
            }
            from = event.offset + 1;
            return events.empty() || events.back().envelope.aggregate_version() < location.last_version;
          },
          deadline - absl::Now());
      if (!read.ok()) return read.status();
      if (!events.empty() && events.back().envelope.aggregate_version() == location.last_version) {
        return events;
      }
      if (absl::Now() >= deadline) {
        return absl::UnavailableError("kafka: aggregate's events not readable in time");
      }
      absl::SleepFor(absl::Milliseconds(5));  // markers are being written; bounded above
    }
  }

  absl::StatusOr<LoadedAggregate> LoadLatest(const std::string& aggregate_id) const {
    if (fenced_) return NotOwner();
    int64_t snapshot_offset;
    {
      std::lock_guard<std::mutex> lock(index_mutex_);
      snapshot_offset = index_.SnapshotOffset(aggregate_id);
    }
    LoadedAggregate loaded;
    int64_t scan_floor = 0;
    if (snapshot_offset >= 0) {
      std::lock_guard<std::mutex> lock(load_mutex_);
      if (loader_ == nullptr) {
        auto reader = internal::MakeReader(options_.cluster, &log_bridge_);
        if (!reader.ok()) return reader.status();
        loader_ = std::move(*reader);
      }
      std::optional<eventstore::v1::AggregateSnapshot> found;
      auto read = internal::ReadRecords(
          *loader_, EventStore::SnapshotTopic(options_.topic), partition_, snapshot_offset,
          [&](const internal::RawRecord& record) {
            eventstore::v1::AggregateSnapshot snapshot;
            if (record.offset == snapshot_offset && snapshot.ParseFromString(record.value)) {
              found = std::move(snapshot);
            }
            return false;  // one record
          },
          options_.kafka_timeout);
      if (!read.ok()) return read.status();
      if (!found.has_value()) return absl::DataLossError("snapshot record unreadable");
      scan_floor = found->event_offset() + 1;
      loaded.snapshot = std::move(found);
    }
    auto events = Load(aggregate_id, loaded.snapshot ? loaded.snapshot->version() + 1 : 1, scan_floor);
    if (!events.ok()) return events.status();
    loaded.events = std::move(*events);
    return loaded;
  }

  absl::Status SaveSnapshot(const std::string& aggregate_id, int64_t version,
                            const google::protobuf::Any& state) {
    auto pending = std::make_unique<PendingSnapshot>();
    pending->snapshot.set_aggregate_id(aggregate_id);
    pending->snapshot.set_aggregate_type(options_.aggregate_type);
    pending->snapshot.set_version(version);
    *pending->snapshot.mutable_state() = state;
    std::future<absl::Status> done = pending->done.get_future();
    {
      std::lock_guard<std::mutex> lock(queue_mutex_);
      if (stopping_) return NotOwner();
      snapshot_queue_.push_back(std::move(pending));
    }
    queue_cv_.notify_one();
    return done.get();
  }

  StoreStats Stats() const {
    std::lock_guard<std::mutex> lock(stats_mutex_);
    return stats_;
  }

 private:
  struct Pending {
    AppendRequest request;
    std::promise<absl::StatusOr<AppendResult>> done;
  };
  struct PendingSnapshot {
    eventstore::v1::AggregateSnapshot snapshot;
    std::promise<absl::Status> done;
  };
  // One record of a transaction: an event, a snapshot, a checkpoint part or a tombstone.
  struct OutRecord {
    const std::string* topic;
    std::string key;
    std::optional<std::string> value;  // nullopt: a compaction tombstone
    int64_t timestamp_ms = 0;
    DeliverySlot slot;
  };

  absl::Status NotOwner() const {
    return absl::FailedPreconditionError(absl::StrCat(
        "not the owner of ", options_.topic, " partition ", partition_,
        fenced_ ? " (fenced by a newer owner)" : ""));
  }

  // Creates and initialises both producers of the partition (see `producers_`).
  absl::Status InitProducers() {
    for (size_t lane = 0; lane < producers_.size(); ++lane) {
      if (absl::Status status = InitProducer(lane); !status.ok()) return status;
    }
    lane_ = 0;
    return absl::OkStatus();
  }

  absl::Status InitProducer(size_t lane) {
    kafka::Properties props = kafka::ProducerDefaults(options_.cluster);
    props["transactional.id"] = TransactionalId(lane);
    props["transaction.timeout.ms"] = "60000";
    props["message.timeout.ms"] = std::to_string(TimeoutMs(options_.kafka_timeout));
    props["linger.ms"] = "0";  // a batch is flushed explicitly before commit
    props["retry.backoff.ms"] = "5";
    for (const auto& [key, value] : options_.extra_producer_properties) props[key] = value;
    auto conf = kafka::MakeConf(props, &log_bridge_);
    if (!conf.ok()) return conf.status();
    std::string error;
    (*conf)->set("dr_cb", &delivery_recorder_, error);
    std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf->get(), error));
    if (producer == nullptr) return absl::InternalError(absl::StrCat("kafka producer: ", error));
    // This is the fencing step: the broker bumps the epoch of the transactional id and
    // aborts whatever transaction the previous owner left open.
    std::unique_ptr<RdKafka::Error> init(producer->init_transactions(TimeoutMs(options_.kafka_timeout)));
    if (init != nullptr) {
      // PERMISSION_DENIED when the principal may not use this transactional id (ACLs grant
      // each writer its own writer-id prefix); UNAVAILABLE for an outage.
      return kafka::ErrorStatus(init->code(),
                                absl::StrCat("kafka: init_transactions on partition ", partition_));
    }
    // Learn the topic's partitions now: a producer that has not seen the topic parks the
    // first record until a metadata refresh, which costs the first append up to a second.
    std::unique_ptr<RdKafka::Topic> topic(
        RdKafka::Topic::create(producer.get(), options_.topic, nullptr, error));
    RdKafka::Metadata* metadata = nullptr;
    if (topic == nullptr || producer->metadata(false, topic.get(), &metadata,
                                               TimeoutMs(options_.kafka_timeout)) !=
                                RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("kafka: metadata of ", options_.topic));
    }
    delete metadata;  // librdkafka's API hands out an owned raw pointer
    topics_[lane] = std::move(topic);
    producers_[lane] = std::move(producer);
    return absl::OkStatus();
  }

  // "<writer_id>.p<N>" and "<writer_id>.p<N>.b": both belong to partition N, so a new
  // owner's init_transactions on both fences every producer of the previous owner.
  std::string TransactionalId(size_t lane) const {
    return absl::StrCat(options_.writer_id, ".p", partition_, lane == 0 ? "" : ".b");
  }

  RdKafka::Producer& producer() { return *producers_[lane_]; }

  void ResetProducers() {
    for (auto& topic : topics_) topic.reset();
    for (auto& producer : producers_) producer.reset();
  }

  // Reads committed events the index has not seen yet (all of them on acquire; after a
  // failure, whatever did commit, so that retries are answered as duplicates). Reading up
  // to the last stable offset is complete here: it runs right after init_transactions on
  // both of the partition's transactional ids, which the broker only grants once every
  // earlier transaction of those ids has its markers written.
  absl::Status EnsureReader() {
    if (catch_up_reader_ != nullptr) return absl::OkStatus();
    auto reader = internal::MakeReader(options_.cluster, &log_bridge_);
    if (!reader.ok()) return reader.status();
    catch_up_reader_ = std::move(*reader);
    return absl::OkStatus();
  }

  // Returns how many events it read.
  absl::StatusOr<int64_t> CatchUp() {
    if (absl::Status ready = EnsureReader(); !ready.ok()) return ready;
    int64_t from;
    {
      std::lock_guard<std::mutex> lock(index_mutex_);
      from = index_.next_offset();
    }
    absl::Status recorded = absl::OkStatus();
    int64_t count = 0;
    auto next = internal::ReadPartition(
        *catch_up_reader_, options_.topic, partition_, from,
        [&](const LoggedEvent& event) {
          std::lock_guard<std::mutex> lock(index_mutex_);
          recorded = index_.Record(event.envelope, options_.topic, partition_, event.offset);
          ++count;
          return recorded.ok();
        },
        options_.kafka_timeout * 3);
    if (!recorded.ok()) return recorded;
    if (!next.ok()) return next.status();
    std::lock_guard<std::mutex> lock(index_mutex_);
    index_.AdvanceTo(*next);
    events_since_checkpoint_ += count;
    return count;
  }

  // Reads a compacted side-topic partition into its latest value per key.
  absl::StatusOr<std::map<std::string, internal::RawRecord>> ReadCompacted(const std::string& topic) {
    if (absl::Status ready = EnsureReader(); !ready.ok()) return ready;
    std::map<std::string, internal::RawRecord> latest;
    auto read = internal::ReadRecords(
        *catch_up_reader_, topic, partition_, 0,
        [&](const internal::RawRecord& record) {
          if (record.tombstone) {
            latest.erase(record.key);
          } else {
            latest[record.key] = record;
          }
          return true;
        },
        options_.kafka_timeout * 3);
    if (!read.ok()) return read.status();
    return latest;
  }

  std::string CheckpointKey() const { return absl::StrCat("p", partition_); }
  std::string ChunkKey(int32_t index) const { return absl::StrCat("p", partition_, ".c", index); }

  // Loads the partition's latest checkpoint into the index, if there is a usable one, and
  // returns the offset it covers (0 when starting from the beginning). A missing or broken
  // checkpoint only costs time: the log is read from the start instead.
  int64_t RestoreCheckpoint() {
    auto records = ReadCompacted(EventStore::CheckpointTopic(options_.topic));
    if (!records.ok()) {
      logger_.Warn("checkpoint unreadable; reading the whole partition",
                   {{"partition", partition_}, {"reason", std::string(records.status().message())}});
      return 0;
    }
    auto manifest_record = records->find(CheckpointKey());
    if (manifest_record == records->end()) return 0;
    eventstore::v1::IndexCheckpoint manifest;
    std::vector<eventstore::v1::IndexChunk> chunks;
    bool complete = manifest.ParseFromString(manifest_record->second.value);
    for (int32_t i = 0; complete && i < manifest.chunk_count(); ++i) {
      auto chunk = records->find(ChunkKey(i));
      chunks.emplace_back();
      complete = chunk != records->end() && chunks.back().ParseFromString(chunk->second.value);
    }
    absl::Status restored = complete ? absl::OkStatus() : absl::DataLossError("checkpoint incomplete");
    if (restored.ok()) {
      std::lock_guard<std::mutex> lock(index_mutex_);
      restored = index_.Restore(manifest, chunks, options_.topic);
    }
    if (!restored.ok()) {
      logger_.Warn("checkpoint unusable; reading the whole partition",
                   {{"partition", partition_}, {"reason", std::string(restored.message())}});
      std::lock_guard<std::mutex> lock(index_mutex_);
      index_ = PartitionIndex(options_.commands_kept);
      return 0;
    }
    checkpoint_sequence_ = manifest.sequence();
    checkpoint_chunks_ = manifest.chunk_count();
    return manifest.next_offset();
  }

  // Snapshots written after the checkpoint are known only from the snapshot topic.
  absl::Status LoadSnapshotOffsets() {
    auto records = ReadCompacted(EventStore::SnapshotTopic(options_.topic));
    if (!records.ok()) return records.status();
    std::lock_guard<std::mutex> lock(index_mutex_);
    for (const auto& [aggregate_id, record] : *records) {
      index_.SetSnapshotOffset(aggregate_id, record.offset);
    }
    return absl::OkStatus();
  }

  // Writes the index as a checkpoint, in one transaction (manifest and chunks together,
  // plus tombstones for chunks the previous checkpoint had and this one does not).
  void WriteCheckpoint() {
    const std::string& topic = checkpoint_topic_;
    std::vector<OutRecord> records;
    eventstore::v1::IndexCheckpoint manifest;
    {
      std::lock_guard<std::mutex> lock(index_mutex_);
      // 200 aggregates of at most commands_kept commands keep a chunk well under Kafka's
      // default 1 MB record limit.
      for (const auto& chunk : index_.ToChunks(partition_, checkpoint_sequence_ + 1, 200)) {
        records.push_back({&topic, ChunkKey(chunk.index()), chunk.SerializeAsString(), 0, {}});
      }
      manifest.set_partition(partition_);
      manifest.set_next_offset(index_.next_offset());
      manifest.set_sequence(checkpoint_sequence_ + 1);
      manifest.set_chunk_count(static_cast<int32_t>(records.size()));
      *manifest.mutable_taken_at() =
          google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(absl::Now()));
    }
    for (int32_t i = manifest.chunk_count(); i < checkpoint_chunks_; ++i) {
      records.push_back({&topic, ChunkKey(i), std::nullopt, 0, {}});
    }
    records.push_back({&topic, CheckpointKey(), manifest.SerializeAsString(), 0, {}});
    if (absl::Status written = Transact(records); !written.ok()) {
      logger_.Warn("checkpoint failed", {{"partition", partition_},
                                         {"code", absl::StatusCodeToString(written.code())}});
      if (!fenced_) Recover();
      return;
    }
    lane_ = (lane_ + 1) % producers_.size();
    checkpoint_sequence_ = manifest.sequence();
    checkpoint_chunks_ = manifest.chunk_count();
    events_since_checkpoint_ = 0;
    Count(&StoreStats::checkpoints_written);
  }

  void Run() {
    while (true) {
      std::vector<std::unique_ptr<Pending>> batch;
      std::vector<std::unique_ptr<PendingSnapshot>> snapshots;
      {
        std::unique_lock<std::mutex> lock(queue_mutex_);
        queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || !snapshot_queue_.empty(); });
        if (queue_.empty() && snapshot_queue_.empty()) return;  // stopping, nothing left
        if (options_.max_batch_wait > absl::ZeroDuration() &&
            queue_.size() < static_cast<size_t>(options_.max_batch_appends)) {
          queue_cv_.wait_for(lock, absl::ToChronoNanoseconds(options_.max_batch_wait), [&] {
            return stopping_ || queue_.size() >= static_cast<size_t>(options_.max_batch_appends);
          });
        }
        while (!queue_.empty() && batch.size() < static_cast<size_t>(options_.max_batch_appends)) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        while (!snapshot_queue_.empty()) {
          snapshots.push_back(std::move(snapshot_queue_.front()));
          snapshot_queue_.pop_front();
        }
      }
      CommitBatch(batch, snapshots);
      if (!fenced_ && options_.checkpoint_every_events > 0 &&
          events_since_checkpoint_ >= options_.checkpoint_every_events) {
        WriteCheckpoint();
      }
    }
  }

  void Count(int64_t StoreStats::*field, int64_t n = 1) {
    std::lock_guard<std::mutex> lock(stats_mutex_);
    stats_.*field += n;
  }

  // Checks a snapshot request against the index and completes its record; the answer is
  // an error status when it cannot be written.
  absl::Status PrepareSnapshot(eventstore::v1::AggregateSnapshot& snapshot) {
    std::lock_guard<std::mutex> lock(index_mutex_);
    const int64_t current = index_.Version(snapshot.aggregate_id());
    if (snapshot.aggregate_id().empty() || snapshot.version() < 1 || snapshot.version() > current) {
      return absl::InvalidArgumentError(
          absl::StrCat("snapshot version must be between 1 and the aggregate's version ", current));
    }
    const PartitionIndex::EventLocation location =
        index_.Locate(snapshot.aggregate_id(), snapshot.version());
    snapshot.set_event_offset(location.offsets.empty() ? -1 : location.offsets.front());
    *snapshot.mutable_taken_at() =
        google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(absl::Now()));
    return absl::OkStatus();
  }

  void CommitBatch(std::vector<std::unique_ptr<Pending>>& batch,
                   std::vector<std::unique_ptr<PendingSnapshot>>& snapshots) {
    if (fenced_) {
      Count(&StoreStats::appends_failed, static_cast<int64_t>(batch.size()));
      for (auto& pending : batch) pending->done.set_value(NotOwner());
      for (auto& pending : snapshots) pending->done.set_value(NotOwner());
      return;
    }
    std::vector<const AppendRequest*> requests;
    for (auto& pending : batch) requests.push_back(&pending->request);
    BatchPlan plan;
    {
      std::lock_guard<std::mutex> lock(index_mutex_);
      plan = PlanBatch(index_, requests);
    }

    // Answer what needs no write; build the records of the rest.
    std::vector<size_t> writes;
    for (size_t i = 0; i < batch.size(); ++i) {
      const BatchPlan::Item& item = plan.items[i];
      if (item.outcome == BatchPlan::Outcome::kRejected) {
        Count(&StoreStats::appends_rejected);
        batch[i]->done.set_value(item.rejection);
      } else if (item.outcome == BatchPlan::Outcome::kAlreadyApplied) {
        Count(&StoreStats::appends_duplicate);
        batch[i]->done.set_value(item.result);
      } else if (item.outcome == BatchPlan::Outcome::kWrite) {
        writes.push_back(i);
      }
    }
    std::vector<size_t> snapshot_writes;
    for (size_t k = 0; k < snapshots.size(); ++k) {
      if (absl::Status ready = PrepareSnapshot(snapshots[k]->snapshot); !ready.ok()) {
        snapshots[k]->done.set_value(ready);
      } else {
        snapshot_writes.push_back(k);
      }
    }
    if (writes.empty() && snapshot_writes.empty()) return;

    const google::protobuf::Timestamp recorded_at =
        google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(absl::Now()));
    const int64_t timestamp_ms = absl::ToUnixMillis(absl::Now());
    std::vector<OutRecord> records;
    std::vector<std::pair<size_t, size_t>> record_owner;  // (batch index, event index)
    for (size_t i : writes) {
      AppendRequest& request = batch[i]->request;
      for (size_t e = 0; e < request.events.size(); ++e) {
        common::v1::EventEnvelope& event = request.events[e];
        if (event.event_id().empty()) event.set_event_id(NewUuid(random_));
        event.set_aggregate_type(options_.aggregate_type);
        event.set_aggregate_id(request.aggregate_id);
        event.set_aggregate_version(plan.items[i].first_version + static_cast<int64_t>(e));
        event.set_command_id(request.command_id);
        *event.mutable_recorded_at() = recorded_at;
        records.push_back({&options_.topic, request.aggregate_id, event.SerializeAsString(), timestamp_ms, {}});
        record_owner.emplace_back(i, e);
      }
    }
    const size_t event_records = records.size();
    for (size_t k : snapshot_writes) {
      const auto& snapshot = snapshots[k]->snapshot;
      records.push_back({&snapshot_topic_, snapshot.aggregate_id(), snapshot.SerializeAsString(), timestamp_ms, {}});
    }

    absl::Status outcome = Transact(records);
    if (!outcome.ok()) {
      Count(&StoreStats::appends_failed, static_cast<int64_t>(writes.size()));
      for (size_t i : writes) batch[i]->done.set_value(outcome);
      for (size_t i = 0; i < batch.size(); ++i) {
        if (plan.items[i].outcome == BatchPlan::Outcome::kSameAsEarlierInBatch) {
          batch[i]->done.set_value(outcome);
        }
      }
      for (size_t k : snapshot_writes) snapshots[k]->done.set_value(outcome);
      if (!fenced_) Recover();
      return;
    }

    lane_ = (lane_ + 1) % producers_.size();
    // Committed: the index learns the new events, then callers hear about it.
    std::vector<AppendResult> results(batch.size());
    {
      std::lock_guard<std::mutex> lock(index_mutex_);
      for (size_t r = 0; r < event_records; ++r) {
        const auto [i, e] = record_owner[r];
        // Record cannot fail here: PlanBatch assigned the versions from this index.
        (void)index_.Record(batch[i]->request.events[e], options_.topic, partition_, records[r].slot.offset);
        AppendResult& result = results[i];
        result.first_version = plan.items[i].first_version;
        result.last_version = plan.items[i].last_version;
        result.position.set_topic(options_.topic);
        result.position.set_partition(partition_);
        result.position.set_offset(records[r].slot.offset);
        result.recorded_at = recorded_at;
      }
      for (size_t j = 0; j < snapshot_writes.size(); ++j) {
        index_.SetSnapshotOffset(snapshots[snapshot_writes[j]]->snapshot.aggregate_id(),
                                 records[event_records + j].slot.offset);
      }
    }
    events_since_checkpoint_ += static_cast<int64_t>(event_records);
    {
      // Counted before callers are answered, so a caller that reads Stats() after its
      // append returned sees it.
      std::lock_guard<std::mutex> lock(stats_mutex_);
      stats_.appends_committed += static_cast<int64_t>(writes.size());
      stats_.transactions_committed += 1;
      stats_.events_written += static_cast<int64_t>(event_records);
      stats_.snapshots_written += static_cast<int64_t>(snapshot_writes.size());
    }
    for (size_t i : writes) batch[i]->done.set_value(results[i]);
    for (size_t i = 0; i < batch.size(); ++i) {
      if (plan.items[i].outcome == BatchPlan::Outcome::kSameAsEarlierInBatch) {
        AppendResult same = results[plan.items[i].same_as];
        same.duplicate = true;
        Count(&StoreStats::appends_duplicate);
        batch[i]->done.set_value(same);
      }
    }
    for (size_t k : snapshot_writes) snapshots[k]->done.set_value(absl::OkStatus());
  }

  // One transaction for `records`, all to this partition of their topics. OK only once the
  // commit is confirmed; the records' slots then hold their offsets.
  absl::Status Transact(std::vector<OutRecord>& records) {
    if (std::unique_ptr<RdKafka::Error> begin(producer().begin_transaction()); begin != nullptr) {
      return Failed(*begin, "begin_transaction");
    }
    for (OutRecord& record : records) {
      void* payload = record.value ? record.value->data() : nullptr;
      const size_t length = record.value ? record.value->size() : 0;
      const RdKafka::ErrorCode err = producer().produce(
          *record.topic, partition_, RdKafka::Producer::RK_MSG_COPY, payload, length,
          record.key.data(), record.key.size(), record.timestamp_ms, &record.slot);
      if (err != RdKafka::ERR_NO_ERROR) {
        AbortQuietly();
        return absl::UnavailableError(absl::StrCat("kafka produce: ", RdKafka::err2str(err)));
      }
    }
    // flush() serves the delivery reports, which carry the offsets callers get back.
    const RdKafka::ErrorCode flushed = producer().flush(TimeoutMs(options_.kafka_timeout));
    for (const OutRecord& record : records) {
      const DeliverySlot& slot = record.slot;
      if (flushed != RdKafka::ERR_NO_ERROR || slot.error != RdKafka::ERR_NO_ERROR) {
        // A fenced producer fails its queued records with a generic "purged" error; the
        // reason is in the producer's fatal error.
        std::string reason;
        if (IsFencingCode(slot.error) || IsFencingCode(producer().fatal_error(reason))) {
          fenced_ = true;
          logger_.Warn("fenced", {{"topic", options_.topic}, {"partition", partition_}, {"step", "produce"}});
          return NotOwner();
        }
        AbortQuietly();
        return absl::UnavailableError(absl::StrCat(
            "kafka: records not confirmed: ",
            RdKafka::err2str(flushed != RdKafka::ERR_NO_ERROR ? flushed : slot.error)));
      }
    }
    const absl::Time deadline = absl::Now() + options_.kafka_timeout;
    while (true) {
      std::unique_ptr<RdKafka::Error> commit(
          producer().commit_transaction(TimeoutMs(options_.kafka_timeout)));
      if (commit == nullptr) return absl::OkStatus();
      if (commit->is_retriable() && absl::Now() < deadline) continue;
      return Failed(*commit, "commit_transaction");
    }
  }

  absl::Status Failed(const RdKafka::Error& error, const char* step) {
    std::string reason;
    if (IsFencing(error) || IsFencingCode(producer().fatal_error(reason))) {
      fenced_ = true;
      logger_.Warn("fenced", {{"topic", options_.topic}, {"partition", partition_}, {"step", step}});
      return NotOwner();
    }
    if (error.txn_requires_abort()) AbortQuietly();
    return absl::UnavailableError(absl::StrCat("kafka ", step, ": ", error.str()));
  }

  void AbortQuietly() {
    std::unique_ptr<RdKafka::Error> abort(producer().abort_transaction(TimeoutMs(options_.kafka_timeout)));
    if (abort != nullptr && IsFencing(*abort)) fenced_ = true;
  }

  // After a failed transaction the outcome may be unknown (a commit that timed out may
  // still have landed) and the producer may be unusable. Start over: a new producer
  // (init_transactions aborts anything left open) and an index caught up with what did
  // commit. Appends queued meanwhile are answered UNAVAILABLE rather than left waiting.
  void Recover() {
    Count(&StoreStats::recoveries);
    logger_.Warn("recovering partition", {{"topic", options_.topic}, {"partition", partition_}});
    absl::Duration backoff = absl::Milliseconds(100);
    while (true) {
      ResetProducers();
      absl::Status status = InitProducers();
      if (status.ok()) status = CatchUp().status();
      if (status.ok()) {
        logger_.Info("partition recovered", {{"topic", options_.topic}, {"partition", partition_}});
        return;
      }
      std::deque<std::unique_ptr<Pending>> waiting;
      std::deque<std::unique_ptr<PendingSnapshot>> waiting_snapshots;
      bool stopping;
      {
        std::unique_lock<std::mutex> lock(queue_mutex_);
        waiting.swap(queue_);
        waiting_snapshots.swap(snapshot_queue_);
        stopping = stopping_;
      }
      Count(&StoreStats::appends_failed, static_cast<int64_t>(waiting.size()));
      for (auto& pending : waiting) pending->done.set_value(status);
      for (auto& pending : waiting_snapshots) pending->done.set_value(status);
      if (stopping) return;
      {
        std::unique_lock<std::mutex> lock(queue_mutex_);
        queue_cv_.wait_for(lock, absl::ToChronoNanoseconds(backoff), [&] { return stopping_; });
      }
      backoff = std::min(backoff * 2, absl::Seconds(5));
    }
  }

  const StoreOptions& options_;
  const int32_t partition_;
  logging::Logger& logger_;
  mutable kafka::LogBridge log_bridge_;  // before the clients that use it
  std::mt19937_64 random_;  // event ids; writer thread only
  DeliveryRecorder delivery_recorder_;
  // Two transactional producers take turns, one transaction each. Right after a commit the
  // broker is still writing that transaction's markers and answers the same transactional
  // id's next AddPartitionsToTxn with CONCURRENT_TRANSACTIONS, which librdkafka retries
  // after a delay; the other id is free at once. Transactions stay strictly sequential:
  // the next begins only after the previous one committed. Writer thread only (and Start).
  std::array<std::unique_ptr<RdKafka::Producer>, 2> producers_;
  std::array<std::unique_ptr<RdKafka::Topic>, 2> topics_;  // keep topic metadata cached
  size_t lane_ = 0;
  std::unique_ptr<RdKafka::KafkaConsumer> catch_up_reader_;  // writer thread only (and Start)
  std::atomic<bool> fenced_{false};

  mutable std::mutex index_mutex_;
  PartitionIndex index_;  // guarded by index_mutex_; written only by the writer thread

  mutable std::mutex load_mutex_;
  mutable std::unique_ptr<RdKafka::KafkaConsumer> loader_;  // guarded by load_mutex_

  const std::string snapshot_topic_ = EventStore::SnapshotTopic(options_.topic);
  const std::string checkpoint_topic_ = EventStore::CheckpointTopic(options_.topic);
  // Writer thread only (and Start): progress towards the next checkpoint.
  int64_t events_since_checkpoint_ = 0;
  int64_t checkpoint_sequence_ = 0;
  int32_t checkpoint_chunks_ = 0;

  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<std::unique_ptr<Pending>> queue_;  // guarded by queue_mutex_
  std::deque<std::unique_ptr<PendingSnapshot>> snapshot_queue_;  // guarded by queue_mutex_
  bool stopping_ = false;                       // guarded by queue_mutex_
  std::thread thread_;

  mutable std::mutex stats_mutex_;
  StoreStats stats_;  // guarded by stats_mutex_
};

EventStore::EventStore(StoreOptions options, int32_t partition_count, logging::Logger& logger)
    : options_(std::move(options)), partition_count_(partition_count), logger_(logger) {}

EventStore::~EventStore() { Release(); }

absl::StatusOr<std::unique_ptr<EventStore>> EventStore::Open(StoreOptions options,
                                                             logging::Logger& logger) {
  if (options.cluster.bootstrap.empty() || options.topic.empty() || options.aggregate_type.empty() ||
      options.writer_id.empty()) {
    return absl::InvalidArgumentError("event store needs bootstrap, topic, aggregate_type, writer_id");
  }
  if (options.max_batch_appends < 1) return absl::InvalidArgumentError("max_batch_appends < 1");
  auto partitions = kafka::PartitionCount(options.cluster, options.topic, options.kafka_timeout);
  if (!partitions.ok()) return partitions.status();
  // The side topics are the store's own: derived data, compacted to the latest record per
  // key, partitioned like the events so that partition N's owner writes partition N.
  std::vector<kafka::TopicSpec> side_topics;
  for (const std::string& name : {SnapshotTopic(options.topic), CheckpointTopic(options.topic)}) {
    kafka::TopicSpec spec;
    spec.name = name;
    spec.partitions = *partitions;
    spec.configs = {{"cleanup.policy", "compact"}};
    side_topics.push_back(spec);
  }
  if (absl::Status created = kafka::EnsureTopics(options.cluster, side_topics, options.kafka_timeout);
      !created.ok()) {
    return created;
  }
  return std::unique_ptr<EventStore>(new EventStore(std::move(options), *partitions, logger));
}

int32_t EventStore::PartitionOf(const std::string& aggregate_id) const {
  return kafka::Murmur2Partition(aggregate_id, partition_count_);
}

absl::Status EventStore::Acquire(std::vector<int32_t> partitions) {
  if (partitions.empty()) {
    for (int32_t p = 0; p < partition_count_; ++p) partitions.push_back(p);
  }
  for (int32_t partition : partitions) {
    if (partition < 0 || partition >= partition_count_) {
      return absl::InvalidArgumentError(absl::StrCat("no partition ", partition));
    }
    std::unique_ptr<PartitionWriter> replaced;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (auto it = writers_.find(partition); it != writers_.end()) replaced = std::move(it->second);
      writers_.erase(partition);
    }
    replaced.reset();  // re-acquiring (e.g. after being fenced) starts from scratch
    auto writer = std::make_unique<PartitionWriter>(options_, partition, logger_);
    if (absl::Status started = writer->Start(); !started.ok()) return started;
    std::lock_guard<std::mutex> lock(mutex_);
    writers_[partition] = std::move(writer);
  }
  return absl::OkStatus();
}

void EventStore::Release(std::vector<int32_t> partitions) {
  std::vector<std::unique_ptr<PartitionWriter>> released;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (partitions.empty()) {
      for (auto& [partition, writer] : writers_) released.push_back(std::move(writer));
      writers_.clear();
    } else {
      for (int32_t partition : partitions) {
        auto it = writers_.find(partition);
        if (it == writers_.end()) continue;
        released.push_back(std::move(it->second));
        writers_.erase(it);
      }
    }
  }
  // Destroying a writer drains its queue and stops its thread, outside the lock so that
  // appends racing with the release get a clear FAILED_PRECONDITION.
  released.clear();
}

std::vector<int32_t> EventStore::OwnedPartitions() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<int32_t> owned;
  for (const auto& [partition, writer] : writers_) owned.push_back(partition);
  return owned;
}

absl::StatusOr<EventStore::PartitionWriter*> EventStore::WriterFor(
    const std::string& aggregate_id) const {
  const int32_t partition = PartitionOf(aggregate_id);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = writers_.find(partition);
  if (it == writers_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("not the owner of ", options_.topic, " partition ", partition));
  }
  return it->second.get();
}

absl::StatusOr<AppendResult> EventStore::Append(AppendRequest request) {
  if (absl::Status valid = ValidateRequest(request); !valid.ok()) return valid;
  auto writer = WriterFor(request.aggregate_id);
  if (!writer.ok()) return writer.status();
  return (*writer)->Append(std::move(request));
}

absl::StatusOr<int64_t> EventStore::CurrentVersion(const std::string& aggregate_id) const {
  auto writer = WriterFor(aggregate_id);
  if (!writer.ok()) return writer.status();
  return (*writer)->CurrentVersion(aggregate_id);
}

absl::StatusOr<std::vector<LoggedEvent>> EventStore::Load(const std::string& aggregate_id,
                                                          int64_t from_version) const {
  auto writer = WriterFor(aggregate_id);
  if (!writer.ok()) return writer.status();
  return (*writer)->Load(aggregate_id, from_version);
}

absl::Status EventStore::SaveSnapshot(const std::string& aggregate_id, int64_t version,
                                      const google::protobuf::Any& state) {
  auto writer = WriterFor(aggregate_id);
  if (!writer.ok()) return writer.status();
  return (*writer)->SaveSnapshot(aggregate_id, version, state);
}

absl::StatusOr<LoadedAggregate> EventStore::LoadLatest(const std::string& aggregate_id) const {
  auto writer = WriterFor(aggregate_id);
  if (!writer.ok()) return writer.status();
  return (*writer)->LoadLatest(aggregate_id);
}

StoreStats EventStore::Stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  StoreStats total;
  for (const auto& [partition, writer] : writers_) {
    const StoreStats s = writer->Stats();
    total.appends_committed += s.appends_committed;
    total.appends_duplicate += s.appends_duplicate;
    total.appends_rejected += s.appends_rejected;
    total.appends_failed += s.appends_failed;
    total.transactions_committed += s.transactions_committed;
    total.events_written += s.events_written;
    total.recoveries += s.recoveries;
    total.events_replayed_on_acquire += s.events_replayed_on_acquire;
    total.checkpoints_written += s.checkpoints_written;
    total.snapshots_written += s.snapshots_written;
  }
  return total;
}

absl::Status ReadLog(const kafka::Cluster& cluster, const std::string& topic,
                     const ReplayStart& start, const std::function<bool(const LoggedEvent&)>& visit,
                     absl::Duration timeout) {
  auto partitions = kafka::PartitionCount(cluster, topic, timeout);
  if (!partitions.ok()) return partitions.status();
  auto reader = internal::MakeReader(cluster);
  if (!reader.ok()) return reader.status();

  std::map<int32_t, int64_t> from = start.from_offsets;
  if (start.from_time.has_value()) {
    // offsetsForTimes answers, per partition, the first offset whose record timestamp
    // (the writer's recorded-at) is at or after the time; -1 (end) when there is none.
    std::vector<RdKafka::TopicPartition*> query;
    for (int32_t p = 0; p < *partitions; ++p) {
      query.push_back(RdKafka::TopicPartition::create(topic, p, absl::ToUnixMillis(*start.from_time)));
    }
    const RdKafka::ErrorCode err = (*reader)->offsetsForTimes(query, TimeoutMs(timeout));
    for (RdKafka::TopicPartition* tp : query) {
      from[tp->partition()] = tp->offset() < 0 ? std::numeric_limits<int64_t>::max() : tp->offset();
    }
    RdKafka::TopicPartition::destroy(query);
    if (err != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("kafka offsetsForTimes: ", RdKafka::err2str(err)));
    }
  }
  bool keep_going = true;
  for (int32_t p = 0; p < *partitions && keep_going; ++p) {
    if (!start.partitions.empty() &&
        std::find(start.partitions.begin(), start.partitions.end(), p) == start.partitions.end()) {
      continue;
    }
    auto read = internal::ReadPartition(
        **reader, topic, p, from.contains(p) ? from[p] : 0,
        [&](const LoggedEvent& event) { return keep_going = visit(event); }, timeout);
    if (!read.ok()) return read.status();
  }
  (*reader)->close();
  return absl::OkStatus();
}

}  // namespace clinical::eventstore

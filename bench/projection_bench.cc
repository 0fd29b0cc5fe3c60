// Projection runtime throughput (events/s from Start() until every partition is caught up)
// next to its ceiling measured in the same run against the same redis-server: the very
// commands the read model emits for the same events, sent through one redis::Connection as
// plain pipelines (and as pipelines wrapped in MULTI/EXEC) in chunks of the runtime's batch
// size, with no Kafka, no offsets and no WATCH. A third baseline replays the runtime's own
// Redis protocol (WATCH+GET, then MULTI, SCRIPT LOAD, commands, SET offset, EXEC) at the
// batch size the runtime actually achieved, which separates Redis protocol cost from
// everything else the runtime does (consume, copy, decode, bookkeeping).
//
// The events are produced BEFORE any timing starts (idempotent producer, 12 partitions,
// keyed by aggregate id) and kept in memory for the baselines.
//
// Usage: projection_bench --kafka-bootstrap=HOST:PORT --redis-host=H --redis-port=P
//          [--events=200000] [--aggregates=4000] [--max-batch-events=500[,2000,...]]
// Credentials: the kafka-* and redis-* keys, or their CLINICAL_* variables (bench/run.sh
// sets the platform's admin principal).
// (bench/run.sh starts a private broker and redis-server and passes them in.) Every key
// lives under a unique root and is deleted at the end.
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench_support.h"
#include "clinical/case/v1/events.pb.h"
#include "clinical/config/config.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/client_config.h"
#include "clinical/logging/logger.h"
#include "clinical/projection/batch.h"
#include "clinical/projection/projection.h"
#include "clinical/projection/read_model.h"
#include "clinical/projection/versions.h"
#include "clinical/redis/connection.h"
#include "clinical/redis/options.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/util/time_util.h"
#include "hiredis/hiredis.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical::bench {
namespace {

using projection::KeySpace;
using projection::LuaScript;
using projection::RedisCommand;

constexpr char kAssigned[] = "clinical.case.v1.CaseAssigned";
constexpr char kStatusChanged[] = "clinical.case.v1.CaseStatusChanged";
constexpr char kNoteAdded[] = "clinical.case.v1.NoteAdded";

// Moves a member between the sets "<ARGV[3]><old value>" and "<ARGV[3]><new value>" of a
// hash field (ARGV[1] of KEYS[1]) and records the new value: a case leaving one manager's
// caseload for another's, or one status set for another. The set names depend on the
// stored value, so they cannot all be declared in KEYS; fine for a standalone Redis, not
// for Cluster. Cannot fail at run time for what Translate emits (the keys it touches are
// only ever written by this view with these types).
constexpr char kMoveScript[] = R"lua(
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old == ARGV[2] then return 0 end
if old then redis.call('SREM', ARGV[3] .. old, ARGV[4]) end
redis.call('SADD', ARGV[3] .. ARGV[2], ARGV[4])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
)lua";

// A caseload view as the case service will need: per case a hash of counters and current
// values; per case manager the set of their cases; per status the set of cases in it.
class CaseloadModel : public projection::ReadModel {
 public:
  explicit CaseloadModel(std::string topic) : topic_(std::move(topic)), move_("move", kMoveScript) {}

  std::string Name() const override { return "caseload"; }
  std::vector<std::string> Topics() const override { return {topic_}; }
  std::vector<LuaScript> Scripts() const override { return {move_}; }

  absl::Status Translate(const common::v1::EventEnvelope& event, const KeySpace& keys,
                         std::vector<RedisCommand>& out) const override {
    if (event.aggregate_version() < 1) return absl::InvalidArgumentError("aggregate_version must be >= 1");
    const std::string case_key = keys.Key("case:" + event.aggregate_id());
    const std::string version = absl::StrCat(event.aggregate_version());
    if (event.event_type() == kAssigned) {
      clinical::case_::v1::CaseAssigned assigned;
      if (!event.payload().UnpackTo(&assigned)) return absl::InvalidArgumentError("CaseAssigned payload");
      if (assigned.case_manager_id().empty()) {
        return absl::InvalidArgumentError("CaseAssigned.case_manager_id is required");
      }
      out.push_back(move_.Call({case_key}, {"manager", assigned.case_manager_id(),
                                            keys.Key("caseload:"), event.aggregate_id()}));
    } else if (event.event_type() == kStatusChanged) {
      clinical::case_::v1::CaseStatusChanged changed;
      if (!event.payload().UnpackTo(&changed)) return absl::InvalidArgumentError("CaseStatusChanged payload");
      out.push_back(move_.Call({case_key}, {"status", clinical::case_::v1::CaseStatus_Name(changed.to()),
                                            keys.Key("status:"), event.aggregate_id()}));
    } else if (event.event_type() == kNoteAdded) {
      clinical::case_::v1::NoteAdded note;
      if (!event.payload().UnpackTo(&note)) return absl::InvalidArgumentError("NoteAdded payload");
      out.push_back({"HINCRBY", case_key, "notes", "1"});
    } else {
      return absl::OkStatus();  // not this view's business
    }
    out.push_back({"HINCRBY", case_key, "events", "1"});
    out.push_back({"HSET", case_key, "last_version", version, "last_type", event.event_type()});
    return absl::OkStatus();
  }

 private:
  std::string topic_;
  LuaScript move_;
};

std::string Uuid(uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  const uint64_t y = x ^ (x >> 29);
  return absl::StrFormat("%08x-%04x-4%03x-8%03x-%012x", static_cast<uint32_t>(y >> 32),
                         static_cast<uint32_t>(y >> 16) & 0xffff, static_cast<uint32_t>(y) & 0xfff,
                         static_cast<uint32_t>(x >> 7) & 0xfff, x & 0xffffffffffffull);
}

// Event i is the (i / aggregates + 1)-th event of aggregate i % aggregates: 20% assignments
// (150 case managers), 20% status changes, 60% notes. About 500 bytes serialized.
struct SourceEvent {
  std::string key;
  std::string value;
};

SourceEvent MakeEvent(int64_t i, int aggregates) {
  const int64_t aggregate = i % aggregates;
  const int64_t version = i / aggregates + 1;
  common::v1::EventEnvelope event;
  event.set_event_id(Uuid(static_cast<uint64_t>(i) * 4 + 1));
  event.set_aggregate_type("case");
  event.set_aggregate_id(Uuid(static_cast<uint64_t>(aggregate) * 4 + 2));
  event.set_aggregate_version(version);
  *event.mutable_occurred_at() = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(1'767'225'600'000 + i);
  *event.mutable_recorded_at() = event.occurred_at();
  event.mutable_actor()->set_user_id(Uuid(static_cast<uint64_t>(i % 150) * 4 + 3));
  event.mutable_actor()->set_role(common::v1::ROLE_CASE_MANAGER);
  event.set_tenant_id("tenant-benchmark");
  event.set_command_id(Uuid(static_cast<uint64_t>(i) * 4 + 4));
  event.set_correlation_id(event.command_id());
  event.set_causation_id(event.command_id());
  event.mutable_trace()->set_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  event.set_schema_version(1);
  switch (version % 5) {
    case 1: {
      clinical::case_::v1::CaseAssigned assigned;
      assigned.set_case_manager_id(absl::StrCat("cm-", (aggregate * 31 + version) % 150));
      assigned.set_team_id("team-north");
      assigned.set_load_before(12);
      assigned.set_weight(1);
      assigned.set_caseload_limit(25);
      assigned.set_reason("rebalanced by supervisor after intake review");
      event.mutable_payload()->PackFrom(assigned);
      event.set_event_type(kAssigned);
      break;
    }
    case 3: {
      clinical::case_::v1::CaseStatusChanged changed;
      static constexpr clinical::case_::v1::CaseStatus kCycle[] = {
          clinical::case_::v1::CASE_STATUS_ACTIVE, clinical::case_::v1::CASE_STATUS_ONHOLD,
          clinical::case_::v1::CASE_STATUS_WAITLIST};
      changed.set_from(kCycle[(version / 5 + 2) % 3]);
      changed.set_to(kCycle[(version / 5) % 3]);
      changed.set_reason("status review at weekly case conference, see plan");
      event.mutable_payload()->PackFrom(changed);
      event.set_event_type(kStatusChanged);
      break;
    }
    default: {
      clinical::case_::v1::NoteAdded note;
      note.set_note_id(Uuid(static_cast<uint64_t>(i) * 4 + 5));
      note.set_kind(clinical::case_::v1::NOTE_KIND_PROGRESS);
      note.set_text(std::string(60, 'n'));  // synthetic, never real text
      note.set_duration_minutes(15);
      event.mutable_payload()->PackFrom(note);
      event.set_event_type(kNoteAdded);
      break;
    }
  }
  return {event.aggregate_id(), event.SerializeAsString()};
}

// Records where each record landed (dr_cb runs inside poll()/flush() on the producing thread).
class LandedRecorder : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    if (message.err() != RdKafka::ERR_NO_ERROR) {
      ++failed_;
      return;
    }
    int64_t& last = last_[message.partition()];
    last = std::max(last, message.offset());
    ++delivered_;
  }
  std::map<int32_t, int64_t> last_;
  int64_t delivered_ = 0;
  int64_t failed_ = 0;
};

absl::StatusOr<std::map<int32_t, int64_t>> Produce(const kafka::Cluster& cluster, const std::string& topic,
                                                   const std::vector<SourceEvent>& events) {
  kafka::Properties props = kafka::ProducerDefaults(cluster);
  props["linger.ms"] = "20";
  props["batch.num.messages"] = "10000";
  props["queue.buffering.max.messages"] = "200000";
  auto conf = kafka::MakeConf(props);
  if (!conf.ok()) return conf.status();
  LandedRecorder recorder;
  std::string error;
  (*conf)->set("dr_cb", &recorder, error);
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf->get(), error));
  if (producer == nullptr) return absl::InternalError("producer: " + error);
  for (const SourceEvent& e : events) {
    while (true) {
      const RdKafka::ErrorCode err = producer->produce(
          topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
          const_cast<char*>(e.value.data()), e.value.size(), e.key.data(), e.key.size(), 0, nullptr);
      if (err == RdKafka::ERR_NO_ERROR) break;
      if (err != RdKafka::ERR__QUEUE_FULL) return absl::UnavailableError(RdKafka::err2str(err));
      producer->poll(10);
    }
    producer->poll(0);
  }
  if (producer->flush(60'000) != RdKafka::ERR_NO_ERROR || recorder.failed_ > 0 ||
      recorder.delivered_ != static_cast<int64_t>(events.size())) {
    return absl::UnavailableError(absl::StrCat("produce: ", recorder.failed_, " failed, ",
                                               recorder.delivered_, " delivered"));
  }
  return recorder.last_;
}

absl::Duration ProcessCpu() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return absl::DurationFromTimeval(usage.ru_utime) + absl::DurationFromTimeval(usage.ru_stime);
}

// redis-server's own CPU time (user + sys), from INFO cpu.
absl::Duration RedisCpu(redis::Connection& redis) {
  auto info = redis.Command({"INFO", "cpu"});
  if (!info.ok()) return absl::ZeroDuration();
  double total = 0;
  for (absl::string_view line : absl::StrSplit(info->str(), "\r\n")) {
    for (absl::string_view field : {absl::string_view("used_cpu_sys:"), absl::string_view("used_cpu_user:")}) {
      if (absl::StartsWith(line, field)) {
        double value = 0;
        if (absl::SimpleAtod(line.substr(field.size()), &value)) total += value;
      }
    }
  }
  return absl::Seconds(total);
}

std::string InfoField(redis::Connection& redis, const std::string& section, const std::string& field) {
  auto info = redis.Command({"INFO", section});
  if (!info.ok()) return "?";
  for (absl::string_view line : absl::StrSplit(info->str(), "\r\n")) {
    if (absl::StartsWith(line, field + ":")) return std::string(line.substr(field.size() + 1));
  }
  return "?";
}

// One row of the table.
struct Result {
  std::string name;
  double batch_events = 0;  // events per Redis round trip / transaction
  int64_t batches = 0;
  int64_t events = 0;
  int64_t commands = 0;              // model commands sent (0 if unknown)
  absl::Duration elapsed;            // denominator of events/s
  absl::Duration round_trip_total;   // sum of the timed round trips
  absl::Duration round_trip_max;
  absl::Duration redis_cpu;
  absl::Duration wall;  // for Redis CPU %, the whole phase

  double EventsPerSecond() const { return static_cast<double>(events) / absl::ToDoubleSeconds(elapsed); }
};

enum class Mode { kPipeline, kMultiExec, kRuntimeProtocol };

// Translates the events in chunks of `chunk` (untimed) and sends each chunk's commands as
// one round trip (timed). kRuntimeProtocol sends what the runtime sends per batch.
absl::StatusOr<Result> Baseline(const std::string& name, Mode mode, redis::Connection& redis,
                                const projection::ReadModel& model, const KeySpace& keys,
                                const std::vector<SourceEvent>& events, int chunk,
                                absl::Duration* translate_time) {
  Result result;
  result.name = name;
  result.batch_events = chunk;
  result.events = static_cast<int64_t>(events.size());
  const std::vector<LuaScript> scripts = model.Scripts();
  const std::string offset_key = keys.OffsetKey("bench", 0);
  // The runtime loads its scripts inside every transaction; the plain baselines need them
  // loaded once (outside the timing), as EVALSHA would otherwise meet NOSCRIPT.
  for (const LuaScript& script : scripts) {
    if (auto loaded = redis.Command({"SCRIPT", "LOAD", script.source()}); !loaded.ok()) return loaded.status();
  }
  const absl::Duration cpu_before = RedisCpu(redis);
  std::vector<projection::SourceRecord> records;
  for (size_t begin = 0; begin < events.size(); begin += static_cast<size_t>(chunk)) {
    const size_t end = std::min(events.size(), begin + static_cast<size_t>(chunk));
    const absl::Time translate_start = absl::Now();
    records.clear();
    for (size_t i = begin; i < end; ++i) {
      projection::SourceRecord record;
      record.topic = "bench";
      record.offset = static_cast<int64_t>(i);
      record.key = events[i].key;
      record.value = events[i].value;
      records.push_back(std::move(record));
    }
    projection::BatchPlan plan =
        projection::PlanBatch(model, keys, records, static_cast<int64_t>(begin) - 1);
    if (!plan.dead_letters.empty()) return absl::InternalError("the model refused a benchmark event");
    result.commands += static_cast<int64_t>(plan.commands.size());
    std::vector<redis::Args> commands;
    if (mode == Mode::kRuntimeProtocol) {
      commands = projection::TransactionCommands(plan, scripts, offset_key);
    } else {
      commands.reserve(plan.commands.size() + 2);
      if (mode == Mode::kMultiExec) commands.push_back({"MULTI"});
      for (RedisCommand& c : plan.commands) commands.push_back(std::move(c));
      if (mode == Mode::kMultiExec) commands.push_back({"EXEC"});
    }
    *translate_time += absl::Now() - translate_start;

    const absl::Time start = absl::Now();
    if (mode == Mode::kRuntimeProtocol) {
      auto watched = redis.Pipeline({{"WATCH", offset_key}, {"GET", offset_key}});
      if (!watched.ok()) return watched.status();
    }
    auto replies = redis.Pipeline(commands);
    const absl::Duration latency = absl::Now() - start;
    if (!replies.ok()) return replies.status();
    const std::vector<redis::Reply>& checked =
        mode == Mode::kPipeline ? *replies : replies->back().elements();
    if (mode != Mode::kPipeline && replies->back().type() != redis::Reply::Type::kArray) {
      return absl::InternalError(absl::StrCat(name, ": EXEC did not run"));
    }
    for (const redis::Reply& reply : checked) {
      if (reply.is_error()) return absl::InternalError(absl::StrCat(name, ": ", reply.error_kind()));
    }
    result.round_trip_total += latency;
    result.round_trip_max = std::max(result.round_trip_max, latency);
    ++result.batches;
  }
  result.redis_cpu = RedisCpu(redis) - cpu_before;
  // Redis is idle while this thread translates, so its CPU is set against the time spent
  // waiting for it.
  result.wall = result.round_trip_total;
  result.elapsed = result.round_trip_total;  // Redis time only: the ceiling
  return result;
}

struct ProjectionRun {
  Result result;
  absl::Duration end_to_end;      // Start() -> every partition caught up
  absl::Duration steady;          // first committed batch -> caught up
  int64_t steady_events = 0;
  absl::Duration client_cpu;      // this process (runtime thread + librdkafka threads)
  projection::ProjectionStats stats;
};

absl::StatusOr<ProjectionRun> RunProjection(const projection::ProjectionOptions& options,
                                            const projection::ReadModel& model, logging::Logger& logger,
                                            redis::Connection& redis, const std::string& topic,
                                            const std::map<int32_t, int64_t>& last, int64_t events,
                                            absl::Duration timeout) {
  auto runtime = projection::Projection::Create(options, model, logger);
  if (!runtime.ok()) return runtime.status();
  ProjectionRun run;
  const absl::Duration redis_cpu_before = RedisCpu(redis);
  const absl::Duration cpu_before = ProcessCpu();
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + timeout;
  (*runtime)->Start();
  absl::Time first_batch = absl::InfiniteFuture();
  int64_t events_at_first_batch = 0;
  bool done = false;
  while (!done && absl::Now() < deadline) {
    const projection::ProjectionStats stats = (*runtime)->Stats();
    if (!stats.status.ok()) return stats.status;
    const absl::Time now = absl::Now();
    if (stats.batches > 0 && first_batch == absl::InfiniteFuture()) {
      first_batch = now;
      events_at_first_batch = stats.events_applied;
    }
    done = stats.caught_up && stats.partitions.size() == last.size();
    for (const projection::PartitionStats& p : stats.partitions) {
      auto it = last.find(p.partition);
      done = done && p.topic == topic && p.lag == 0 &&
             p.applied_offset >= (it == last.end() ? -1 : it->second);
    }
    if (done) {
      run.end_to_end = now - start;
      run.steady = now - first_batch;
      run.stats = stats;
      break;
    }
    absl::SleepFor(absl::Milliseconds(1));  // poll interval of the wait, not a fixed delay
  }
  run.client_cpu = ProcessCpu() - cpu_before;
  run.result.redis_cpu = RedisCpu(redis) - redis_cpu_before;
  (*runtime)->Stop();
  if (!done) {
    return absl::DeadlineExceededError(absl::StrCat("projection not caught up within ", absl::FormatDuration(timeout),
                                                    "; applied ", (*runtime)->Stats().events_applied));
  }
  if (run.stats.events_applied != events) {
    return absl::InternalError(absl::StrCat("projection applied ", run.stats.events_applied, " of ", events));
  }
  run.steady_events = events - events_at_first_batch;
  Result& r = run.result;
  r.name = absl::StrCat("projection runtime (max_batch_events=", options.max_batch_events, ")");
  r.events = events;
  r.batches = run.stats.batches;
  r.batch_events = static_cast<double>(events) / static_cast<double>(std::max<int64_t>(1, r.batches));
  r.elapsed = run.end_to_end;
  r.wall = run.end_to_end;
  r.round_trip_total = run.stats.apply_latency_total;
  r.round_trip_max = run.stats.apply_latency_max;
  return run;
}

// The same events through the runtime and through a baseline must leave equal views.
absl::Status CompareViews(redis::Connection& redis, const KeySpace& a, const KeySpace& b, int aggregates) {
  for (int agg = 0; agg < aggregates; agg += std::max(1, aggregates / 25)) {
    const std::string name = "case:" + Uuid(static_cast<uint64_t>(agg) * 4 + 2);
    auto x = redis.Command({"HGETALL", a.Key(name)});
    auto y = redis.Command({"HGETALL", b.Key(name)});
    if (!x.ok()) return x.status();
    if (!y.ok()) return y.status();
    if (x->elements().empty() || x->elements().size() != y->elements().size()) {
      return absl::InternalError(absl::StrCat("views differ for aggregate ", agg));
    }
    // HGETALL order follows insertion for small hashes; equal commands give equal order.
    if (!(*x == *y)) return absl::InternalError(absl::StrCat("views differ for aggregate ", agg));
  }
  for (const char* set : {"status:CASE_STATUS_ACTIVE", "caseload:cm-7"}) {
    auto x = redis.Command({"SCARD", a.Key(set)});
    auto y = redis.Command({"SCARD", b.Key(set)});
    if (!x.ok() || !y.ok() || x->integer() != y->integer()) {
      return absl::InternalError(absl::StrCat("set sizes differ: ", set));
    }
  }
  return absl::OkStatus();
}

void PrintRow(const Result& r, double raw_per_second) {
  const double mean_rt = r.batches > 0 ? absl::ToDoubleMilliseconds(r.round_trip_total) / static_cast<double>(r.batches) : 0;
  std::printf("| %s | %.1f | %lld | %.0f | %.3f ms | %s | %.0f%% | %.0f%% |\n", r.name.c_str(), r.batch_events,
              static_cast<long long>(r.batches), r.EventsPerSecond(), mean_rt, Millis(r.round_trip_max).c_str(),
              100.0 * absl::ToDoubleSeconds(r.redis_cpu) / absl::ToDoubleSeconds(r.wall),
              100.0 * r.EventsPerSecond() / raw_per_second);
  std::fflush(stdout);
}

int Main(int argc, char** argv) {
  // The Kafka and Redis keys every client declares; bench/run.sh gives the platform's admin
  // principal and Redis admin user (the benchmark creates topics and reads CONFIG).
  std::vector<config::Option> flags = kafka::ClusterOptions();
  for (config::Option& option : redis::EndpointOptions()) flags.push_back(std::move(option));
  flags.insert(flags.end(), {
      {"events", config::OptionType::kInt, "200000", "events produced and projected"},
      {"aggregates", config::OptionType::kInt, "4000", "distinct aggregates (Kafka keys)"},
      {"partitions", config::OptionType::kInt, "12", "partitions of the source topic"},
      {"max-batch-events", config::OptionType::kString, "500",
       "ProjectionOptions.max_batch_events, comma-separated for a sweep (one projection run each)"},
      {"timeout", config::OptionType::kDuration, "180s", "bound of each projection run"},
  });
  auto cfg = config::Config::Load(flags, argc, argv, config::ProcessEnvironment());
  absl::StatusOr<kafka::Cluster> cluster = cfg.ok() ? kafka::ClusterFromConfig(*cfg, "bench") : cfg.status();
  absl::StatusOr<redis::Endpoint> endpoint = cluster.ok() ? redis::EndpointFromConfig(*cfg) : cluster.status();
  if (!endpoint.ok()) {
    std::cerr << endpoint.status().message() << "\n";
    return 2;
  }
  const std::string& redis_host = endpoint->host;
  const int64_t event_count = cfg->GetInt("events");
  const int aggregates = static_cast<int>(cfg->GetInt("aggregates"));
  std::vector<int> batch_sizes;
  for (const std::string& part : std::vector<std::string>(absl::StrSplit(cfg->GetString("max-batch-events"), ','))) {
    int b = 0;
    if (absl::SimpleAtoi(part, &b) && b > 0) batch_sizes.push_back(b);
  }
  if (event_count < 1 || event_count > 5'000'000 || aggregates < 1 || batch_sizes.empty()) {
    std::cerr << "--events must be 1..5000000, --aggregates and --max-batch-events positive\n";
    return 2;
  }
  if (redis_host != "127.0.0.1" && redis_host != "localhost" && redis_host != "::1") {
    std::cerr << "--redis-host must be loopback: the benchmark writes and deletes keys\n";
    return 2;
  }

  const std::string suffix = absl::StrCat(absl::ToUnixMicros(absl::Now()));
  kafka::TopicSpec source, dead_letters;
  source.name = "bench.projection." + suffix;
  source.partitions = static_cast<int>(cfg->GetInt("partitions"));
  dead_letters.name = source.name + ".deadletter";
  dead_letters.partitions = 1;
  if (absl::Status created = kafka::EnsureTopics(*cluster, {source, dead_letters}, absl::Seconds(60));
      !created.ok()) {
    std::cerr << created << "\n";
    return 1;
  }
  auto connected = redis::Connection::Connect(*endpoint, absl::Seconds(10));
  if (!connected.ok()) {
    std::cerr << connected.status() << "\n";
    return 1;
  }
  redis::Connection redis = std::move(*connected);
  const std::string root = "bench:projection:" + suffix;

  // Produce everything before any timing.
  std::vector<SourceEvent> events;
  events.reserve(static_cast<size_t>(event_count));
  size_t bytes = 0;
  for (int64_t i = 0; i < event_count; ++i) {
    events.push_back(MakeEvent(i, aggregates));
    bytes += events.back().value.size();
  }
  const absl::Time produce_start = absl::Now();
  auto last = Produce(*cluster, source.name, events);
  if (!last.ok()) {
    std::cerr << last.status() << "\n";
    return 1;
  }
  const absl::Duration produce_time = absl::Now() - produce_start;

  CaseloadModel model(source.name);
  // The runtime's warnings and errors (retries, resyncs) go to stderr; info lines do not.
  logging::Logger logger("projection-bench", std::cerr, logging::Level::kWarn);

  std::printf("projection runtime (Kafka -> Redis, exactly-once) vs raw pipelined Redis writes of the same commands\n");
  std::printf("%s; Kafka 3.9 single local broker; librdkafka %s; Redis %s (appendonly %s, appendfsync %s); "
              "hiredis %d.%d.%d; protobuf %s\n",
              MachineDescription().c_str(), RdKafka::version_str().c_str(),
              InfoField(redis, "server", "redis_version").c_str(),
              InfoField(redis, "persistence", "aof_enabled") == "1" ? "yes" : "no",
              [&] {
                auto r = redis.Command({"CONFIG", "GET", "appendfsync"});
                return r.ok() && r->elements().size() == 2 ? r->elements()[1].str() : std::string("?");
              }().c_str(),
              HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH,
              google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION).c_str());
  std::printf("N=%lld events (mean %.0f bytes), %d aggregates, %d partitions, produced in %s before timing; "
              "model: per-case hash counters + Lua move between manager/status sets\n\n",
              static_cast<long long>(event_count), static_cast<double>(bytes) / static_cast<double>(event_count),
              aggregates, source.partitions, absl::FormatDuration(produce_time).c_str());

  std::vector<std::string> versions;
  int exit_code = 0;
  for (int batch : batch_sizes) {
    absl::Duration translate_time;
    auto keyspace = [&](const std::string& kind) {
      versions.push_back(absl::StrCat(kind, "-b", batch));
      return *KeySpace::Create(root, versions.back());
    };
    const KeySpace raw_keys = keyspace("raw");
    auto raw = Baseline(absl::StrCat("raw pipeline, ", batch, " events per round trip"), Mode::kPipeline, redis,
                        model, raw_keys, events, batch, &translate_time);
    auto multi = Baseline(absl::StrCat("raw pipeline in MULTI/EXEC, ", batch, " events"), Mode::kMultiExec, redis,
                          model, keyspace("multi"), events, batch, &translate_time);
    if (!raw.ok() || !multi.ok()) {
      std::cerr << (raw.ok() ? multi.status() : raw.status()) << "\n";
      exit_code = 1;
      break;
    }
    projection::ProjectionOptions options;
    options.kafka = *cluster;
    options.redis = *endpoint;
    options.root = root;
    const KeySpace runtime_keys = keyspace("runtime");
    options.version = runtime_keys.version();
    options.dead_letter_topic = dead_letters.name;
    options.consumer_group = absl::StrCat("bench.projection.", suffix, ".", batch);
    options.max_batch_events = batch;
    options.redis_timeout = absl::Seconds(10);
    auto run = RunProjection(options, model, logger, redis, source.name, *last, event_count,
                             cfg->GetDuration("timeout"));
    if (!run.ok()) {
      std::cerr << run.status() << "\n";
      exit_code = 1;
      break;
    }
    const int achieved = std::max(1, static_cast<int>(run->result.batch_events + 0.5));
    auto replay = Baseline(absl::StrCat("runtime's Redis protocol replayed, ", achieved, " events"),
                           Mode::kRuntimeProtocol, redis, model, keyspace("replay"), events, achieved,
                           &translate_time);
    if (!replay.ok()) {
      std::cerr << replay.status() << "\n";
      exit_code = 1;
      break;
    }
    if (absl::Status same = CompareViews(redis, runtime_keys, raw_keys, aggregates); !same.ok()) {
      std::cerr << same << "\n";
      exit_code = 1;
    }

    const double raw_rate = raw->EventsPerSecond();
    std::printf("max_batch_events=%d: %lld model commands (%.2f per event); events/s of the baselines count only "
                "their Redis round trips\n\n",
                batch, static_cast<long long>(raw->commands),
                static_cast<double>(raw->commands) / static_cast<double>(event_count));
    std::printf("| run | events per batch | batches | events/s | mean round trip | max round trip | Redis CPU | vs raw |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    PrintRow(*raw, raw_rate);
    PrintRow(*multi, raw_rate);
    PrintRow(*replay, raw_rate);
    PrintRow(run->result, raw_rate);
    const projection::ProjectionStats& s = run->stats;
    std::printf("\nprojection: Start() -> caught up %s (%.0f events/s); first batch -> caught up %s "
                "(%.0f events/s steady)\n",
                absl::FormatDuration(run->end_to_end).c_str(), run->result.EventsPerSecond(),
                absl::FormatDuration(run->steady).c_str(),
                static_cast<double>(run->steady_events) / absl::ToDoubleSeconds(run->steady));
    std::printf("projection: %lld batches, %.1f events per batch, MULTI/EXEC round trips %s in total "
                "(%.0f%% of the run; mean %.3f ms, max %s); bench process CPU %s (%.0f%% of one core); "
                "redis errors %lld, kafka errors %lld, resyncs %lld, skipped %lld, dead-lettered %lld\n",
                static_cast<long long>(s.batches), run->result.batch_events,
                absl::FormatDuration(s.apply_latency_total).c_str(),
                100.0 * absl::ToDoubleSeconds(s.apply_latency_total) / absl::ToDoubleSeconds(run->end_to_end),
                absl::ToDoubleMilliseconds(s.apply_latency_total) / static_cast<double>(std::max<int64_t>(1, s.batches)),
                Millis(s.apply_latency_max).c_str(), absl::FormatDuration(run->client_cpu).c_str(),
                100.0 * absl::ToDoubleSeconds(run->client_cpu) / absl::ToDoubleSeconds(run->end_to_end),
                static_cast<long long>(s.redis_errors), static_cast<long long>(s.kafka_errors),
                static_cast<long long>(s.resyncs), static_cast<long long>(s.events_skipped),
                static_cast<long long>(s.dead_lettered));
    std::printf("decode + Translate of all events (baselines, per pass): %s, %.2f us per event\n",
                absl::FormatDuration(translate_time / 3).c_str(),
                absl::ToDoubleMicroseconds(translate_time / 3) / static_cast<double>(event_count));
    std::printf("projection / raw pipeline: %.0f%% end to end, %.0f%% steady (target >= 50%%)\n\n",
                100.0 * run->result.EventsPerSecond() / raw_rate,
                100.0 * static_cast<double>(run->steady_events) / absl::ToDoubleSeconds(run->steady) / raw_rate);
    std::fflush(stdout);
  }

  // Clean up every key this run wrote (no version was activated, so each can be dropped).
  int64_t dropped = 0;
  for (const std::string& version : versions) {
    auto n = projection::DropVersion(redis, root, version);
    if (!n.ok()) {
      std::cerr << "cleanup of " << version << ": " << n.status() << "\n";
      exit_code = 1;
      continue;
    }
    dropped += *n;
  }
  size_t left = 0;
  std::string cursor = "0";
  do {
    auto page = redis.Command({"SCAN", cursor, "MATCH", root + "*", "COUNT", "10000"});
    if (!page.ok() || page->elements().size() != 2) {
      std::cerr << "cleanup check failed\n";
      exit_code = 1;
      break;
    }
    cursor = page->elements()[0].str();
    left += page->elements()[1].elements().size();
  } while (cursor != "0");
  std::printf("cleanup: %lld keys under %s deleted, %zu left\n", static_cast<long long>(dropped), root.c_str(), left);
  if (left != 0) exit_code = 1;
  return exit_code;
}

}  // namespace
}  // namespace clinical::bench

int main(int argc, char** argv) { return clinical::bench::Main(argc, argv); }

#include "audit_log.h"

#include <algorithm>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "clinical/kafka/admin.h"
#include "clinical/kafka/client_config.h"
#include "librdkafka/rdkafkacpp.h"
#include "topic_reader.h"
#include "verify.h"

namespace clinical::audit {
namespace {

constexpr int kPoolSize = 8;
constexpr int kQueryBatch = 200;
constexpr int kQueryRounds = 50;
constexpr int kVerifyBatch = 1000;

absl::Status Unavailable(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kUnavailable) return status;
  return absl::UnavailableError(absl::StrCat("redis: ", status.message()));
}

int64_t IntOr(const redis::Reply& reply, int64_t fallback) {
  int64_t value = 0;
  if (reply.type() == redis::Reply::Type::kInteger) return reply.integer();
  if (reply.type() != redis::Reply::Type::kString || !absl::SimpleAtoi(reply.str(), &value)) {
    return fallback;
  }
  return value;
}

}  // namespace

// A pooled connection, returned to the pool when the lease ends (unless broken).
class AuditLog::ConnectionLease {
 public:
  ConnectionLease(AuditLog* owner, redis::Connection connection)
      : owner_(owner), connection_(std::move(connection)) {}
  ConnectionLease(ConnectionLease&& other) noexcept
      : owner_(std::exchange(other.owner_, nullptr)), connection_(std::move(other.connection_)) {}
  ConnectionLease& operator=(ConnectionLease&&) = delete;
  ~ConnectionLease() {
    if (owner_ != nullptr && connection_.has_value() && !connection_->broken()) {
      owner_->Return(std::move(*connection_));
    }
  }
  redis::Connection* operator->() { return &*connection_; }

 private:
  AuditLog* owner_;
  std::optional<redis::Connection> connection_;
};

AuditLog::AuditLog(AuditLogOptions options, const CheckpointVerifier* verifier)
    : options_(std::move(options)), verifier_(verifier), keys_(options_.key_root) {}
AuditLog::~AuditLog() = default;

absl::StatusOr<AuditLog::ConnectionLease> AuditLog::Lease() {
  {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    if (!pool_.empty()) {
      redis::Connection connection = std::move(pool_.back());
      pool_.pop_back();
      return ConnectionLease(this, std::move(connection));
    }
  }
  auto connection =
      redis::Connection::Connect(options_.redis, options_.redis_timeout);
  if (!connection.ok()) return Unavailable(connection.status());
  return ConnectionLease(this, std::move(*connection));
}

void AuditLog::Return(redis::Connection connection) {
  std::lock_guard<std::mutex> lock(pool_mutex_);
  if (pool_.size() < kPoolSize) pool_.push_back(std::move(connection));
}

absl::StatusOr<std::vector<audit::v1::ChainHead>> AuditLog::ListChains() {
  auto redis = Lease();
  if (!redis.ok()) return redis.status();
  auto members = (*redis)->Command({"SMEMBERS", keys_.Chains()});
  if (!members.ok()) return Unavailable(members.status());
  std::vector<std::string> chains;
  for (const redis::Reply& member : members->elements()) chains.push_back(member.str());
  std::sort(chains.begin(), chains.end());
  std::vector<redis::Args> gets;
  for (const std::string& chain : chains) {
    gets.push_back({"HMGET", keys_.Head(chain), "seq", "hash", "offset", "ckpt_seq"});
  }
  auto replies = (*redis)->Pipeline(gets);
  if (!replies.ok()) return Unavailable(replies.status());
  std::vector<audit::v1::ChainHead> heads;
  for (size_t i = 0; i < chains.size(); ++i) {
    const auto& fields = (*replies)[i].elements();
    audit::v1::ChainHead head;
    head.set_chain_id(chains[i]);
    if (fields.size() == 4) {
      head.set_sequence(IntOr(fields[0], 0));
      head.set_hash(fields[1].str());
      head.set_source_offset(IntOr(fields[2], -1));
      head.set_checkpoint_sequence(IntOr(fields[3], 0));
    }
    heads.push_back(std::move(head));
  }
  return heads;
}

absl::StatusOr<std::map<int64_t, std::string>> AuditLog::ReadSource(const std::string& topic,
                                                                    int32_t partition, int64_t first,
                                                                    int64_t last) {
  std::map<int64_t, std::string> values;
  if (first > last) return values;
  auto consumer = OpenReader(options_.kafka);
  if (!consumer.ok()) return consumer.status();
  const absl::Status read = ReadPartition(
      **consumer, topic, partition, first, last, absl::Now() + options_.kafka_timeout,
      [&](int64_t offset, std::string value) {
        if (offset <= last) values.emplace(offset, std::move(value));
      });
  (*consumer)->close();
  if (!read.ok()) return read;
  return values;
}

absl::StatusOr<std::vector<audit::v1::Checkpoint>> AuditLog::ReadCheckpoints(
    const std::string& chain_id) {
  std::vector<audit::v1::Checkpoint> checkpoints;
  const absl::Status read =
      ReadWholeTopic(options_.kafka, options_.checkpoint_topic, options_.kafka_timeout, [&](std::string value) {
        audit::v1::Checkpoint checkpoint;
        // A record that does not decode is not a checkpoint anyone signed; skipping it
        // cannot make a tampered log pass (it only removes evidence an attacker added).
        if (checkpoint.ParseFromString(value) && checkpoint.chain_id() == chain_id) {
          checkpoints.push_back(std::move(checkpoint));
        }
      });
  if (!read.ok()) return read;
  return checkpoints;
}

absl::StatusOr<audit::v1::VerifyChainResponse> AuditLog::Verify(const std::string& chain_id,
                                                                int64_t from_sequence,
                                                                int64_t to_sequence) {
  std::string topic;
  int32_t partition = 0;
  if (absl::Status parsed = ParseChainId(chain_id, &topic, &partition); !parsed.ok()) return parsed;
  const bool is_access = topic == options_.access_topic;
  if (!is_access && std::find(options_.event_topics.begin(), options_.event_topics.end(), topic) ==
                        options_.event_topics.end()) {
    return absl::NotFoundError("chain is not of a source topic this service follows");
  }
  auto redis = Lease();
  if (!redis.ok()) return redis.status();
  const std::string records_key = keys_.Records(chain_id);
  auto sizes = (*redis)->Pipeline({{"HGET", keys_.Head(chain_id), "seq"}, {"HLEN", records_key}});
  if (!sizes.ok()) return Unavailable(sizes.status());
  int64_t last = std::max(IntOr((*sizes)[0], 0), IntOr((*sizes)[1], 0));
  // Records stored past the head (appended behind the chainer's back) are part of what
  // must verify.
  for (int probes = 0; probes < 1000; ++probes) {
    auto exists = (*redis)->Command({"HEXISTS", records_key, absl::StrCat(last + 1)});
    if (!exists.ok()) return Unavailable(exists.status());
    if (exists->integer() != 1) break;
    ++last;
  }
  if (last == 0) return absl::NotFoundError("chain has no records");
  const int64_t from = from_sequence > 0 ? from_sequence : 1;
  const int64_t to = to_sequence > 0 ? to_sequence : last;
  if (from > to || to > last) {
    return absl::InvalidArgumentError(
        absl::StrCat("range must satisfy 1 <= from <= to <= ", last, " (the last stored record)"));
  }
  if (to - from + 1 > options_.max_verify_records) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", options_.max_verify_records, " records per call"));
  }

  VerifyInput input;
  input.chain_id = chain_id;
  input.from_sequence = from;
  input.stored_last_sequence = last;
  input.format = is_access ? SourceFormat::kAccess : SourceFormat::kEvents;
  if (from > 1) {
    auto anchor = (*redis)->Command({"HGET", records_key, absl::StrCat(from - 1)});
    if (!anchor.ok()) return Unavailable(anchor.status());
    audit::v1::ChainedRecord record;
    if (anchor->is_nil() || !record.ParseFromString(anchor->str())) {
      audit::v1::VerifyChainResponse response;
      response.set_chain_id(chain_id);
      response.set_from_sequence(from);
      response.set_to_sequence(to);
      response.set_failure(audit::v1::VERIFY_FAILURE_SEQUENCE_GAP);
      response.set_failed_sequence(from - 1);
      response.set_detail(absl::StrCat("record ", from - 1, " (the range's anchor) is missing or malformed"));
      return response;
    }
    input.anchor_hash = record.hash();
    input.anchor_offset = record.source_offset();
  }
  for (int64_t start = from; start <= to; start += kVerifyBatch) {
    redis::Args hmget = {"HMGET", records_key};
    for (int64_t s = start; s <= std::min(to, start + kVerifyBatch - 1); ++s) {
      hmget.push_back(absl::StrCat(s));
    }
    auto values = (*redis)->Command(hmget);
    if (!values.ok()) return Unavailable(values.status());
    for (const redis::Reply& value : values->elements()) {
      if (value.is_nil()) {
        input.stored.push_back(std::nullopt);
      } else {
        input.stored.push_back(value.str());
      }
    }
  }
  // The source offsets the range claims: read that span of the partition once.
  int64_t min_offset = std::numeric_limits<int64_t>::max();
  int64_t max_offset = -1;
  for (const auto& stored : input.stored) {
    audit::v1::ChainedRecord record;
    if (!stored.has_value() || !record.ParseFromString(*stored)) continue;
    if (record.source_offset() < 0) continue;
    min_offset = std::min(min_offset, record.source_offset());
    max_offset = std::max(max_offset, record.source_offset());
  }
  auto source = ReadSource(topic, partition, min_offset, max_offset);
  if (!source.ok()) return source.status();
  input.source_values = std::move(*source);
  auto checkpoints = ReadCheckpoints(chain_id);
  if (!checkpoints.ok()) return checkpoints.status();
  input.checkpoints = std::move(*checkpoints);
  return VerifyRange(input, verifier_);
}

absl::StatusOr<std::vector<std::string>> AuditLog::PatientCases(const std::string& tenant,
                                                                const std::string& mrn) {
  if (options_.patient_index_key.empty()) {
    return absl::FailedPreconditionError("the patient index is not configured on this service");
  }
  auto redis = Lease();
  if (!redis.ok()) return redis.status();
  auto members = (*redis)->Command(
      {"SMEMBERS", keys_.PatientCases(tenant, PatientKey(options_.patient_index_key, tenant, mrn))});
  if (!members.ok()) return Unavailable(members.status());
  std::vector<std::string> cases;
  for (const redis::Reply& member : members->elements()) cases.push_back(member.str());
  std::sort(cases.begin(), cases.end());
  return cases;
}

absl::StatusOr<Page> AuditLog::Query(const std::string& tenant, const audit::v1::RecordFilter& filter,
                                     int page_size, const std::string& page_token) {
  if (!page_token.empty() && !ParseIndexMember(page_token).has_value()) {
    return absl::InvalidArgumentError("page_token is not one this service issued");
  }
  const bool access_only = filter.kind() == audit::v1::RECORD_KIND_ACCESS;
  std::vector<std::string> index_keys;
  if (!filter.case_id().empty()) {
    index_keys.push_back(access_only ? keys_.AccessByCase(tenant, filter.case_id())
                                     : keys_.ByCase(tenant, filter.case_id()));
  } else if (!filter.patient_mrn().empty()) {
    auto cases = PatientCases(tenant, filter.patient_mrn());
    if (!cases.ok()) return cases.status();
    for (const std::string& case_id : *cases) {
      index_keys.push_back(access_only ? keys_.AccessByCase(tenant, case_id) : keys_.ByCase(tenant, case_id));
    }
  } else if (!filter.actor_id().empty()) {
    index_keys.push_back(keys_.ByActor(tenant, filter.actor_id()));
  } else if (!filter.action().empty()) {
    index_keys.push_back(keys_.ByAction(tenant, filter.action()));
  } else {
    index_keys.push_back(keys_.All(tenant));
  }
  Page page;
  if (index_keys.empty()) return page;

  std::string min = filter.has_from_time() ? "[" + IndexTimePrefix(ToMillis(filter.from_time())) : "-";
  if (!page_token.empty()) min = "(" + page_token;
  const std::string max = filter.has_to_time() ? "(" + IndexTimePrefix(ToMillis(filter.to_time())) : "+";

  auto redis = Lease();
  if (!redis.ok()) return redis.status();
  for (int round = 0; round < kQueryRounds; ++round) {
    std::vector<redis::Args> ranges;
    for (const std::string& key : index_keys) {
      ranges.push_back({"ZRANGE", key, min, max, "BYLEX", "LIMIT", "0", absl::StrCat(kQueryBatch)});
    }
    auto replies = (*redis)->Pipeline(ranges);
    if (!replies.ok()) return Unavailable(replies.status());
    std::set<std::string> merged;
    bool exhausted = true;
    for (const redis::Reply& reply : *replies) {
      if (reply.is_error()) return Unavailable(reply.ToStatus());
      if (static_cast<int>(reply.elements().size()) == kQueryBatch) exhausted = false;
      for (const redis::Reply& member : reply.elements()) merged.insert(member.str());
    }
    // Only the first kQueryBatch merged members are complete across every index.
    std::vector<std::string> members(merged.begin(), merged.end());
    if (static_cast<int>(members.size()) > kQueryBatch) members.resize(kQueryBatch);
    if (members.empty()) return page;
    std::vector<redis::Args> gets;
    std::vector<IndexRef> refs;
    for (const std::string& member : members) {
      auto ref = ParseIndexMember(member);
      if (!ref.has_value()) return absl::InternalError("an index member does not parse");
      gets.push_back({"HGET", keys_.Records(ref->chain), absl::StrCat(ref->sequence)});
      refs.push_back(*ref);
    }
    auto records = (*redis)->Pipeline(gets);
    if (!records.ok()) return Unavailable(records.status());
    for (size_t i = 0; i < members.size(); ++i) {
      const redis::Reply& value = (*records)[i];
      min = "(" + members[i];
      audit::v1::ChainedRecord record;
      // An index entry whose record is gone or altered is skipped here; VerifyChain is
      // where a missing or changed record is reported.
      if (value.is_nil() || !record.ParseFromString(value.str())) continue;
      if (record.tenant_id() != tenant) continue;
      if (!filter.action().empty() && record.action() != filter.action()) continue;
      if (!filter.actor_id().empty() && record.actor_id() != filter.actor_id()) continue;
      if (filter.kind() != audit::v1::RECORD_KIND_UNSPECIFIED && record.kind() != filter.kind()) continue;
      page.records.push_back(std::move(record));
      if (static_cast<int>(page.records.size()) == page_size) {
        const bool more = i + 1 < members.size() || !exhausted || merged.size() > members.size();
        if (more) page.next_page_token = members[i];
        return page;
      }
    }
    if (exhausted && merged.size() <= members.size()) return page;
  }
  // Many records scanned, few matched: hand back a token to go on from.
  page.next_page_token = min.substr(1);
  return page;
}

}  // namespace clinical::audit

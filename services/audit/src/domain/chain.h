#pragma once

// The audit log's hash chain, as pure functions: no I/O, no clock, no randomness. The same
// source record, sequence and previous hash always give the same ChainedRecord, byte for
// byte, so rebuilding the log from Kafka reproduces it and a verifier can recompute it.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "clinical/audit/v1/audit_service.pb.h"

namespace clinical::audit {

// One Kafka record as the chain sees it.
struct SourceRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string value;
};

// The hash of "no previous record": 64 zeros.
inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// "<topic>/<partition>". Topics cannot contain '/', so the id splits unambiguously.
std::string ChainId(std::string_view topic, int32_t partition);
// INVALID_ARGUMENT unless `chain_id` is "<topic>/<non-negative partition>".
absl::Status ParseChainId(std::string_view chain_id, std::string* topic, int32_t* partition);

// Lowercase hex SHA-256.
std::string Sha256Hex(std::string_view data);
// Lowercase hex of raw bytes.
std::string HexEncode(std::string_view bytes);
// Appends `field` as an 8-byte big-endian length and its bytes: the unit of every
// canonical encoding here (records, checkpoints), unambiguous whatever the bytes are.
void AppendLengthPrefixed(std::string& out, std::string_view field);

// Whether `topic` carries access records (clinical.audit.v1.AccessRecord) rather than
// event envelopes. Decided by the caller's configuration, passed in.
enum class SourceFormat { kEvents, kAccess };

// OK when the topics the chainer is configured with can be chained: the access topic is not
// also an event topic, and neither is the policy snapshots topic (`policy_topic`,
// clinical.access.policies.v1): it shares the access records' clinical.access. prefix but
// holds AccessPolicySnapshots, which RecheckAccess reads by key and which would chain as
// undecodable records. INVALID_ARGUMENT naming the config key otherwise.
absl::Status CheckSourceTopics(const std::vector<std::string>& event_topics, const std::string& access_topic,
                               const std::string& policy_topic);

// The record for `source` at `sequence` of its chain, after `previous_hash`. Decodes the
// value as an EventEnvelope or AccessRecord (per `format`) to fill the indexed fields; a
// value that does not decode is chained as RECORD_KIND_UNDECODABLE with its digest only.
audit::v1::ChainedRecord BuildRecord(const SourceRecord& source, SourceFormat format,
                                     int64_t sequence, std::string_view previous_hash);

// The canonical encoding of every field of `record` except `hash`: a domain tag, then each
// field in a fixed order as an 8-byte big-endian length followed by its bytes (numbers and
// times as decimal text, repeated fields as a count then each element). Unambiguous: no
// two different records encode to the same bytes.
std::string CanonicalEncoding(const audit::v1::ChainedRecord& record);

// SHA-256 (hex) of CanonicalEncoding(record); record.previous_hash is part of it.
std::string ComputeHash(const audit::v1::ChainedRecord& record);

// The lowercase role name ("case_manager") for an event's actor role.
std::string RoleName(int role);

}  // namespace clinical::audit

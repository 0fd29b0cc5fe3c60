#include "verify.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace clinical::audit {
namespace {

using audit::v1::VerifyChainResponse;

bool Fail(VerifyChainResponse& response, audit::v1::VerifyFailure failure, int64_t sequence,
          std::string detail) {
  response.set_ok(false);
  response.set_failure(failure);
  response.set_failed_sequence(sequence);
  response.set_detail(std::move(detail));
  return false;
}

}  // namespace

VerifyChainResponse VerifyRange(const VerifyInput& input, const CheckpointVerifier* verifier) {
  VerifyChainResponse response;
  response.set_ok(true);
  response.set_chain_id(input.chain_id);
  response.set_from_sequence(input.from_sequence);
  response.set_to_sequence(input.from_sequence + static_cast<int64_t>(input.stored.size()) - 1);

  std::multimap<int64_t, const audit::v1::Checkpoint*> checkpoints;
  for (const audit::v1::Checkpoint& checkpoint : input.checkpoints) {
    if (verifier != nullptr && checkpoint.chain_id() == input.chain_id) {
      checkpoints.emplace(checkpoint.sequence(), &checkpoint);
    }
  }

  // Sequences as stored, decoded once, to tell a removed record from a moved one.
  std::vector<audit::v1::ChainedRecord> records(input.stored.size());
  std::vector<bool> decoded(input.stored.size(), false);
  for (size_t i = 0; i < input.stored.size(); ++i) {
    decoded[i] = input.stored[i].has_value() && records[i].ParseFromString(*input.stored[i]);
  }

  std::string previous = input.anchor_hash;
  int64_t previous_offset = input.anchor_offset;
  for (size_t i = 0; i < records.size(); ++i) {
    const int64_t expected = input.from_sequence + static_cast<int64_t>(i);
    const audit::v1::ChainedRecord& record = records[i];
    if (!input.stored[i].has_value()) {
      Fail(response, audit::v1::VERIFY_FAILURE_SEQUENCE_GAP, expected,
           absl::StrCat("record ", expected, " is missing"));
      return response;
    }
    if (!decoded[i]) {
      Fail(response, audit::v1::VERIFY_FAILURE_MALFORMED, expected,
           absl::StrCat("record ", expected, " does not decode"));
      return response;
    }
    if (record.chain_id() != input.chain_id) {
      Fail(response, audit::v1::VERIFY_FAILURE_OUT_OF_ORDER, expected,
           absl::StrCat("record at sequence ", expected, " belongs to chain ", record.chain_id()));
      return response;
    }
    if (record.sequence() != expected) {
      bool later = false;
      for (size_t j = i + 1; j < records.size() && !later; ++j) {
        later = decoded[j] && records[j].sequence() == expected;
      }
      if (later || record.sequence() < expected) {
        Fail(response, audit::v1::VERIFY_FAILURE_OUT_OF_ORDER, expected,
             absl::StrCat("position of record ", expected, " holds record ", record.sequence()));
      } else {
        Fail(response, audit::v1::VERIFY_FAILURE_SEQUENCE_GAP, expected,
             absl::StrCat("record ", expected, " is missing (next stored is ", record.sequence(),
                          ")"));
      }
      return response;
    }
    if (record.previous_hash() != previous) {
      Fail(response, audit::v1::VERIFY_FAILURE_PREVIOUS_HASH_MISMATCH, expected,
           absl::StrCat("record ", expected, " names previous hash ", record.previous_hash(),
                        ", the chain has ", previous));
      return response;
    }
    const std::string recomputed = ComputeHash(record);
    if (recomputed != record.hash()) {
      Fail(response, audit::v1::VERIFY_FAILURE_HASH_MISMATCH, expected,
           absl::StrCat("record ", expected, " hashes to ", recomputed, ", stored hash is ",
                        record.hash()));
      return response;
    }
    if (record.source_offset() <= previous_offset) {
      Fail(response, audit::v1::VERIFY_FAILURE_NOT_IN_SOURCE, expected,
           absl::StrCat("record ", expected, " claims source offset ", record.source_offset(),
                        ", not after the previous record's ", previous_offset));
      return response;
    }
    auto source = input.source_values.find(record.source_offset());
    if (source == input.source_values.end()) {
      Fail(response, audit::v1::VERIFY_FAILURE_NOT_IN_SOURCE, expected,
           absl::StrCat("record ", expected, ": the source has no record at offset ",
                        record.source_offset()));
      return response;
    }
    SourceRecord from_source{record.source_topic(), record.source_partition(),
                             record.source_offset(), source->second};
    const audit::v1::ChainedRecord rebuilt =
        BuildRecord(from_source, input.format, expected, previous);
    if (rebuilt.hash() != record.hash()) {
      Fail(response, audit::v1::VERIFY_FAILURE_NOT_IN_SOURCE, expected,
           absl::StrCat("record ", expected, " differs from the source record at offset ",
                        record.source_offset()));
      return response;
    }
    response.set_records_checked(response.records_checked() + 1);
    auto [begin, end] = checkpoints.equal_range(expected);
    for (auto it = begin; it != end; ++it) {
      const audit::v1::Checkpoint& checkpoint = *it->second;
      if (!verifier->Verify(checkpoint)) {
        Fail(response, audit::v1::VERIFY_FAILURE_BAD_SIGNATURE, expected,
             absl::StrCat("checkpoint at record ", expected, " (key ", checkpoint.key_id(),
                          ") has an invalid signature"));
        return response;
      }
      if (checkpoint.hash() != record.hash()) {
        Fail(response, audit::v1::VERIFY_FAILURE_CHECKPOINT_MISMATCH, expected,
             absl::StrCat("checkpoint at record ", expected, " signs hash ", checkpoint.hash(),
                          ", the chain has ", record.hash()));
        return response;
      }
      response.set_checkpoints_checked(response.checkpoints_checked() + 1);
      response.set_last_signed_sequence(std::max(response.last_signed_sequence(), expected));
    }
    previous = record.hash();
    previous_offset = record.source_offset();
  }
  // A signed checkpoint past the end of the stored chain: records were removed from the end.
  for (auto it = checkpoints.upper_bound(input.stored_last_sequence); it != checkpoints.end(); ++it) {
    if (!verifier->Verify(*it->second)) continue;  // not ours to trust; cannot prove a cut
    Fail(response, audit::v1::VERIFY_FAILURE_TRUNCATED, input.stored_last_sequence + 1,
         absl::StrCat("a signed checkpoint names record ", it->first, " but the log ends at ",
                      input.stored_last_sequence));
    return response;
  }
  return response;
}

}  // namespace clinical::audit

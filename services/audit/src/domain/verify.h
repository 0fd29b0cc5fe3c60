#pragma once

// Verification of a range of one chain, as a pure function over data the caller fetched:
// the stored records (Redis), the source records (Kafka) and the signed checkpoints (the
// checkpoint topic). No I/O here, so every kind of tampering is a plain unit test.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "chain.h"
#include "checkpoint.h"
#include "clinical/audit/v1/audit_service.pb.h"

namespace clinical::audit {

struct VerifyInput {
  std::string chain_id;
  // Sequence of stored[0]; >= 1.
  int64_t from_sequence = 1;
  // The hash the record at from_sequence must name as previous (kGenesisHash for 1), and
  // the source offset of the record before it (-1 for none).
  std::string anchor_hash = std::string(kGenesisHash);
  int64_t anchor_offset = -1;
  // The stored bytes of each sequence of the range in order; nullopt where nothing is
  // stored under that sequence.
  std::vector<std::optional<std::string>> stored;
  // The last sequence the stored chain holds overall (for truncation against checkpoints).
  int64_t stored_last_sequence = 0;
  // Source values by offset for the chain's partition, covering at least the offsets the
  // range names (a missing offset means the source has no such record).
  SourceFormat format = SourceFormat::kEvents;
  std::map<int64_t, std::string> source_values;
  // Every checkpoint known for the chain (any order); others' chains are ignored.
  std::vector<audit::v1::Checkpoint> checkpoints;
};

// Checks, record by record in sequence order: decodes, belongs to the chain at the
// expected sequence (else SEQUENCE_GAP when that sequence appears nowhere later,
// OUT_OF_ORDER when it does), names the previous record's hash, hashes to its stored hash,
// and equals the record rebuilt from the source value at its offset (offsets strictly
// increasing). After each record, the checkpoints at its sequence: signature valid under
// `verifier`, hash equal to the recomputed one. Finally, a valid checkpoint beyond the
// stored end means records were cut off (TRUNCATED). The first failure stops the check.
// Without a verifier (no public key configured) checkpoints are not checked.
audit::v1::VerifyChainResponse VerifyRange(const VerifyInput& input,
                                           const CheckpointVerifier* verifier);

}  // namespace clinical::audit

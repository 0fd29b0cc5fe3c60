#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "clinical/audit/v1/access.pb.h"

namespace clinical::access {

// What the server knows about one call when its record is made. Ids only: the caller's
// metadata, the peer address, and ids extracted by the method's AccessPolicy.
struct CallFacts {
  std::string method;  // "/clinical.case.v1.CaseService/GetCase"
  std::string actor_id, actor_role, tenant_id, purpose_of_use;
  std::string source_address;  // as gRPC reports the peer, e.g. "ipv4:127.0.0.1:5123"
  std::string trace_id;        // W3C trace id, or ""
  std::string resource_type;
  std::vector<std::string> resource_ids, case_ids;
  int status_code = 0;         // google.rpc.Code the call ends with
  bool marked_denied = false;  // the handler set kDeniedTrailer
  std::string peer_identity;   // SPIFFE ID of the client certificate
  std::string denial_reason;   // why authentication refused the call, or ""
  std::string claimed_subject; // an unverifiable token's claimed user, or ""
  // Authorization: the policy version enforced, how the call was allowed (the rule's
  // relationship or "emergency"), the emergency grant, whether the response was masked.
  std::string policy_version;
  std::string relationship;
  std::string emergency_grant_id;
  bool masked = false;
};

// The record for `facts`, with the id and time passed in (pure).
audit::v1::AccessRecord BuildRecord(const CallFacts& facts, std::string record_id,
                                    absl::Time occurred_at);

// Lowercase RFC 4122 version-4 UUID text from 16 random bytes (version and variant bits
// are set here).
std::string FormatUuidV4(std::array<uint8_t, 16> bytes);

// A new record id: a version-4 UUID from the operating system's CSPRNG (OpenSSL
// RAND_bytes), so ids from many processes never collide. Thread-safe.
std::string NewRecordId();

}  // namespace clinical::access

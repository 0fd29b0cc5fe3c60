#include "clinical/access/record.h"

#include <openssl/rand.h>

#include <cstdlib>

#include "clinical/access/policy.h"

namespace clinical::access {

audit::v1::AccessRecord BuildRecord(const CallFacts& facts, std::string record_id,
                                    absl::Time occurred_at) {
  audit::v1::AccessRecord record;
  record.set_record_id(std::move(record_id));
  const int64_t nanos = absl::ToUnixNanos(occurred_at);
  record.mutable_occurred_at()->set_seconds(nanos / 1'000'000'000);
  record.mutable_occurred_at()->set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
  record.set_actor_id(facts.actor_id);
  record.set_actor_role(facts.actor_role);
  record.set_tenant_id(facts.tenant_id);
  record.set_service(ServiceOf(facts.method));
  record.set_method(facts.method);
  record.set_resource_type(facts.resource_type);
  for (const auto& id : facts.resource_ids) record.add_resource_ids(id);
  for (const auto& id : facts.case_ids) record.add_case_ids(id);
  record.set_purpose_of_use(facts.purpose_of_use);
  record.set_source_address(facts.source_address);
  record.set_outcome(OutcomeFor(facts.status_code, facts.marked_denied));
  record.set_status_code(facts.status_code);
  record.set_trace_id(facts.trace_id);
  record.set_peer_identity(facts.peer_identity);
  record.set_denial_reason(facts.denial_reason);
  record.set_claimed_subject(facts.claimed_subject);
  record.set_policy_version(facts.policy_version);
  record.set_relationship(facts.relationship);
  record.set_emergency_grant_id(facts.emergency_grant_id);
  record.set_masked(facts.masked);
  return record;
}

std::string FormatUuidV4(std::array<uint8_t, 16> bytes) {
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  text.reserve(36);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text.push_back('-');
    text.push_back(kHex[bytes[i] >> 4]);
    text.push_back(kHex[bytes[i] & 0x0f]);
  }
  return text;
}

std::string NewRecordId() {
  std::array<uint8_t, 16> bytes;
  // RAND_bytes fails only when the CSPRNG cannot be seeded; an id that might collide would
  // silently merge two records downstream, so that is fatal, not recoverable.
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) std::abort();
  return FormatUuidV4(bytes);
}

}  // namespace clinical::access

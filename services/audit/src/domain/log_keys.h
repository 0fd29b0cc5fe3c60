#pragma once

// Where the audit log lives in Redis, and which index entries a record gets. Pure: the
// chainer turns these into one MULTI/EXEC with the record and the chain's head.
//
//   <root>:chains                       SET of chain ids
//   <root>:head:<chain>                 HASH seq, hash, offset, ckpt_seq, ckpt_ms
//   <root>:rec:<chain>                  HASH <sequence> -> ChainedRecord (protobuf)
//   <root>:ckpt:<chain>                 LIST of Checkpoint (protobuf), a copy of the topic's
//   <root>:ix:<tenant>:<index>          ZSET (all scores 0) of IndexMember()s, by time
//   <root>:patient:<tenant>:<key>       SET of case ids of one patient (key: HMAC of MRN)
//   <root>:aggcase:<tenant>:<type>:<id> STRING case id of another aggregate (appointment)
//
// Index members sort lexicographically by occurred time, then chain, then sequence, so a
// time range is a ZRANGE BYLEX and a page token is the last member returned.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clinical/audit/v1/audit_service.pb.h"

namespace clinical::audit {

class LogKeys {
 public:
  explicit LogKeys(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }

  std::string Chains() const { return root_ + ":chains"; }
  std::string Head(std::string_view chain) const { return Join("head", chain); }
  std::string Records(std::string_view chain) const { return Join("rec", chain); }
  std::string Checkpoints(std::string_view chain) const { return Join("ckpt", chain); }

  // Indexes of one tenant.
  std::string All(std::string_view tenant) const { return Index(tenant, "all", ""); }
  std::string ByCase(std::string_view tenant, std::string_view case_id) const {
    return Index(tenant, "case", case_id);
  }
  std::string ByActor(std::string_view tenant, std::string_view actor) const {
    return Index(tenant, "actor", actor);
  }
  std::string ByAction(std::string_view tenant, std::string_view action) const {
    return Index(tenant, "action", action);
  }
  // Access records only, by case: the access report.
  std::string AccessByCase(std::string_view tenant, std::string_view case_id) const {
    return Index(tenant, "access", case_id);
  }
  // The case an aggregate of another kind (an appointment) belongs to, once an event of
  // it named the case.
  std::string AggregateCase(std::string_view tenant, std::string_view type,
                            std::string_view id) const {
    return root_ + ":aggcase:" + std::string(tenant) + ":" + std::string(type) + ":" +
           std::string(id);
  }
  std::string PatientCases(std::string_view tenant, std::string_view patient_key) const {
    return root_ + ":patient:" + std::string(tenant) + ":" + std::string(patient_key);
  }

 private:
  std::string Join(std::string_view kind, std::string_view chain) const {
    return root_ + ":" + std::string(kind) + ":" + std::string(chain);
  }
  std::string Index(std::string_view tenant, std::string_view kind, std::string_view value) const {
    std::string key = root_ + ":ix:" + std::string(tenant) + ":" + std::string(kind);
    if (!value.empty()) key += ":" + std::string(value);
    return key;
  }
  std::string root_;
};

// "<15-digit ms>|<chain>|<12-digit sequence>". Times before 1970 clamp to 0.
std::string IndexMember(int64_t occurred_ms, std::string_view chain, int64_t sequence);
// Lower bound of every member at or after `ms`.
std::string IndexTimePrefix(int64_t ms);
struct IndexRef {
  int64_t occurred_ms = 0;
  std::string chain;
  int64_t sequence = 0;
};
std::optional<IndexRef> ParseIndexMember(std::string_view member);

int64_t ToMillis(const google::protobuf::Timestamp& time);

// The index keys `record` is added to (none for a record without a tenant). `derived_case_ids`
// are cases the record concerns without naming them (an appointment's later events).
std::vector<std::string> IndexKeysFor(const LogKeys& keys, const audit::v1::ChainedRecord& record,
                                      const std::vector<std::string>& derived_case_ids = {});

// Keyed hash of a patient's MRN within a tenant: lowercase hex HMAC-SHA256(key,
// tenant NUL mrn). Keyed, because MRNs are few enough to brute-force a plain hash.
std::string PatientKey(std::string_view hmac_key, std::string_view tenant, std::string_view mrn);

}  // namespace clinical::audit

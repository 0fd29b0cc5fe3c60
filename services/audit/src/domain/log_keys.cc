#include "log_keys.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "chain.h"

namespace clinical::audit {

std::string IndexMember(int64_t occurred_ms, std::string_view chain, int64_t sequence) {
  return absl::StrFormat("%015d|%s|%012d", std::max<int64_t>(occurred_ms, 0), std::string(chain),
                         sequence);
}

std::string IndexTimePrefix(int64_t ms) {
  return absl::StrFormat("%015d", std::max<int64_t>(ms, 0));
}

std::optional<IndexRef> ParseIndexMember(std::string_view member) {
  const size_t first = member.find('|');
  const size_t last = member.rfind('|');
  if (first == std::string_view::npos || last == first) return std::nullopt;
  IndexRef ref;
  if (!absl::SimpleAtoi(absl::string_view(member.data(), first), &ref.occurred_ms) ||
      !absl::SimpleAtoi(absl::string_view(member.data() + last + 1, member.size() - last - 1),
                        &ref.sequence)) {
    return std::nullopt;
  }
  ref.chain = std::string(member.substr(first + 1, last - first - 1));
  return ref;
}

int64_t ToMillis(const google::protobuf::Timestamp& time) {
  return time.seconds() * 1000 + time.nanos() / 1000000;
}

std::vector<std::string> IndexKeysFor(const LogKeys& keys, const audit::v1::ChainedRecord& record,
                                      const std::vector<std::string>& derived_case_ids) {
  std::vector<std::string> out;
  const std::string& tenant = record.tenant_id();
  if (tenant.empty()) return out;
  out.push_back(keys.All(tenant));
  std::vector<std::string> case_ids(record.case_ids().begin(), record.case_ids().end());
  case_ids.insert(case_ids.end(), derived_case_ids.begin(), derived_case_ids.end());
  for (const std::string& case_id : case_ids) {
    if (case_id.empty()) continue;
    out.push_back(keys.ByCase(tenant, case_id));
    if (record.kind() == audit::v1::RECORD_KIND_ACCESS) {
      out.push_back(keys.AccessByCase(tenant, case_id));
    }
  }
  if (!record.actor_id().empty()) out.push_back(keys.ByActor(tenant, record.actor_id()));
  if (!record.action().empty()) out.push_back(keys.ByAction(tenant, record.action()));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string PatientKey(std::string_view hmac_key, std::string_view tenant, std::string_view mrn) {
  std::string message(tenant);
  message.push_back('\0');
  message.append(mrn);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), hmac_key.data(), static_cast<int>(hmac_key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &size);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(mac), size));
}

}  // namespace clinical::audit

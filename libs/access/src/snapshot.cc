#include "clinical/access/snapshot.h"

#include <openssl/sha.h>

#include <map>
#include <mutex>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace clinical::access {

audit::v1::AccessPolicySnapshot SnapshotOf(const google::protobuf::ServiceDescriptor& service) {
  audit::v1::AccessPolicySnapshot snapshot;
  snapshot.set_service(service.full_name());
  std::string canonical;
  for (int i = 0; i < service.method_count(); ++i) {
    const google::protobuf::MethodDescriptor& method = *service.method(i);
    audit::v1::MethodAccessPolicy* entry = snapshot.add_methods();
    entry->set_method("/" + service.full_name() + "/" + method.name());
    if (method.options().HasExtension(common::v1::access)) {
      *entry->mutable_policy() = method.options().GetExtension(common::v1::access);
    }
    // Deterministic serialization: the same policy gives the same bytes in every process.
    std::string bytes;
    {
      google::protobuf::io::StringOutputStream stream(&bytes);
      google::protobuf::io::CodedOutputStream coded(&stream);
      coded.SetSerializationDeterministic(true);
      entry->SerializeToCodedStream(&coded);
    }
    canonical += std::to_string(bytes.size()) + ":" + bytes;
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(canonical.data()), canonical.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string version;
  for (int i = 0; i < 8; ++i) {
    version.push_back(kHex[digest[i] >> 4]);
    version.push_back(kHex[digest[i] & 0x0f]);
  }
  snapshot.set_version(version);
  return snapshot;
}

std::string PolicyVersionOf(const std::string& service) {
  static std::mutex mutex;
  static std::map<std::string, std::string> versions;
  std::lock_guard lock(mutex);
  auto it = versions.find(service);
  if (it != versions.end()) return it->second;
  const auto* descriptor = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
  std::string version = descriptor == nullptr ? "" : SnapshotOf(*descriptor).version();
  versions.emplace(service, version);
  return version;
}

}  // namespace clinical::access

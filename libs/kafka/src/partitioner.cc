#include "clinical/kafka/partitioner.h"

namespace clinical::kafka {

int32_t Murmur2(std::string_view key) {
  // MurmurHash2 (32-bit) with the seed the Java client uses.
  constexpr uint32_t kMultiplier = 0x5bd1e995;
  constexpr int kShift = 24;
  constexpr uint32_t kSeed = 0x9747b28c;
  const auto* data = reinterpret_cast<const uint8_t*>(key.data());
  const size_t length = key.size();
  uint32_t hash = kSeed ^ static_cast<uint32_t>(length);
  size_t i = 0;
  for (; i + 4 <= length; i += 4) {
    uint32_t k = static_cast<uint32_t>(data[i]) | (static_cast<uint32_t>(data[i + 1]) << 8) |
                 (static_cast<uint32_t>(data[i + 2]) << 16) |
                 (static_cast<uint32_t>(data[i + 3]) << 24);
    k *= kMultiplier;
    k ^= k >> kShift;
    k *= kMultiplier;
    hash *= kMultiplier;
    hash ^= k;
  }
  switch (length - i) {
    case 3:
      hash ^= static_cast<uint32_t>(data[i + 2]) << 16;
      [[fallthrough]];
    case 2:
      hash ^= static_cast<uint32_t>(data[i + 1]) << 8;
      [[fallthrough]];
    case 1:
      hash ^= data[i];
      hash *= kMultiplier;
      break;
    default:
      break;
  }
  hash ^= hash >> 13;
  hash *= kMultiplier;
  hash ^= hash >> 15;
  return static_cast<int32_t>(hash);
}

int32_t Murmur2Partition(std::string_view key, int32_t partition_count) {
  // Java: Utils.toPositive(murmur2(key)) % numPartitions.
  const uint32_t positive = static_cast<uint32_t>(Murmur2(key)) & 0x7fffffff;
  return static_cast<int32_t>(positive % static_cast<uint32_t>(partition_count));
}

}  // namespace clinical::kafka

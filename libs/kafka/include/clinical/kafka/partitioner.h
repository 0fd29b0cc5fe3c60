#pragma once

#include <cstdint>
#include <string_view>

namespace clinical::kafka {

// The partition the Java client's default partitioner (and librdkafka's "murmur2_random")
// picks for a non-empty key: murmur2 of the key bytes, made non-negative, modulo the
// partition count. Writers compute partitions themselves with this so that a partition's
// owner can route an aggregate without asking Kafka, and every client agrees.
int32_t Murmur2Partition(std::string_view key, int32_t partition_count);

// The 32-bit murmur2 hash as the Java client computes it (a signed int there).
int32_t Murmur2(std::string_view key);

}  // namespace clinical::kafka

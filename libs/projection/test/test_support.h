#pragma once

// Helpers for the projection's integration tests: unique topics, a transactional test
// producer that reports where each record landed, a private redis-server, reading a topic
// back, and a type-aware snapshot of every key under a prefix.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "clinical/redis/connection.h"
#include "clinical/testing/subprocess.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical::projection::testing {

// A loopback port nothing listens on right now.
int FreePort();

// Starts `redis-server` without persistence on 127.0.0.1:port and waits until it accepts.
std::unique_ptr<clinical::testing::Subprocess> StartRedisServer(int port);

// Creates a topic with a unique name on the platform's Kafka.
std::string CreateTopic(const std::string& prefix, int partitions);

redis::Connection ConnectRedis(const redis::Endpoint& endpoint);
redis::Connection ConnectPlatformRedis();

struct Landed {
  int32_t partition = -1;
  int64_t offset = -1;
};

// A transactional producer (as the event store will be): every Send is one transaction
// of the given records, committed or aborted; returns where each record landed.
class TestProducer {
 public:
  TestProducer();
  ~TestProducer();
  std::vector<Landed> Send(const std::string& topic,
                           const std::vector<std::pair<std::string, std::string>>& records,
                           bool commit = true);

 private:
  class Reports;
  std::unique_ptr<Reports> reports_;
  std::unique_ptr<RdKafka::Producer> producer_;
};

// Highest landed offset per partition.
std::map<int32_t, int64_t> LastOffsets(const std::vector<Landed>& landed);

// Whether the offsets stored under `prefix` for `topic` reached `last` on every partition.
bool OffsetsReached(redis::Connection& redis, const std::string& prefix, const std::string& topic,
                    const std::map<int32_t, int64_t>& last);

struct KafkaRecord {
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;
};

// Reads `topic` (all partitions, from the beginning, read_committed) until `done` holds for
// what was read or `timeout` passes.
std::vector<KafkaRecord> ReadTopic(const std::string& topic, int partitions,
                                   const std::function<bool(const std::vector<KafkaRecord>&)>& done,
                                   absl::Duration timeout);

// Every key under `prefix` (prefix stripped) mapped to a canonical rendering of its type and
// value: strings as bytes, hashes and sets sorted, lists in order. Comparing two snapshots
// compares the views byte for byte without depending on Redis's internal encodings (DUMP's
// output differs for equal hashes built in different orders or sizes).
std::map<std::string, std::string> Snapshot(redis::Connection& redis, const std::string& prefix);

}  // namespace clinical::projection::testing

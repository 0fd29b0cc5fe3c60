#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace clinical::relations {

// How far a follower has read the topics it follows, and what "caught up" means; the pure
// bookkeeping of KafkaFollower (kafka_follower.h), kept apart so it is unit-tested without a
// broker. Not thread-safe: the follower guards it with its mutex.
class ReadProgress {
 public:
  // A topic found with `partitions` partitions, read from offset 0 on.
  void AddTopic(const std::string& topic, int32_t partitions);
  // 0 while the topic has not been found (or is not followed).
  int32_t Partitions(const std::string& topic) const;

  // A record at `offset` was handled: the next one to read is offset + 1.
  void Record(const std::string& topic, int32_t partition, int64_t offset);
  // The reader reached the end of the partition at `offset` (librdkafka's partition EOF).
  // Under read_committed that is the last stable offset: transaction markers and aborted
  // records below it are skipped, so it is how far the partition has been read.
  void End(const std::string& topic, int32_t partition, int64_t offset);

  // The next offset to read (0 for an unknown topic or partition).
  int64_t Next(const std::string& topic, int32_t partition) const;
  // Whether every partition in `ends` (partition -> the offset it must have been read to)
  // has been read that far.
  bool Passed(const std::string& topic, const std::map<int32_t, int64_t>& ends) const;

  // Once every partition of every topic in `topics` has been found and read to its end at
  // least once: what was in the topics when the follower started has been handled.
  bool CaughtUp(const std::vector<std::string>& topics) const;

 private:
  struct Partition {
    int64_t next = 0;
    bool reached_end = false;
  };
  std::map<std::string, std::vector<Partition>> topics_;
};

// The partitions a catch-up waits for: the key's partition (the Java client's partitioner,
// as every writer of the platform uses), or every partition when the key is empty.
std::vector<int32_t> PartitionsFor(const std::string& key, int32_t partitions);

// The wait before retrying a record whose handler failed for the `failures`-th time in a row
// (1, 2, ...): 100 ms doubling, at most 5 s, so a broker outage neither spins nor stalls
// the reader for long after it ends.
absl::Duration RetryBackoff(int failures);

}  // namespace clinical::relations

#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace clinical::testing {

// Reading the test platform's topics back, as a test checks what services wrote. These are
// the test harness's own clients (the platform's administrator), not a service's.

struct TopicRecord {
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
};

// Creates `topic` with `partitions` partitions (kept forever, as the platform's topics are)
// unless it exists. Fails the test when the broker refuses.
void CreateTopic(const std::string& topic, int partitions);

// The high watermark of every partition of `topic` (0 for an empty one); empty when the
// topic does not exist. Fails the test when the broker does not answer.
std::map<int32_t, int64_t> EndOffsets(const std::string& topic);

// Every committed record of `topic` (read_committed) up to the high watermarks taken at the
// call: everything acknowledged before the call is in it. Fails the test if the topic is
// not read to those watermarks within `timeout`.
std::vector<TopicRecord> ReadTopicToEnd(const std::string& topic, absl::Duration timeout = absl::Seconds(30));

}  // namespace clinical::testing

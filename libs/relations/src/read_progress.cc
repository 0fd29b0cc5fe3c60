#include "clinical/relations/read_progress.h"

#include <algorithm>

#include "clinical/kafka/partitioner.h"

namespace clinical::relations {

void ReadProgress::AddTopic(const std::string& topic, int32_t partitions) {
  topics_[topic].assign(static_cast<size_t>(std::max(partitions, 0)), Partition{});
}

int32_t ReadProgress::Partitions(const std::string& topic) const {
  auto it = topics_.find(topic);
  return it == topics_.end() ? 0 : static_cast<int32_t>(it->second.size());
}

void ReadProgress::Record(const std::string& topic, int32_t partition, int64_t offset) {
  auto it = topics_.find(topic);
  if (it == topics_.end() || partition < 0 || partition >= static_cast<int32_t>(it->second.size())) return;
  Partition& p = it->second[static_cast<size_t>(partition)];
  p.next = std::max(p.next, offset + 1);
}

void ReadProgress::End(const std::string& topic, int32_t partition, int64_t offset) {
  auto it = topics_.find(topic);
  if (it == topics_.end() || partition < 0 || partition >= static_cast<int32_t>(it->second.size())) return;
  Partition& p = it->second[static_cast<size_t>(partition)];
  p.next = std::max(p.next, offset);
  p.reached_end = true;
}

int64_t ReadProgress::Next(const std::string& topic, int32_t partition) const {
  auto it = topics_.find(topic);
  if (it == topics_.end() || partition < 0 || partition >= static_cast<int32_t>(it->second.size())) return 0;
  return it->second[static_cast<size_t>(partition)].next;
}

bool ReadProgress::Passed(const std::string& topic, const std::map<int32_t, int64_t>& ends) const {
  for (const auto& [partition, end] : ends) {
    if (Next(topic, partition) < end) return false;
  }
  return true;
}

bool ReadProgress::CaughtUp(const std::vector<std::string>& topics) const {
  for (const std::string& topic : topics) {
    auto it = topics_.find(topic);
    if (it == topics_.end() || it->second.empty()) return false;
    for (const Partition& p : it->second) {
      if (!p.reached_end) return false;
    }
  }
  return true;
}

std::vector<int32_t> PartitionsFor(const std::string& key, int32_t partitions) {
  if (partitions <= 0) return {};
  if (!key.empty()) return {kafka::Murmur2Partition(key, partitions)};
  std::vector<int32_t> all;
  for (int32_t p = 0; p < partitions; ++p) all.push_back(p);
  return all;
}

absl::Duration RetryBackoff(int failures) {
  absl::Duration wait = absl::Milliseconds(100);
  for (int i = 1; i < failures && wait < absl::Seconds(5); ++i) wait *= 2;
  return std::min(wait, absl::Seconds(5));
}

}  // namespace clinical::relations

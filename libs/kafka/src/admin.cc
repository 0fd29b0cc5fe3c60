#include "clinical/kafka/admin.h"

#include <librdkafka/rdkafka.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clinical/kafka/status.h"

namespace clinical::kafka {
namespace {

// RAII holders for librdkafka's C admin handles; none of them escape this file.
struct KafkaDeleter {
  void operator()(rd_kafka_t* handle) const { rd_kafka_destroy(handle); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* queue) const { rd_kafka_queue_destroy(queue); }
};
struct NewTopicDeleter {
  void operator()(rd_kafka_NewTopic_t* topic) const { rd_kafka_NewTopic_destroy(topic); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* event) const { rd_kafka_event_destroy(event); }
};
struct OptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* options) const {
    rd_kafka_AdminOptions_destroy(options);
  }
};
struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* metadata) const { rd_kafka_metadata_destroy(metadata); }
};
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaDeleter>;

absl::Status StatusOf(rd_kafka_resp_err_t err, std::string_view what) {
  // The C and C++ APIs share the error numbering.
  return ErrorStatus(static_cast<RdKafka::ErrorCode>(err), what);
}

absl::StatusOr<KafkaHandle> Connect(const Cluster& cluster) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [key, value] : ClientProperties(cluster)) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), error, sizeof(error)) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      // The value is not echoed: it may be a credential.
      return absl::InvalidArgumentError(absl::StrCat("kafka property '", key, "' rejected"));
    }
  }
  // rd_kafka_new takes ownership of conf on success only.
  rd_kafka_t* handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
  if (handle == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(absl::StrCat("cannot create kafka admin client: ", error));
  }
  return KafkaHandle(handle);
}

int TimeoutMs(absl::Duration timeout) {
  return static_cast<int>(absl::ToInt64Milliseconds(timeout));
}

absl::StatusOr<int> PartitionCountWith(rd_kafka_t* handle, const std::string& topic,
                                       absl::Duration timeout) {
  const rd_kafka_metadata_t* raw = nullptr;
  std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> topic_handle(
      rd_kafka_topic_new(handle, topic.c_str(), nullptr), &rd_kafka_topic_destroy);
  const rd_kafka_resp_err_t err =
      rd_kafka_metadata(handle, 0, topic_handle.get(), &raw, TimeoutMs(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return StatusOf(err, "kafka metadata");
  std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter> metadata(raw);
  if (metadata->topic_cnt != 1 ||
      metadata->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
    return absl::NotFoundError(absl::StrCat("topic ", topic, " does not exist"));
  }
  if (metadata->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return StatusOf(metadata->topics[0].err, absl::StrCat("kafka metadata of topic ", topic));
  }
  return metadata->topics[0].partition_cnt;
}

// True when every partition of `topic` has a leader: only then do produce, fetch and
// watermark requests succeed. A freshly created topic takes a moment to get there.
bool AllPartitionsLed(rd_kafka_t* handle, const std::string& topic, absl::Duration timeout) {
  const rd_kafka_metadata_t* raw = nullptr;
  std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> topic_handle(
      rd_kafka_topic_new(handle, topic.c_str(), nullptr), &rd_kafka_topic_destroy);
  if (rd_kafka_metadata(handle, 0, topic_handle.get(), &raw, TimeoutMs(timeout)) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    return false;
  }
  std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter> metadata(raw);
  if (metadata->topic_cnt != 1 || metadata->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
      metadata->topics[0].partition_cnt == 0) {
    return false;
  }
  for (int p = 0; p < metadata->topics[0].partition_cnt; ++p) {
    const auto& partition = metadata->topics[0].partitions[p];
    if (partition.err != RD_KAFKA_RESP_ERR_NO_ERROR || partition.leader < 0) return false;
  }
  return true;
}

}  // namespace

absl::Status EnsureTopics(const Cluster& cluster, const std::vector<TopicSpec>& topics,
                          absl::Duration timeout) {
  auto handle = Connect(cluster);
  if (!handle.ok()) return handle.status();
  char error[512];

  std::vector<std::unique_ptr<rd_kafka_NewTopic_t, NewTopicDeleter>> owned;
  std::vector<rd_kafka_NewTopic_t*> raw;
  for (const TopicSpec& spec : topics) {
    std::unique_ptr<rd_kafka_NewTopic_t, NewTopicDeleter> topic(rd_kafka_NewTopic_new(
        spec.name.c_str(), spec.partitions, spec.replication_factor, error, sizeof(error)));
    if (topic == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("topic ", spec.name, ": ", error));
    }
    for (const auto& [key, value] : spec.configs) {
      if (rd_kafka_NewTopic_set_config(topic.get(), key.c_str(), value.c_str()) !=
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        return absl::InvalidArgumentError(absl::StrCat("topic config ", key, " rejected"));
      }
    }
    raw.push_back(topic.get());
    owned.push_back(std::move(topic));
  }

  std::unique_ptr<rd_kafka_AdminOptions_t, OptionsDeleter> options(
      rd_kafka_AdminOptions_new(handle->get(), RD_KAFKA_ADMIN_OP_CREATETOPICS));
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), TimeoutMs(timeout), error,
                                              sizeof(error));
  rd_kafka_AdminOptions_set_request_timeout(options.get(), TimeoutMs(timeout), error,
                                            sizeof(error));
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue(rd_kafka_queue_new(handle->get()));
  rd_kafka_CreateTopics(handle->get(), raw.data(), raw.size(), options.get(), queue.get());

  // The result arrives on the queue; the extra second covers the admin request's own limit.
  std::unique_ptr<rd_kafka_event_t, EventDeleter> event(
      rd_kafka_queue_poll(queue.get(), TimeoutMs(timeout + absl::Seconds(1))));
  if (event == nullptr) return absl::UnavailableError("kafka: topic creation timed out");
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return StatusOf(rd_kafka_event_error(event.get()), "kafka: topic creation failed");
  }
  const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event.get());
  size_t count = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &count);
  for (size_t i = 0; i < count; ++i) {
    const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    const std::string name = rd_kafka_topic_result_name(results[i]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    if (err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      return StatusOf(err, absl::StrCat("kafka: creating topic ", name));
    }
    // Exists already: acceptable only with the partition count we expect. A topic another
    // process is creating at this moment can be "already existing" before this broker's
    // metadata shows it, so NOT_FOUND is asked again until the deadline.
    for (const TopicSpec& spec : topics) {
      if (spec.name != name) continue;
      const absl::Time deadline = absl::Now() + timeout;
      auto partitions = PartitionCountWith(handle->get(), name, timeout);
      while (partitions.status().code() == absl::StatusCode::kNotFound && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(50));  // metadata propagation; bounded by the deadline
        partitions = PartitionCountWith(handle->get(), name, deadline - absl::Now());
      }
      if (!partitions.ok()) return partitions.status();
      if (*partitions != spec.partitions) {
        return absl::FailedPreconditionError(absl::StrCat(
            "topic ", name, " exists with ", *partitions, " partitions, expected ",
            spec.partitions));
      }
    }
  }
  // Created is not yet usable: wait until every partition has a leader.
  const absl::Time deadline = absl::Now() + timeout;
  for (const TopicSpec& spec : topics) {
    while (!AllPartitionsLed(handle->get(), spec.name, absl::Seconds(2))) {
      if (absl::Now() >= deadline) {
        return absl::UnavailableError(absl::StrCat("kafka: topic ", spec.name, " has no leaders yet"));
      }
      absl::SleepFor(absl::Milliseconds(50));  // metadata propagation; bounded by the deadline
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int> PartitionCount(const Cluster& cluster, const std::string& topic,
                                   absl::Duration timeout) {
  auto handle = Connect(cluster);
  if (!handle.ok()) return handle.status();
  return PartitionCountWith(handle->get(), topic, timeout);
}

}  // namespace clinical::kafka

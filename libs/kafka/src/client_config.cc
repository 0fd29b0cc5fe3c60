#include "clinical/kafka/client_config.h"

#include "absl/strings/str_cat.h"

namespace clinical::kafka {

absl::StatusOr<std::unique_ptr<RdKafka::Conf>> MakeConf(const Properties& properties,
                                                       RdKafka::EventCb* events) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string error;
  if (events != nullptr && conf->set("event_cb", events, error) != RdKafka::Conf::CONF_OK) {
    return absl::InternalError("kafka: cannot install the log bridge");
  }
  for (const auto& [key, value] : properties) {
    if (conf->set(key, value, error) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka property '", key, "' rejected"));
    }
  }
  return conf;
}

Properties ProducerDefaults(const Cluster& cluster) {
  Properties properties = ClientProperties(cluster);
  properties.insert({
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"partitioner", "murmur2_random"},
      {"linger.ms", "1"},
      {"message.timeout.ms", "30000"},
  });
  return properties;
}

Properties ConsumerDefaults(const Cluster& cluster, const std::string& group) {
  Properties properties = ClientProperties(cluster);
  properties.insert({
      {"group.id", GroupId(cluster, group)},
      {"isolation.level", "read_committed"},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"enable.partition.eof", "true"},
  });
  return properties;
}

}  // namespace clinical::kafka

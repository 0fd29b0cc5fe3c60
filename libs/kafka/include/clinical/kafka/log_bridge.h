#pragma once

#include "clinical/logging/logger.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical::kafka {

// Routes librdkafka's own log lines and client errors into the service's JSON log instead
// of raw stderr. librdkafka's texts name brokers, topics and partitions, never record
// contents, so they carry no patient data. The logger must outlive every client using it.
class LogBridge : public RdKafka::EventCb {
 public:
  explicit LogBridge(logging::Logger& logger) : logger_(logger) {}
  void event_cb(RdKafka::Event& event) override;

 private:
  logging::Logger& logger_;
};

}  // namespace clinical::kafka

#include "clinical/kafka/log_bridge.h"

namespace clinical::kafka {

void LogBridge::event_cb(RdKafka::Event& event) {
  switch (event.type()) {
    case RdKafka::Event::EVENT_LOG: {
      // syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug.
      const int severity = static_cast<int>(event.severity());
      const logging::Level level = severity <= 3   ? logging::Level::kError
                                   : severity == 4 ? logging::Level::kWarn
                                   : severity <= 6 ? logging::Level::kInfo
                                                   : logging::Level::kDebug;
      logger_.Log(level, "librdkafka", {{"facility", event.fac()}, {"detail", event.str()}});
      break;
    }
    case RdKafka::Event::EVENT_ERROR:
      // Transport errors are retried by librdkafka itself; they are warnings until they
      // turn into a failed call, which the caller reports.
      logger_.Log(event.fatal() ? logging::Level::kError : logging::Level::kWarn, "kafka client error",
                  {{"code", RdKafka::err2str(event.err())}, {"detail", event.str()}});
      break;
    default:
      break;
  }
}

}  // namespace clinical::kafka

#include "clinical/eventstore/metrics.h"

namespace clinical::eventstore {

metrics::Collector StoreMetrics(const EventStore& store, const std::string& topic) {
  return [&store, topic](metrics::Sink& sink) {
    const StoreStats stats = store.Stats();
    const metrics::Labels labels = {{"topic", topic}};
    auto with = [&](const char* outcome) {
      metrics::Labels l = labels;
      l.emplace_back("outcome", outcome);
      return l;
    };
    constexpr const char* kAppends = "clinical_eventstore_appends_total";
    constexpr const char* kAppendsHelp = "Appends answered, by outcome.";
    sink.Counter(kAppends, kAppendsHelp, with("committed"), static_cast<double>(stats.appends_committed));
    sink.Counter(kAppends, kAppendsHelp, with("duplicate"), static_cast<double>(stats.appends_duplicate));
    sink.Counter(kAppends, kAppendsHelp, with("rejected"), static_cast<double>(stats.appends_rejected));
    sink.Counter(kAppends, kAppendsHelp, with("failed"), static_cast<double>(stats.appends_failed));
    sink.Counter("clinical_eventstore_transactions_total", "Kafka transactions committed.", labels,
                 static_cast<double>(stats.transactions_committed));
    sink.Counter("clinical_eventstore_events_written_total", "Events appended to the log.", labels,
                 static_cast<double>(stats.events_written));
    sink.Counter("clinical_eventstore_recoveries_total",
                 "Producer re-initialisations after a failed transaction.", labels,
                 static_cast<double>(stats.recoveries));
    sink.Counter("clinical_eventstore_checkpoints_total", "Index checkpoints written.", labels,
                 static_cast<double>(stats.checkpoints_written));
    sink.Gauge("clinical_eventstore_owned_partitions", "Partitions this process owns.", labels,
               static_cast<double>(store.OwnedPartitions().size()));
  };
}

}  // namespace clinical::eventstore

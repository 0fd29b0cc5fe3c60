#include "clinical/projection/metrics.h"

namespace clinical::projection {

metrics::Collector ProjectionMetrics(const Projection& projection, const std::string& view) {
  return [&projection, view](metrics::Sink& sink) {
    const ProjectionStats stats = projection.Stats();
    const metrics::Labels labels = {{"view", view}};
    sink.Counter("clinical_projection_events_applied_total", "Events applied to Redis.", labels,
                 static_cast<double>(stats.events_applied));
    sink.Counter("clinical_projection_dead_letters_total",
                 "Poison events sent to the dead-letter topic.", labels,
                 static_cast<double>(stats.dead_lettered));
    sink.Counter("clinical_projection_batches_total", "Redis transactions committed.", labels,
                 static_cast<double>(stats.batches));
    sink.Counter("clinical_projection_redis_errors_total", "Failed Redis round trips.", labels,
                 static_cast<double>(stats.redis_errors));
    sink.Counter("clinical_projection_kafka_errors_total", "Kafka consumer or producer errors.",
                 labels, static_cast<double>(stats.kafka_errors));
    sink.Gauge("clinical_projection_caught_up", "1 once every partition reached its end.", labels,
               stats.caught_up ? 1 : 0);
    sink.Gauge("clinical_projection_healthy", "0 once the runtime stopped on a broken invariant.",
               labels, stats.status.ok() ? 1 : 0);
    for (const PartitionStats& partition : stats.partitions) {
      metrics::Labels l = labels;
      l.emplace_back("topic", partition.topic);
      l.emplace_back("partition", std::to_string(partition.partition));
      sink.Gauge("clinical_projection_lag_records",
                 "Records between the applied position and the partition's end (-1 unknown).", l,
                 static_cast<double>(partition.lag));
    }
  };
}

}  // namespace clinical::projection

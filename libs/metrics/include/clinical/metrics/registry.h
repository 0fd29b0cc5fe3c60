#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace clinical::metrics {

// Label pairs of one series, in the order given. Values are ids and codes only — never
// patient data (metrics leave the service boundary).
using Labels = std::vector<std::pair<std::string, std::string>>;

// A monotonically increasing count. Thread-safe, lock-free.
class Counter {
 public:
  void Increment(int64_t by = 1) { value_.fetch_add(by, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Observations counted into fixed cumulative buckets (Prometheus histogram). Thread-safe.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<int64_t> cumulative_counts;  // one per bound, then +Inf
    int64_t count = 0;
    double sum = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double> upper_bounds_;
  mutable std::mutex mutex_;
  std::vector<int64_t> counts_ ABSL_GUARDED_BY(mutex_);  // per bucket, not cumulative; +Inf last
  double sum_ ABSL_GUARDED_BY(mutex_) = 0;
};

// Seconds, from 0.5 ms to 10 s: spans a cached read up to a slow broker commit.
std::vector<double> LatencyBuckets();

// Values a collector reports at scrape time (gauges and counters owned by components such
// as the event store or a projection, which keep their own counts).
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void Gauge(std::string_view name, std::string_view help, const Labels& labels, double value) = 0;
  virtual void Counter(std::string_view name, std::string_view help, const Labels& labels, double value) = 0;
};
using Collector = std::function<void(Sink&)>;

// Registry owns a process's metrics and renders them in the Prometheus text exposition
// format (version 0.0.4). Series are created on first use and live as long as the registry;
// returned references stay valid. Thread-safe.
class Registry {
 public:
  Counter& GetCounter(std::string_view name, std::string_view help, const Labels& labels);
  Histogram& GetHistogram(std::string_view name, std::string_view help, const Labels& labels,
                          const std::vector<double>& upper_bounds = LatencyBuckets());
  // `collector` runs on every scrape and is kept for the registry's lifetime: it must be
  // thread-safe and may only refer to objects that live as long as the registry.
  void AddCollector(Collector collector);

  std::string Render() const;

 private:
  struct Family {
    std::string help;
    std::string type;  // "counter" or "histogram"
    std::map<Labels, std::unique_ptr<metrics::Counter>> counters;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Family, std::less<>> families_ ABSL_GUARDED_BY(mutex_);
  std::vector<Collector> collectors_ ABSL_GUARDED_BY(mutex_);
};

// Escapes a label value for the exposition format (backslash, double quote, newline).
std::string EscapeLabelValue(std::string_view value);

}  // namespace clinical::metrics

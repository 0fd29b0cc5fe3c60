#include "clinical/metrics/registry.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace clinical::metrics {
namespace {

std::string FormatValue(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  return absl::StrFormat("%.9g", value);
}

std::string FormatLabels(const Labels& labels, const std::string& extra_name = "",
                         const std::string& extra_value = "") {
  if (labels.empty() && extra_name.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : labels) {
    absl::StrAppend(&out, first ? "" : ",", name, "=\"", EscapeLabelValue(value), "\"");
    first = false;
  }
  if (!extra_name.empty()) {
    absl::StrAppend(&out, first ? "" : ",", extra_name, "=\"", extra_value, "\"");
  }
  return out + "}";
}

// Collects collector samples grouped by metric name, to render them like registry families.
class GroupingSink : public Sink {
 public:
  struct Group {
    std::string help, type;
    std::vector<std::pair<Labels, double>> samples;
  };
  void Gauge(std::string_view name, std::string_view help, const Labels& labels, double value) override {
    Add(name, help, "gauge", labels, value);
  }
  void Counter(std::string_view name, std::string_view help, const Labels& labels, double value) override {
    Add(name, help, "counter", labels, value);
  }
  std::map<std::string, Group> groups;

 private:
  void Add(std::string_view name, std::string_view help, const char* type, const Labels& labels,
           double value) {
    Group& group = groups[std::string(name)];
    group.help = std::string(help);
    group.type = type;
    group.samples.emplace_back(labels, value);
  }
};

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), counts_(upper_bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin());
  std::lock_guard<std::mutex> lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snapshot;
  snapshot.upper_bounds = upper_bounds_;
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t running = 0;
  for (int64_t count : counts_) {
    running += count;
    snapshot.cumulative_counts.push_back(running);
  }
  snapshot.count = running;
  snapshot.sum = sum_;
  return snapshot;
}

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Counter& Registry::GetCounter(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family& family = families_[std::string(name)];
  family.help = std::string(help);
  family.type = "counter";
  auto& slot = family.counters[labels];
  if (slot == nullptr) slot = std::make_unique<metrics::Counter>();
  return *slot;
}

Histogram& Registry::GetHistogram(std::string_view name, std::string_view help,
                                  const Labels& labels, const std::vector<double>& upper_bounds) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family& family = families_[std::string(name)];
  family.help = std::string(help);
  family.type = "histogram";
  auto& slot = family.histograms[labels];
  if (slot == nullptr) slot = std::make_unique<Histogram>(upper_bounds);
  return *slot;
}

void Registry::AddCollector(Collector collector) {
  std::lock_guard<std::mutex> lock(mutex_);
  collectors_.push_back(std::move(collector));
}

std::string Registry::Render() const {
  std::ostringstream out;
  GroupingSink collected;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [name, family] : families_) {
    out << "# HELP " << name << " " << family.help << "\n# TYPE " << name << " " << family.type << "\n";
    for (const auto& [labels, counter] : family.counters) {
      out << name << FormatLabels(labels) << " " << counter->value() << "\n";
    }
    for (const auto& [labels, histogram] : family.histograms) {
      const Histogram::Snapshot snapshot = histogram->Read();
      for (size_t i = 0; i < snapshot.upper_bounds.size(); ++i) {
        out << name << "_bucket" << FormatLabels(labels, "le", FormatValue(snapshot.upper_bounds[i]))
            << " " << snapshot.cumulative_counts[i] << "\n";
      }
      out << name << "_bucket" << FormatLabels(labels, "le", "+Inf") << " " << snapshot.count << "\n";
      out << name << "_sum" << FormatLabels(labels) << " " << FormatValue(snapshot.sum) << "\n";
      out << name << "_count" << FormatLabels(labels) << " " << snapshot.count << "\n";
    }
  }
  for (const Collector& collector : collectors_) collector(collected);
  for (const auto& [name, group] : collected.groups) {
    out << "# HELP " << name << " " << group.help << "\n# TYPE " << name << " " << group.type << "\n";
    for (const auto& [labels, value] : group.samples) {
      out << name << FormatLabels(labels) << " " << FormatValue(value) << "\n";
    }
  }
  return out.str();
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace clinical::metrics

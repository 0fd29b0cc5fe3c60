#include "bench_support.h"

#include <algorithm>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace clinical::bench {

double Run::PerSecond() const {
  return static_cast<double>(operations) / absl::ToDoubleSeconds(elapsed);
}

absl::Duration Run::Percentile(double p) {
  if (latencies.empty()) return absl::ZeroDuration();
  std::sort(latencies.begin(), latencies.end());
  const size_t index = std::min(latencies.size() - 1,
                                static_cast<size_t>(p / 100.0 * static_cast<double>(latencies.size())));
  return latencies[index];
}

std::string MachineDescription() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model = "unknown cpu";
  while (std::getline(cpuinfo, line)) {
    if (line.starts_with("model name")) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  return absl::StrCat("cpu: ", model, ", ", std::thread::hardware_concurrency(), " cores");
}

std::string Millis(absl::Duration d) {
  return absl::StrFormat("%.3f ms", absl::ToDoubleMilliseconds(d));
}

}  // namespace clinical::bench

#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace clinical::bench {

// Latency samples of one run and the figures we report from them.
struct Run {
  std::string name;
  int concurrency = 0;
  int64_t operations = 0;
  absl::Duration elapsed;
  std::vector<absl::Duration> latencies;

  double PerSecond() const;
  absl::Duration Percentile(double p);  // sorts the samples
};

// "cpu: <model>, 2 cores" from /proc/cpuinfo and nproc, printed with every result table.
std::string MachineDescription();

std::string Millis(absl::Duration d);  // "1.234 ms"

}  // namespace clinical::bench

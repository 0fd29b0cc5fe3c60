#pragma once

#include <atomic>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "clinical/metrics/registry.h"

namespace clinical::metrics {

// A minimal HTTP/1.1 server for Prometheus scrapes: GET /metrics answers the registry's
// exposition, anything else 404. One connection at a time, each closed after its answer —
// scrapes are rare and small, so this needs no HTTP library. The registry must outlive it.
class MetricsServer {
 public:
  explicit MetricsServer(const Registry& registry) : registry_(registry) {}
  ~MetricsServer() { Stop(); }
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds host:port (0 = any free port) and starts serving; returns the bound port.
  // UNAVAILABLE when the address cannot be bound.
  absl::StatusOr<int> Start(const std::string& host, int port);
  void Stop();

 private:
  void Serve();
  void Answer(int connection);

  const Registry& registry_;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace clinical::metrics

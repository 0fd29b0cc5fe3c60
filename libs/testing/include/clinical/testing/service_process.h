#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/testing/subprocess.h"
#include "grpcpp/channel.h"

namespace clinical::testing {

// How to start one of the platform's services for a test.
struct ServiceLaunch {
  // The service's folder name: "case", "scheduling", "audit", "notification", "views".
  std::string service;
  // Flags after the standard ones (--grpc-port=0 --metrics-port=0 --shutdown-grace=...).
  std::vector<std::string> args = {};
  // Environment on top of ServiceEnvironment(service) (topics, writer ids, files).
  std::map<std::string, std::string> env = {};
  absl::Duration shutdown_grace = absl::Seconds(10);
  // Bound on start-up: listening, metrics listening, then readiness SERVING.
  absl::Duration ready_timeout = absl::Seconds(90);
};

// The test platform's addresses and how to reach them, as the services read them
// (CLINICAL_KAFKA_BOOTSTRAP, CLINICAL_KAFKA_SECURITY_PROTOCOL, CLINICAL_KAFKA_CA_FILE,
// CLINICAL_REDIS_HOST, ...): no credentials.
std::map<std::string, std::string> PlatformEnvironment();

// Everything one service process of the platform needs in its environment: the platform's
// addresses plus that service's own credentials and certificates (its Kafka SCRAM user,
// and its Redis ACL user for views and audit). Every test that starts a service binary, by
// ServiceProcess or otherwise, starts it with this environment, so the tested path is the
// secure path. `service` is the folder name ("case", "views", ...).
std::map<std::string, std::string> ServiceEnvironment(const std::string& service);

// ServiceProcess is a service binary running as a real child process on free ports: Start
// returns once it listens, serves /metrics and reports readiness SERVING over gRPC health.
// The destructor kills a process that is still running (Subprocess), so a failed test
// leaves nothing behind.
class ServiceProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ServiceProcess>> Start(const ServiceLaunch& launch);

  const std::string& address() const { return address_; }  // "127.0.0.1:PORT"
  int metrics_port() const { return metrics_port_; }
  // A mutual-TLS channel (the test client's certificate) of its own per call, so that
  // closing it cannot keep the server's drain waiting (gRPC 1.51 waits out the grace for
  // idle connections). Calls on it still need a person's token (testing/identity.h).
  std::shared_ptr<grpc::Channel> NewChannel() const;
  Subprocess& process() { return *process_; }

  // SIGTERM, then the wait status once it exits (nullopt if it is still running after
  // `timeout`).
  std::optional<int> Terminate(absl::Duration timeout);

 private:
  ServiceProcess() = default;
  std::unique_ptr<Subprocess> process_;
  std::string address_;
  int metrics_port_ = 0;
};

// The port a JSON log line with "msg" == `message` announces ("listening",
// "metrics listening"), or 0.
int AnnouncedPort(const std::string& line, const std::string& message);

}  // namespace clinical::testing

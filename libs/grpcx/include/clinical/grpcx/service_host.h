#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "clinical/config/config.h"
#include "clinical/grpcx/access_control.h"
#include "clinical/grpcx/authenticator.h"
#include "clinical/grpcx/tls.h"
#include "clinical/logging/logger.h"
#include "clinical/metrics/registry.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"

namespace clinical::access {
class Recorder;
class RelationsSource;
}

namespace clinical::grpcx {

class ShutdownSignal;

struct ServerOptions {
  // Address to listen on. Loopback by default: exposing a service is a deployment decision
  // (the container images set 0.0.0.0).
  std::string host = "127.0.0.1";
  // 0 picks a free port; the bound port is logged and available from port().
  int port = 0;
  // How long in-flight calls may run after shutdown starts before they are cancelled.
  absl::Duration shutdown_grace = absl::Seconds(20);
  // The server's TLS identity and the CA its clients' certificates must chain to: every
  // connection is mutual TLS; there is no plaintext listener.
  TlsFiles tls;
};

// ServiceHost owns one gRPC server with the platform's standard equipment: mutual TLS, an
// authenticator in front of every method, access records, the standard health service
// (grpc.health.v1) and server reflection. It does not own the services it serves; they
// must outlive it.
//
// Lifecycle: AddService... -> Start -> SetServing(true) when caught up -> Shutdown.
// Shutdown flips health to NOT_SERVING first (load balancers stop routing), stops
// accepting calls, lets in-flight calls finish within the grace period, then returns.
class ServiceHost {
 public:
  ServiceHost(std::string service_name, ServerOptions options, logging::Logger& logger);
  ~ServiceHost();

  // Sync and callback-API services alike (both derive from grpc::Service in gRPC 1.51).
  void AddService(grpc::Service* service);

  // Where access records of reads go (docs/architecture.md, "Access records"). Every
  // method carrying the clinical.common.v1.access option with a resource type is recorded
  // and fails closed (UNAVAILABLE, no data) when its record is not acknowledged; without
  // a recorder such methods always fail closed. Call before Start; `recorder` must
  // outlive the host. RunService sets it from --access-topic and --kafka-bootstrap.
  void SetAccessRecorder(access::Recorder* recorder) { access_recorder_ = recorder; }

  // Who may call: every call passes `authenticator` before any handler or interceptor
  // (RunService builds the platform's Authenticator: bearer tokens for people, certificates
  // for services). Required: Start refuses to serve without one. Call before Start.
  void SetAuthenticator(std::shared_ptr<Authenticator> authenticator);
  // Where handlers learn who calls and whether they may (AccessControl: the authenticator's
  // identity, the methods' policies and the service's relations); valid once
  // SetAuthenticator ran, for as long as the host lives.
  const CallerSource& callers() const { return *access_control_; }
  // The facts the service's policies need (teams, assignments, care teams, grants); see
  // access::RelationsSource. Call after SetAuthenticator, before Start; `source` must
  // outlive the host. A service whose rules are all tenant-wide sets none.
  void SetRelations(const access::RelationsSource* source) { access_control_->SetRelations(source); }

  // Binds and starts serving. FAILED_PRECONDITION without an authenticator or with unusable
  // TLS files; UNAVAILABLE if the address cannot be bound.
  absl::Status Start();
  int port() const { return port_; }
  std::string address() const;

  // Readiness: health reports SERVING for "" (the overall status Kubernetes readiness
  // probes and load balancers ask for) only after this is called with true, e.g. once an
  // event-store owner has caught up. May be called from any thread, before or after Start.
  void SetServing(bool serving);

  // RunService marks the host ready as soon as `setup` returns. A component that catches
  // up in the background (a projection reading its topics) calls this from `setup` and
  // SetServing(true) itself once it has caught up.
  void HoldReadiness();
  bool readiness_held() const;

  // Liveness is a separate health entry, `kLivenessService`: SERVING from Start until
  // Shutdown, whatever the readiness. A process catching up is alive, not ready; a
  // liveness probe must not restart it for being behind.
  static constexpr const char* kLivenessService = "liveness";

  // The process's metrics: every RPC is counted and timed here (clinical_grpc_server_*);
  // components add their own series or scrape-time collectors.
  metrics::Registry& metrics() { return metrics_; }

  void Shutdown();

 private:
  const std::string service_name_;
  const ServerOptions options_;
  logging::Logger& logger_;
  metrics::Registry metrics_;
  access::Recorder* access_recorder_ = nullptr;
  std::shared_ptr<Authenticator> authenticator_;
  std::unique_ptr<AccessControl> access_control_;
  grpc::ServerBuilder builder_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  mutable std::mutex state_mutex_;  // guards the readiness state below and shut_down_
  bool serving_ = false;             // the readiness wanted, applied once started
  bool readiness_held_ = false;
  bool shut_down_ = false;
};

// Options every service accepts (host, port, shutdown grace, log level, metrics port,
// access topic and timeout, TLS files, token verification); a service appends its own.
std::vector<config::Option> StandardOptions(int default_port);

// The shape of every service's main(): load config (unknown flags rejected), log where it
// listens, build the service's components through `setup`, serve until SIGTERM/SIGINT,
// drain and return the process exit code (0 on a clean shutdown, 2 on bad config, 1 when
// setup or binding fails).
//
// `setup` registers services on the host and returns a callable that is run after the
// server has stopped (to flush producers, close connections), or an error status. With
// --metrics-port set, the host's metrics are served over HTTP on /metrics meanwhile.
struct ServiceSpec {
  std::string name;
  int default_port = 0;
  std::vector<config::Option> extra_options;
  std::function<absl::StatusOr<std::function<void()>>(const config::Config&, ServiceHost&,
                                                        logging::Logger&)>
      setup;
};
int RunService(const ServiceSpec& spec, ShutdownSignal& shutdown, int argc,
               const char* const* argv);

}  // namespace clinical::grpcx

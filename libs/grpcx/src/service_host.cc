#include "clinical/grpcx/service_host.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "clinical/grpcx/authenticator.h"
#include "clinical/grpcx/shutdown_signal.h"
#include "clinical/metrics/http_server.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "access_interceptor.h"
#include "clinical/access/recorder.h"
#include "clinical/kafka/cluster.h"
#include "rpc_observer.h"

namespace clinical::grpcx {

ServiceHost::ServiceHost(std::string service_name, ServerOptions options,
                         logging::Logger& logger)
    : service_name_(std::move(service_name)), options_(std::move(options)), logger_(logger) {
  // Both must be switched on before the builder is used.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  // gRPC's built-in health service carries no protobuf descriptor, so reflection clients
  // (grpcurl, Kubernetes tooling) could list it but not call it. Touching our generated
  // copy links it in and registers grpc.health.v1 in the descriptor pool reflection reads.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  const int64_t started = absl::ToUnixSeconds(absl::Now());
  metrics_.AddCollector([name = service_name_, started](metrics::Sink& sink) {
    sink.Gauge("clinical_service_start_time_seconds", "When the process started (Unix time).",
               {{"service", name}}, static_cast<double>(started));
  });
}

ServiceHost::~ServiceHost() { Shutdown(); }

void ServiceHost::SetAuthenticator(std::shared_ptr<Authenticator> authenticator) {
  authenticator_ = std::move(authenticator);
  access_control_ = std::make_unique<AccessControl>(authenticator_);
}

void ServiceHost::AddService(grpc::Service* service) {
  builder_.RegisterService(service);
}

absl::Status ServiceHost::Start() {
  if (authenticator_ == nullptr) {
    return absl::FailedPreconditionError("no authenticator: a server never serves unauthenticated calls");
  }
  if (absl::Status tls = CheckTlsFiles(options_.tls); !tls.ok()) return tls;
  // Access first: server-side send hooks run in this order, so the observer counts and
  // logs the status the access interceptor settled (UNAVAILABLE when it failed closed).
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(
      std::make_unique<internal::AccessInterceptorFactory>(access_recorder_, *access_control_, logger_));
  interceptors.push_back(std::make_unique<internal::RpcObserverFactory>(metrics_, logger_));
  builder_.experimental().SetInterceptorCreators(std::move(interceptors));
  const std::string address = absl::StrCat(options_.host, ":", options_.port);
  // gRPC enables SO_REUSEPORT by default, which would let a second process silently share
  // a busy port; a service must fail loudly instead.
  builder_.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Mutual TLS only, with the authenticator in the handshake's call path.
  std::shared_ptr<grpc::ServerCredentials> credentials = ServerCredentials(options_.tls);
  credentials->SetAuthMetadataProcessor(authenticator_);
  builder_.AddListeningPort(address, credentials, &port_);
  std::unique_ptr<grpc::Server> server = builder_.BuildAndStart();
  if (server == nullptr || port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  }
  // Alive from now on; not ready until the service says so (a fresh process reports
  // NOT_SERVING unless readiness was already granted during setup). The server is
  // published under the lock: a component may call SetServing from its own thread.
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(kLivenessService, true);
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    health->SetServingStatus("", serving_);
    server_ = std::move(server);
  }
  logger_.Info("listening", {{"address", options_.host}, {"port", port_}});
  return absl::OkStatus();
}

std::string ServiceHost::address() const { return absl::StrCat(options_.host, ":", port_); }

void ServiceHost::SetServing(bool serving) {
  std::lock_guard<std::mutex> lock(state_mutex_);
  if (shut_down_ || serving_ == serving) return;
  serving_ = serving;
  // Before Start the wish is kept; Start applies it.
  if (server_ != nullptr) server_->GetHealthCheckService()->SetServingStatus("", serving);
  logger_.Info(serving ? "serving" : "not serving");
}

void ServiceHost::HoldReadiness() {
  std::lock_guard<std::mutex> lock(state_mutex_);
  readiness_held_ = true;
}

bool ServiceHost::readiness_held() const {
  std::lock_guard<std::mutex> lock(state_mutex_);
  return readiness_held_;
}

void ServiceHost::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    if (server_ == nullptr || shut_down_) return;
    shut_down_ = true;
  }
  // Health first, so probes and balancers see NOT_SERVING while calls drain.
  server_->GetHealthCheckService()->Shutdown();
  const auto started = absl::Now();
  server_->Shutdown(absl::ToChronoTime(started + options_.shutdown_grace));
  server_->Wait();
  logger_.Info("server stopped",
               {{"drain_ms", absl::ToInt64Milliseconds(absl::Now() - started)}});
}

std::vector<config::Option> StandardOptions(int default_port) {
  using config::OptionType;
  std::vector<config::Option> options = {
      {"grpc-host", OptionType::kString, "127.0.0.1", "address the gRPC server binds"},
      {"grpc-port", OptionType::kInt, std::to_string(default_port), "gRPC port (0 = any free)"},
      {"shutdown-grace", OptionType::kDuration, "20s",
       "time in-flight calls get to finish after SIGTERM"},
      {"log-level", OptionType::kString, "info", "debug, info, warn or error"},
      {"metrics-port", OptionType::kInt, "-1",
       "HTTP port for Prometheus /metrics on the gRPC host (-1 = off, 0 = any free port)"},
      {"access-topic", OptionType::kString, "clinical.access.v1",
       "Kafka topic of access records (one per read of patient data; created if missing)"},
      {"access-timeout", OptionType::kDuration, "5s",
       "longest a read waits for its access record to be acknowledged before failing closed"},
      {"access-policy-topic", OptionType::kString, "clinical.access.policies.v1",
       "compacted Kafka topic of the access policies in force (one snapshot per service and policy "
       "version, read by the audit service's re-checks; created if missing)"},
  };
  for (auto& option : TlsOptions()) options.push_back(std::move(option));
  for (auto& option : AuthenticationOptions()) options.push_back(std::move(option));
  return options;
}

namespace {

// Whether the service talks to Kafka (declares kafka::ClusterOptions()); a service
// without Kafka serves no recorded reads.
bool DeclaresKafka(const ServiceSpec& spec) {
  for (const auto& option : spec.extra_options) {
    if (option.name == "kafka-bootstrap") return true;
  }
  return false;
}

}  // namespace

int RunService(const ServiceSpec& spec, ShutdownSignal& shutdown, int argc,
               const char* const* argv) {
  std::vector<config::Option> options = StandardOptions(spec.default_port);
  options.insert(options.end(), spec.extra_options.begin(), spec.extra_options.end());
  auto config = config::Config::Load(options, argc, argv, config::ProcessEnvironment());
  if (!config.ok()) {
    if (config.status().code() == absl::StatusCode::kFailedPrecondition) {
      std::cout << config.status().message();  // --help
      return 0;
    }
    std::cerr << spec.name << ": " << config.status().message() << "\n";
    return 2;
  }
  logging::Level level = logging::Level::kInfo;
  if (!logging::ParseLevel(config->GetString("log-level"), &level)) {
    std::cerr << spec.name << ": config key 'log-level' has an invalid value\n";
    return 2;
  }
  logging::Logger logger(spec.name, std::cerr, level);

  ServerOptions server_options;
  server_options.host = config->GetString("grpc-host");
  server_options.port = static_cast<int>(config->GetInt("grpc-port"));
  server_options.shutdown_grace = config->GetDuration("shutdown-grace");
  auto tls = TlsFilesFromConfig(*config);
  if (!tls.ok()) {
    std::cerr << spec.name << ": " << tls.status().message() << "\n";
    return 2;
  }
  server_options.tls = *tls;
  // Declared before the host: the server's interceptors use it until the host is gone.
  std::unique_ptr<access::KafkaRecorder> access_recorder;
  ServiceHost host(spec.name, server_options, logger);
  if (DeclaresKafka(spec)) {
    // The recorder writes as the service's own principal; bad Kafka settings are config
    // errors (exit 2) before anything starts.
    auto cluster = kafka::ClusterFromConfig(*config, spec.name);
    if (!cluster.ok()) {
      std::cerr << spec.name << ": " << cluster.status().message() << "\n";
      return 2;
    }
    access::KafkaRecorderOptions access_options;
    access_options.cluster = std::move(*cluster);
    access_options.topic = config->GetString("access-topic");
    access_options.policy_topic = config->GetString("access-policy-topic");
    access_options.ack_timeout = config->GetDuration("access-timeout");
    if (access_options.topic.empty() || access_options.policy_topic.empty() ||
        access_options.policy_topic == access_options.topic || access_options.ack_timeout <= absl::ZeroDuration()) {
      std::cerr << spec.name
                << ": config key 'access-topic', 'access-policy-topic' or 'access-timeout' has an invalid value\n";
      return 2;
    }
    auto recorder = access::KafkaRecorder::Create(access_options, logger, host.metrics());
    if (!recorder.ok()) {
      logger.Error("setup failed", {{"code", absl::StatusCodeToString(recorder.status().code())},
                                    {"reason", std::string(recorder.status().message())}});
      return 1;
    }
    access_recorder = std::move(*recorder);
    host.SetAccessRecorder(access_recorder.get());
    logger.Info("access records", {{"topic", access_options.topic},
                                   {"policy_topic", access_options.policy_topic},
                                   {"kafka_client", kafka::Describe(access_options.cluster)}});
  }

  // Every call is authenticated before anything else sees it; refusals are recorded.
  auto authenticator = AuthenticatorFromConfig(*config, server_options.tls, access_recorder.get(), logger,
                                               host.metrics());
  if (!authenticator.ok()) {
    logger.Error("setup failed", {{"code", absl::StatusCodeToString(authenticator.status().code())},
                                  {"reason", std::string(authenticator.status().message())}});
    return authenticator.status().code() == absl::StatusCode::kFailedPrecondition ? 2 : 1;
  }
  host.SetAuthenticator(*authenticator);

  std::function<void()> after_stop = [] {};
  if (spec.setup) {
    auto setup = spec.setup(*config, host, logger);
    if (!setup.ok()) {
      logger.Error("setup failed", {{"code", absl::StatusCodeToString(setup.status().code())},
                                    {"reason", std::string(setup.status().message())}});
      return 1;
    }
    after_stop = std::move(*setup);
  }
  metrics::MetricsServer metrics_server(host.metrics());
  if (const int64_t metrics_port = config->GetInt("metrics-port"); metrics_port >= 0) {
    auto bound = metrics_server.Start(server_options.host, static_cast<int>(metrics_port));
    if (!bound.ok()) {
      logger.Error("start failed", {{"reason", std::string(bound.status().message())}});
      return 1;
    }
    logger.Info("metrics listening", {{"address", server_options.host}, {"port", *bound}});
  }
  if (absl::Status started = host.Start(); !started.ok()) {
    logger.Error("start failed", {{"reason", std::string(started.message())}});
    return 1;
  }
  if (!host.readiness_held()) host.SetServing(true);

  shutdown.Wait();
  logger.Info("shutting down", {{"signal", shutdown.signal_number()}});
  host.Shutdown();
  after_stop();
  logger.Info("stopped");
  return 0;
}

}  // namespace clinical::grpcx

// Every service, started as a real process: it binds the port it is given, answers gRPC
// health checks, exposes server reflection (checked with grpcurl, a client from outside
// the project), rejects unknown configuration, and exits 0 on SIGTERM.
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clinical/kafka/admin.h"
#include "clinical/testing/platform.h"
#include "clinical/testing/service_process.h"
#include "clinical/testing/subprocess.h"
#include "clinical/testing/wait.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "clinical/testing/identity.h"
#include "clinical/testing/service_process.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace clinical {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using testing::Subprocess;

// Runs a shell command and returns its stdout, or nullopt on a non-zero exit.
std::optional<std::string> RunCommand(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (pipe == nullptr) return std::nullopt;
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe.get())) > 0) output.append(buffer, n);
  const int status = pclose(pipe.release());
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return output;
}

// grpcurl as deploy/local/tools.sh installs it, unless one is on PATH.
std::string Grpcurl() {
  if (RunCommand("command -v grpcurl >/dev/null").has_value()) return "grpcurl";
  const char* cache = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  return absl::StrCat(cache != nullptr ? std::string(cache) : absl::StrCat(home != nullptr ? home : "", "/.cache"),
                      "/clinical-platform/bin/grpcurl");
}

// Parses the JSON log line "listening" and returns the port, or 0.
int ListeningPort(const std::string& line) {
  auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || parsed.value("msg", "") != "listening") return 0;
  return parsed.value("port", 0);
}

class ServiceBootstrapTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::string Binary() const {
    return testing::BinaryPath(absl::StrCat("services/", GetParam(), "/", GetParam(), "_service"));
  }
  // What a service needs from the platform: its own principal (ServiceEnvironment). Writers
  // get a topic and writer id of their own, named as their ACLs allow, so that they fence
  // nobody else's partitions; the views get their own key root and source topics, which
  // the harness creates (readers never create topics).
  std::map<std::string, std::string> Env() const {
    const std::string& service = GetParam();
    const std::string unique = testing::UniqueName("bootstrap");
    std::map<std::string, std::string> env = testing::ServiceEnvironment(service);
    env[absl::StrCat("CLINICAL_", absl::AsciiStrToUpper(service), "_TOPIC")] =
        absl::StrCat("clinical.", service, ".", unique);
    env["CLINICAL_WRITER_ID"] = absl::StrCat(service, "-service.", unique);
    if (service == "views") {
      kafka::TopicSpec case_topic, scheduling_topic;
      case_topic.name = env["CLINICAL_CASE_TOPIC"] = "clinical.case." + unique;
      scheduling_topic.name = env["CLINICAL_SCHEDULING_TOPIC"] = "clinical.scheduling." + unique;
      EXPECT_TRUE(kafka::EnsureTopics(testing::Platform::Get().kafka_admin, {case_topic, scheduling_topic},
                                      absl::Seconds(30)).ok());
      env["CLINICAL_VIEW_ROOT"] = "views." + unique;
    }
    if (service == "audit") env["CLINICAL_AUDIT_KEY_ROOT"] = "audit." + unique;
    return env;
  }
  // grpcurl with the test client's certificate (every service requires mutual TLS).
  static std::string GrpcurlTls() {
    const grpcx::TlsFiles tls = testing::ClientTls();
    return absl::StrCat(Grpcurl(), " -cacert ", tls.ca_file, " -cert ", tls.cert_file, " -key ", tls.key_file);
  }
};

TEST_P(ServiceBootstrapTest, ServesHealthAndReflectionAndStopsCleanlyOnSigterm) {
  auto service = Subprocess::Start({Binary(), "--grpc-port=0", "--shutdown-grace=5s"}, Env());
  ASSERT_TRUE(service.ok()) << service.status();
  auto line = (*service)->WaitForLine([](const std::string& l) { return ListeningPort(l) > 0; },
                                      absl::Seconds(30));
  ASSERT_TRUE(line.has_value()) << "no 'listening' line; output:\n"
                                << absl::StrJoin((*service)->Lines(), "\n");
  const int port = ListeningPort(*line);
  const std::string address = absl::StrCat("127.0.0.1:", port);

  auto health = Health::NewStub(testing::SecureChannel(address));
  HealthCheckResponse response;
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
        return health->Check(&context, HealthCheckRequest(), &response).ok() &&
               response.status() == HealthCheckResponse::SERVING;
      },
      absl::Seconds(30)));

  // Reflection, through a real external client.
  auto listed = RunCommand(absl::StrCat(GrpcurlTls(), " -max-time 10 ", address, " list"));
  ASSERT_TRUE(listed.has_value()) << "grpcurl failed (is it installed? tests/run.sh installs it)";
  EXPECT_NE(listed->find("grpc.health.v1.Health"), std::string::npos) << *listed;
  EXPECT_NE(listed->find("grpc.reflection.v1alpha.ServerReflection"), std::string::npos) << *listed;
  auto checked = RunCommand(
      absl::StrCat(GrpcurlTls(), " -max-time 10 ", address, " grpc.health.v1.Health/Check"));
  ASSERT_TRUE(checked.has_value()) << "health is not callable through reflection";
  EXPECT_NE(checked->find("\"SERVING\""), std::string::npos) << *checked;
  // Plaintext gets nothing, not even reflection.
  EXPECT_FALSE(RunCommand(absl::StrCat(Grpcurl(), " -plaintext -max-time 5 ", address, " list 2>/dev/null")).has_value());

  // gRPC 1.51's Server::Shutdown waits until its deadline while a client keeps an idle
  // connection open (docs/architecture.md, "Shutdown"); closing ours shows the drain ends
  // as soon as no call is in flight. The next test covers a client that stays connected.
  health.reset();
  (*service)->Signal(SIGTERM);
  auto status = (*service)->Wait(absl::Seconds(15));
  ASSERT_TRUE(status.has_value()) << "service did not exit after SIGTERM";
  ASSERT_TRUE(WIFEXITED(*status)) << "service died from a signal";
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  auto stopped = (*service)->WaitForLine(
      [](const std::string& l) { return l.find("\"msg\":\"stopped\"") != std::string::npos; },
      absl::Seconds(5));
  EXPECT_TRUE(stopped.has_value()) << absl::StrJoin((*service)->Lines(), "\n");
}

TEST_P(ServiceBootstrapTest, ConnectedIdleClientDelaysExitNoLongerThanTheGracePeriod) {
  auto service = Subprocess::Start({Binary(), "--grpc-port=0", "--shutdown-grace=1s"}, Env());
  ASSERT_TRUE(service.ok()) << service.status();
  auto line = (*service)->WaitForLine([](const std::string& l) { return ListeningPort(l) > 0; },
                                      absl::Seconds(30));
  ASSERT_TRUE(line.has_value());
  auto health = Health::NewStub(testing::SecureChannel(absl::StrCat("127.0.0.1:", ListeningPort(*line))));
  HealthCheckResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  ASSERT_TRUE(health->Check(&context, HealthCheckRequest(), &response).ok());

  const absl::Time signalled = absl::Now();
  (*service)->Signal(SIGTERM);
  auto status = (*service)->Wait(absl::Seconds(10));
  ASSERT_TRUE(status.has_value()) << "service ignored its grace period";
  EXPECT_LT(absl::Now() - signalled, absl::Seconds(5));
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 0);
}

TEST_P(ServiceBootstrapTest, RefusesToStartWithUnknownFlag) {
  auto service = Subprocess::Start({Binary(), "--grpc-port=0", "--no-such-option=1"}, Env());
  ASSERT_TRUE(service.ok()) << service.status();
  auto status = (*service)->Wait(absl::Seconds(15));
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 2);
  EXPECT_TRUE((*service)
                  ->WaitForLine(
                      [](const std::string& l) {
                        return l.find("unknown flag --no-such-option") != std::string::npos;
                      },
                      absl::Seconds(5))
                  .has_value());
}

// There is no plaintext mode: without its certificate, key or CA a service does not start.
TEST_P(ServiceBootstrapTest, RefusesToStartWithoutItsTlsIdentity) {
  for (const char* missing : {"CLINICAL_TLS_CERT_FILE", "CLINICAL_TLS_KEY_FILE", "CLINICAL_TLS_CA_FILE"}) {
    std::map<std::string, std::string> env = Env();
    env.erase(missing);
    auto service = Subprocess::Start({Binary(), "--grpc-port=0"}, env);
    ASSERT_TRUE(service.ok()) << service.status();
    auto status = (*service)->Wait(absl::Seconds(15));
    ASSERT_TRUE(status.has_value() && WIFEXITED(*status)) << missing;
    EXPECT_EQ(WEXITSTATUS(*status), 2) << missing;
    EXPECT_TRUE((*service)
                    ->WaitForLine([](const std::string& l) { return l.find("tls-") != std::string::npos; },
                                  absl::Seconds(5))
                    .has_value())
        << missing << ": the message names the missing key";
  }
}

TEST_P(ServiceBootstrapTest, ReadsConfigurationFromEnvironment) {
  auto service = Subprocess::Start({Binary()}, {{"CLINICAL_GRPC_PORT", "0"},
                                                {"CLINICAL_LOG_LEVEL", "warn"},
                                                {"CLINICAL_SHUTDOWN_GRACE", "not-a-duration"}});
  ASSERT_TRUE(service.ok()) << service.status();
  auto status = (*service)->Wait(absl::Seconds(15));
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 2) << "a bad value from the environment must stop startup";
}

INSTANTIATE_TEST_SUITE_P(AllServices, ServiceBootstrapTest,
                         ::testing::Values("case", "scheduling", "audit", "notification", "views"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace clinical

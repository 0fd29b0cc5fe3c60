#include "clinical/testing/platform.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "clinical/config/config.h"

namespace clinical::testing {
namespace {

[[noreturn]] void Fail(const std::string& why) {
  std::fprintf(stderr, "test platform: %s\n", why.c_str());
  std::exit(1);
}

std::string RequiredEnv(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    Fail(absl::StrCat(name, " is not set; run the tests through ctest (tests/run.sh)"));
  }
  return value;
}

// A password from the platform's secrets folder (platform.sh makes one per principal).
absl::StatusOr<std::string> ReadPassword(const std::string& file) {
  auto password = config::ReadSecretFile("platform secret", file);
  if (!password.ok()) return absl::FailedPreconditionError(absl::StrCat("cannot read ", file));
  return password;
}

// The same for a principal a test names: every one of them exists, so a missing file means
// the platform is broken, and the test binary stops.
std::string Password(const std::string& file) {
  auto password = ReadPassword(file);
  if (!password.ok()) Fail(absl::StrCat(password.status().message(), " (did platform.sh start?)"));
  return *password;
}

}  // namespace

absl::StatusOr<Platform> Platform::Load(const std::string& env_file) {
  std::ifstream file(env_file);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot read ", env_file));
  std::map<std::string, std::string> values;
  std::string line;
  while (std::getline(file, line)) {
    std::string_view rest = line;
    if (!rest.starts_with("export ")) continue;
    rest.remove_prefix(7);
    auto eq = rest.find('=');
    if (eq == std::string_view::npos) continue;
    values[std::string(rest.substr(0, eq))] = std::string(rest.substr(eq + 1));
  }
  Platform platform;
  platform.kafka_libs = values["CLINICAL_KAFKA_LIBS"];
  platform.secrets_dir = values["CLINICAL_PLATFORM_SECRETS_DIR"];
  platform.redis_admin.host = values["CLINICAL_REDIS_HOST"];
  kafka::Cluster& kafka = platform.kafka_admin;
  kafka.bootstrap = values["CLINICAL_KAFKA_BOOTSTRAP"];
  kafka.security.ca_file = values["CLINICAL_KAFKA_CA_FILE"];
  kafka.security.sasl_mechanism = values["CLINICAL_KAFKA_SASL_MECHANISM"];
  kafka.security.username = values["CLINICAL_KAFKA_ADMIN_USERNAME"];
  platform.redis_admin.username = values["CLINICAL_REDIS_ADMIN_USERNAME"];
  if (kafka.bootstrap.empty() || platform.redis_admin.host.empty() || platform.secrets_dir.empty() ||
      kafka.security.username.empty() || platform.redis_admin.username.empty() ||
      values["CLINICAL_KAFKA_SECURITY_PROTOCOL"] != "SASL_SSL" ||
      !absl::SimpleAtoi(values["CLINICAL_REDIS_PORT"], &platform.redis_admin.port)) {
    return absl::FailedPreconditionError(
        absl::StrCat(env_file, " lacks the Kafka or Redis address, protocol or admin user"));
  }
  auto kafka_password = ReadPassword(values["CLINICAL_KAFKA_ADMIN_PASSWORD_FILE"]);
  if (!kafka_password.ok()) return kafka_password.status();
  kafka.security.password = *std::move(kafka_password);
  auto redis_password = ReadPassword(values["CLINICAL_REDIS_ADMIN_PASSWORD_FILE"]);
  if (!redis_password.ok()) return redis_password.status();
  platform.redis_admin.password = *std::move(redis_password);
  if (absl::Status valid = kafka::Validate(kafka); !valid.ok()) return valid;
  platform.platform_dir = values["CLINICAL_PLATFORM_DIR"];
  platform.pki_dir = values["CLINICAL_PKI_DIR"];
  platform.oidc_issuer = values["CLINICAL_OIDC_ISSUER"];
  if (platform.pki_dir.empty() || platform.oidc_issuer.empty() || platform.platform_dir.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(env_file, " lacks the certificates or the identity provider"));
  }
  platform.exports = std::move(values);
  return platform;
}

const Platform& Platform::Get() {
  static const Platform platform = [] {
    auto loaded = Load(RequiredEnv("CLINICAL_PLATFORM_ENV"));
    if (!loaded.ok()) Fail(absl::StrCat(loaded.status().message(), " (did the platform fixture start?)"));
    return *std::move(loaded);
  }();
  return platform;
}

kafka::Cluster Platform::KafkaAs(const std::string& principal) const {
  kafka::Cluster cluster = kafka_admin;
  cluster.security.username = principal;
  cluster.security.password = Password(absl::StrCat(secrets_dir, "/kafka-", principal, ".password"));
  cluster.group_prefix = absl::StrCat("clinical.", principal);
  return cluster;
}

std::map<std::string, std::string> Platform::ClientEnvironment(const std::string& principal) const {
  std::map<std::string, std::string> env = {
      {"CLINICAL_KAFKA_BOOTSTRAP", kafka_admin.bootstrap},
      {"CLINICAL_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"},
      {"CLINICAL_KAFKA_SASL_MECHANISM", kafka_admin.security.sasl_mechanism},
      {"CLINICAL_KAFKA_CA_FILE", kafka_admin.security.ca_file},
      {"CLINICAL_KAFKA_SASL_USERNAME", principal},
      {"CLINICAL_KAFKA_SASL_PASSWORD_FILE", absl::StrCat(secrets_dir, "/kafka-", principal, ".password")},
      {"CLINICAL_REDIS_HOST", redis_admin.host},
      {"CLINICAL_REDIS_PORT", std::to_string(redis_admin.port)},
  };
  if (principal == "views" || principal == "audit" || principal == "admin") {  // Redis users
    env["CLINICAL_REDIS_USERNAME"] = principal;
    env["CLINICAL_REDIS_PASSWORD_FILE"] = absl::StrCat(secrets_dir, "/redis-", principal, ".password");
  }
  return env;
}

redis::Endpoint Platform::RedisAs(const std::string& user) const {
  redis::Endpoint endpoint = redis_admin;
  endpoint.username = user;
  endpoint.password = Password(absl::StrCat(secrets_dir, "/redis-", user, ".password"));
  return endpoint;
}

std::string BinaryPath(const std::string& relative) {
  return absl::StrCat(RequiredEnv("CLINICAL_BINARY_DIR"), "/", relative);
}

std::string SourcePath(const std::string& relative) {
  return absl::StrCat(RequiredEnv("CLINICAL_SOURCE_DIR"), "/", relative);
}

std::string UniqueName(const std::string& prefix) {
  std::random_device entropy;
  std::mt19937_64 bits((static_cast<uint64_t>(entropy()) << 32) ^ entropy());
  return absl::StrCat(prefix, "-", absl::Hex(bits(), absl::kZeroPad16));
}

}  // namespace clinical::testing

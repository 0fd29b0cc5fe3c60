#include "clinical/testing/platform.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

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

Platform LoadPlatform() {
  const std::string path = RequiredEnv("CLINICAL_PLATFORM_ENV");
  std::ifstream file(path);
  if (!file) Fail(absl::StrCat("cannot read ", path, " (did the platform fixture start?)"));
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
  platform.kafka_bootstrap = values["CLINICAL_KAFKA_BOOTSTRAP"];
  platform.redis_host = values["CLINICAL_REDIS_HOST"];
  platform.kafka_libs = values["CLINICAL_KAFKA_LIBS"];
  platform.platform_dir = values["CLINICAL_PLATFORM_DIR"];
  platform.pki_dir = values["CLINICAL_PKI_DIR"];
  platform.oidc_issuer = values["CLINICAL_OIDC_ISSUER"];
  if (platform.kafka_bootstrap.empty() || platform.redis_host.empty() ||
      !absl::SimpleAtoi(values["CLINICAL_REDIS_PORT"], &platform.redis_port)) {
    Fail(absl::StrCat(path, " lacks the Kafka or Redis address"));
  }
  if (platform.pki_dir.empty() || platform.oidc_issuer.empty() || platform.platform_dir.empty()) {
    Fail(absl::StrCat(path, " lacks the certificates or the identity provider"));
  }
  platform.exports = std::move(values);
  return platform;
}

}  // namespace

const Platform& Platform::Get() {
  static const Platform platform = LoadPlatform();
  return platform;
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

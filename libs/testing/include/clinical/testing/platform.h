#pragma once

#include <map>
#include <string>

namespace clinical::testing {

// Where the Kafka and Redis of this test run are. ctest starts them (the "platform"
// fixture, tests/CMakeLists.txt) and points CLINICAL_PLATFORM_ENV at the file that
// deploy/local/platform.sh writes. A test that needs the platform and cannot find it
// fails; it never skips.
struct Platform {
  std::string kafka_bootstrap;  // "127.0.0.1:PORT"
  std::string redis_host;
  int redis_port = 0;
  std::string kafka_libs;  // folder of the broker jars (for admin tools)
  std::string platform_dir;  // the platform's state folder (secrets/, pki/)
  std::string pki_dir;       // the platform CA and every certificate (ca.crt, <name>.crt/.key)
  std::string oidc_issuer;   // the identity provider (Keycloak realm) issuer URL
  // Everything platform.env exports (CLINICAL_* = value), for the services' environment.
  std::map<std::string, std::string> exports;

  // Reads the platform from CLINICAL_PLATFORM_ENV; aborts the test binary with a clear
  // message if it is missing.
  static const Platform& Get();
};

// Absolute path of a file in the build tree (CLINICAL_BINARY_DIR) or source tree.
std::string BinaryPath(const std::string& relative);
std::string SourcePath(const std::string& relative);

// A name no other test in this or an earlier run has used ("prefix-<random hex>").
std::string UniqueName(const std::string& prefix);

}  // namespace clinical::testing

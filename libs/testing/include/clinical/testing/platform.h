#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "clinical/kafka/cluster.h"
#include "clinical/redis/connection.h"

namespace clinical::testing {

// Where the Kafka and Redis of this test run are, and the credentials a test may use. ctest
// starts them (the "platform" fixture, tests/CMakeLists.txt) and points
// CLINICAL_PLATFORM_ENV at the file that deploy/local/platform.sh writes. A test that needs
// the platform and cannot find it fails; it never skips.
//
// Two kinds of principal: services under test run as their own (ServiceEnvironment in
// service_process.h gives each its Kafka and Redis user); the test harness itself —
// creating topics, reading a topic to check results, benchmarks — uses the platform's
// admin principal, `kafka_admin` and `redis_admin`. KafkaAs/RedisAs act as a service from
// inside a test (the ACL tests).
struct Platform {
  kafka::Cluster kafka_admin;   // SASL_SSL as "admin" (a super user)
  redis::Endpoint redis_admin;  // ACL user "admin"
  std::string kafka_libs;       // folder of the broker jars (for admin tools)
  std::string secrets_dir;      // kafka-<user>.password, redis-<user>.password, Keycloak's
  std::string platform_dir;     // the platform's state folder (secrets/, pki/, keycloak/)
  std::string pki_dir;          // the platform CA and every certificate (ca.crt, <name>.crt/.key)
  std::string oidc_issuer;      // the identity provider (Keycloak realm) issuer URL
  // Everything platform.env exports (CLINICAL_* = value), for the services' environment.
  std::map<std::string, std::string> exports;

  // Reads the platform from CLINICAL_PLATFORM_ENV; aborts the test binary with a clear
  // message if it is missing.
  static const Platform& Get();
  // Reads another platform's env file (a test's private broker). NOT_FOUND if missing,
  // FAILED_PRECONDITION if incomplete.
  static absl::StatusOr<Platform> Load(const std::string& env_file);

  // The cluster as the SCRAM user `principal` ("case", "views", ...), with its password
  // from the secrets folder and the consumer-group prefix its service uses.
  kafka::Cluster KafkaAs(const std::string& principal) const;
  // Redis as the ACL user `user` ("views", "audit").
  redis::Endpoint RedisAs(const std::string& user) const;

  // The environment of a process that talks to the platform as `principal` ("case", ...,
  // or "admin" for test tools): the addresses, CA and protocol, the Kafka SCRAM user and
  // its password file, and the Redis user for those that have one (views, audit, admin).
  // Passwords stay in their files.
  std::map<std::string, std::string> ClientEnvironment(const std::string& principal) const;
};

// Absolute path of a file in the build tree (CLINICAL_BINARY_DIR) or source tree.
std::string BinaryPath(const std::string& relative);
std::string SourcePath(const std::string& relative);

// A name no other test in this or an earlier run has used ("prefix-<random hex>").
std::string UniqueName(const std::string& prefix);

}  // namespace clinical::testing

#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clinical/config/config.h"

namespace clinical::kafka {

using Properties = std::map<std::string, std::string>;

// How every connection to the brokers is secured. There is no plaintext mode: the broker's
// certificate is always verified (chain and host name), and the client always
// authenticates, either with SCRAM over TLS (SASL_SSL) or with a client certificate (SSL,
// mutual TLS). The principal the brokers see decides, through ACLs, what the client may
// read and write (docs/security.md, "Kafka and Redis").
enum class SecurityProtocol { kSaslSsl, kSsl };

struct ClientSecurity {
  SecurityProtocol protocol = SecurityProtocol::kSaslSsl;
  // SASL_SSL only. SCRAM-SHA-512 (or SCRAM-SHA-256, if the cluster stores that instead).
  std::string sasl_mechanism = "SCRAM-SHA-512";
  std::string username;
  // Read from a file once at start. Never logged, never part of an error message.
  std::string password;
  // PEM bundle the broker's certificate must chain to; empty: the system's trust store.
  std::string ca_file;
  // Client certificate and PKCS#8 key (PEM): required for SSL, optional with SASL_SSL.
  std::string cert_file;
  std::string key_file;
};

// One Kafka cluster as this process reaches it: where, and as whom.
struct Cluster {
  std::string bootstrap;  // "host:port[,host:port...]"
  ClientSecurity security;
  // Consumer group ids of this process are "<group_prefix>.<group>" (ConsumerDefaults):
  // ACLs grant each service the groups under its own prefix. Empty: ids are used as given.
  std::string group_prefix;
};

// The configuration keys of a Kafka client, declared once for every process that talks to
// Kafka (services, the audit CLI, benchmarks). Each has its environment twin
// (CLINICAL_KAFKA_SECURITY_PROTOCOL, ...):
//   kafka-bootstrap            brokers (required)
//   kafka-security-protocol    SASL_SSL (default) or SSL; PLAINTEXT is refused
//   kafka-sasl-mechanism       SCRAM-SHA-512 (default) or SCRAM-SHA-256
//   kafka-sasl-username        the service's principal (SASL_SSL)
//   kafka-sasl-password-file   file holding its password (SASL_SSL)
//   kafka-ca-file              CA bundle of the brokers' certificates (empty: system store)
//   kafka-cert-file / kafka-key-file   client certificate and key (SSL; optional otherwise)
std::vector<config::Option> ClusterOptions();

// Builds the cluster from those keys and reads the password file. `service` names the
// process's consumer-group prefix ("case" -> groups "clinical.case.*"). INVALID_ARGUMENT,
// naming the key but never its value, for a missing bootstrap, an unknown or plaintext
// protocol, missing credentials, or a file that cannot be read: a process exits with code 2.
absl::StatusOr<Cluster> ClusterFromConfig(const config::Config& config, std::string_view service);

// Checks that `security` is complete and consistent (what ClusterFromConfig checks after
// reading the files); for callers that build a Cluster in code (tests, tools).
absl::Status Validate(const Cluster& cluster);

// The librdkafka properties every client of `cluster` starts from: bootstrap.servers and
// the security settings. The only place that turns ClientSecurity into client settings;
// producers, consumers and the admin client all begin with it.
Properties ClientProperties(const Cluster& cluster);

// "<group_prefix>.<group>", or `group` when the cluster has no prefix.
std::string GroupId(const Cluster& cluster, std::string_view group);

// For logs: protocol, mechanism and principal, never the password.
std::string Describe(const Cluster& cluster);

}  // namespace clinical::kafka

#include "clinical/kafka/cluster.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace clinical::kafka {
namespace {

constexpr char kSaslSsl[] = "SASL_SSL";
constexpr char kSsl[] = "SSL";

absl::Status KeyError(std::string_view key, std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("config key '", std::string(key), "' (",
                                                 config::EnvironmentName(key), ") ",
                                                 std::string(problem)));
}

bool Readable(const std::string& path) {
  std::ifstream file(path);
  return file.good();
}

}  // namespace

std::vector<config::Option> ClusterOptions() {
  using config::OptionType;
  return {
      {"kafka-bootstrap", OptionType::kString, "", "Kafka bootstrap servers (required)"},
      {"kafka-security-protocol", OptionType::kString, kSaslSsl,
       "SASL_SSL (SCRAM over TLS) or SSL (client certificate); there is no plaintext mode"},
      {"kafka-sasl-mechanism", OptionType::kString, "SCRAM-SHA-512",
       "SCRAM-SHA-512 or SCRAM-SHA-256 (SASL_SSL)"},
      {"kafka-sasl-username", OptionType::kString, "", "this service's Kafka principal (SASL_SSL)"},
      {"kafka-sasl-password-file", OptionType::kString, "",
       "file holding the principal's password, read once at start (SASL_SSL)"},
      {"kafka-ca-file", OptionType::kString, "",
       "PEM CA bundle the brokers' certificates must chain to (empty: the system trust store)"},
      {"kafka-cert-file", OptionType::kString, "",
       "PEM client certificate (required for SSL, optional with SASL_SSL)"},
      {"kafka-key-file", OptionType::kString, "", "PEM (PKCS#8) key of the client certificate"},
  };
}

absl::Status Validate(const Cluster& cluster) {
  if (cluster.bootstrap.empty()) return KeyError("kafka-bootstrap", "is required");
  const ClientSecurity& security = cluster.security;
  if (security.cert_file.empty() != security.key_file.empty()) {
    return KeyError("kafka-cert-file", "and 'kafka-key-file' must be given together");
  }
  switch (security.protocol) {
    case SecurityProtocol::kSaslSsl:
      if (security.sasl_mechanism != "SCRAM-SHA-512" && security.sasl_mechanism != "SCRAM-SHA-256") {
        return KeyError("kafka-sasl-mechanism", "must be SCRAM-SHA-512 or SCRAM-SHA-256");
      }
      if (security.username.empty()) return KeyError("kafka-sasl-username", "is required for SASL_SSL");
      if (security.password.empty()) {
        return KeyError("kafka-sasl-password-file", "is required for SASL_SSL");
      }
      break;
    case SecurityProtocol::kSsl:
      if (security.cert_file.empty()) {
        return KeyError("kafka-cert-file", "is required for SSL (the certificate is the principal)");
      }
      if (!security.username.empty()) {
        return KeyError("kafka-sasl-username", "must be empty for SSL (the certificate is the principal)");
      }
      break;
  }
  for (const auto& [key, path] : {std::pair{"kafka-ca-file", &security.ca_file},
                                  std::pair{"kafka-cert-file", &security.cert_file},
                                  std::pair{"kafka-key-file", &security.key_file}}) {
    if (!path->empty() && !Readable(*path)) return KeyError(key, "names a file that cannot be read");
  }
  return absl::OkStatus();
}

absl::StatusOr<Cluster> ClusterFromConfig(const config::Config& config, std::string_view service) {
  Cluster cluster;
  cluster.bootstrap = config.GetString("kafka-bootstrap");
  cluster.group_prefix = absl::StrCat("clinical.", std::string(service));
  const std::string protocol = absl::AsciiStrToUpper(config.GetString("kafka-security-protocol"));
  if (protocol == kSaslSsl) {
    cluster.security.protocol = SecurityProtocol::kSaslSsl;
  } else if (protocol == kSsl) {
    cluster.security.protocol = SecurityProtocol::kSsl;
  } else {
    return KeyError("kafka-security-protocol",
                    "must be SASL_SSL or SSL: the platform has no plaintext Kafka mode");
  }
  ClientSecurity& security = cluster.security;
  security.sasl_mechanism = absl::AsciiStrToUpper(config.GetString("kafka-sasl-mechanism"));
  security.username = config.GetString("kafka-sasl-username");
  security.ca_file = config.GetString("kafka-ca-file");
  security.cert_file = config.GetString("kafka-cert-file");
  security.key_file = config.GetString("kafka-key-file");
  const std::string& password_file = config.GetString("kafka-sasl-password-file");
  if (security.protocol == SecurityProtocol::kSaslSsl && !password_file.empty()) {
    auto password = config::ReadSecretFile("kafka-sasl-password-file", password_file);
    if (!password.ok()) return password.status();
    security.password = std::move(*password);
  }
  if (absl::Status valid = Validate(cluster); !valid.ok()) return valid;
  return cluster;
}

Properties ClientProperties(const Cluster& cluster) {
  const ClientSecurity& security = cluster.security;
  Properties properties = {
      {"bootstrap.servers", cluster.bootstrap},
      // Verification is librdkafka's default; stated here so that no override can drop it.
      {"enable.ssl.certificate.verification", "true"},
      {"ssl.endpoint.identification.algorithm", "https"},
  };
  if (security.protocol == SecurityProtocol::kSaslSsl) {
    properties["security.protocol"] = "sasl_ssl";
    properties["sasl.mechanisms"] = security.sasl_mechanism;
    properties["sasl.username"] = security.username;
    properties["sasl.password"] = security.password;
  } else {
    properties["security.protocol"] = "ssl";
  }
  if (!security.ca_file.empty()) properties["ssl.ca.location"] = security.ca_file;
  if (!security.cert_file.empty()) {
    properties["ssl.certificate.location"] = security.cert_file;
    properties["ssl.key.location"] = security.key_file;
  }
  return properties;
}

std::string GroupId(const Cluster& cluster, std::string_view group) {
  if (cluster.group_prefix.empty()) return std::string(group);
  return absl::StrCat(cluster.group_prefix, ".", std::string(group));
}

std::string Describe(const Cluster& cluster) {
  const ClientSecurity& security = cluster.security;
  if (security.protocol == SecurityProtocol::kSsl) return "SSL (client certificate)";
  return absl::StrCat("SASL_SSL ", security.sasl_mechanism, " as ", security.username);
}

}  // namespace clinical::kafka

// The one place that secures Kafka clients: configuration keys, validation, and the
// librdkafka properties every producer, consumer and admin client starts from.
#include "clinical/kafka/cluster.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "clinical/kafka/client_config.h"
#include "clinical/kafka/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clinical::kafka {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A file in the test's temporary folder, removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    path_ = ::testing::TempDir() + "/kafka-cluster-test-" + std::to_string(::getpid()) + "-" +
            std::to_string(counter_++);
    std::ofstream(path_) << content;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

absl::StatusOr<Cluster> Load(std::map<std::string, std::string> env) {
  const std::vector<config::Option> options = ClusterOptions();
  const char* argv[] = {"test"};
  auto config = config::Config::Load(options, 1, argv, [env](std::string_view name) -> std::optional<std::string> {
    auto it = env.find(std::string(name));
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
  if (!config.ok()) return config.status();
  return ClusterFromConfig(*config, "case");
}

TEST(ClusterTest, DefaultIsScramOverTlsWithThePasswordReadFromItsFile) {
  TempFile password("s3cret-value\n");
  TempFile ca("-----BEGIN CERTIFICATE-----\n");
  auto cluster = Load({{"CLINICAL_KAFKA_BOOTSTRAP", "127.0.0.1:9093"},
                       {"CLINICAL_KAFKA_SASL_USERNAME", "case"},
                       {"CLINICAL_KAFKA_SASL_PASSWORD_FILE", password.path()},
                       {"CLINICAL_KAFKA_CA_FILE", ca.path()}});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  EXPECT_EQ(cluster->security.protocol, SecurityProtocol::kSaslSsl);
  EXPECT_EQ(cluster->security.password, "s3cret-value");  // the trailing newline is not part of it
  EXPECT_EQ(GroupId(*cluster, "reader"), "clinical.case.reader");

  const Properties properties = ClientProperties(*cluster);
  EXPECT_EQ(properties.at("bootstrap.servers"), "127.0.0.1:9093");
  EXPECT_EQ(properties.at("security.protocol"), "sasl_ssl");
  EXPECT_EQ(properties.at("sasl.mechanisms"), "SCRAM-SHA-512");
  EXPECT_EQ(properties.at("sasl.username"), "case");
  EXPECT_EQ(properties.at("sasl.password"), "s3cret-value");
  EXPECT_EQ(properties.at("ssl.ca.location"), ca.path());
  EXPECT_EQ(properties.at("ssl.endpoint.identification.algorithm"), "https");
  EXPECT_EQ(properties.at("enable.ssl.certificate.verification"), "true");
  EXPECT_THAT(Describe(*cluster), Not(HasSubstr("s3cret")));
}

TEST(ClusterTest, EveryClientKindStartsFromTheSameSecurity) {
  Cluster cluster;
  cluster.bootstrap = "127.0.0.1:9093";
  cluster.security.username = "views";
  cluster.security.password = "pw";
  cluster.group_prefix = "clinical.views";
  const Properties base = ClientProperties(cluster);
  for (const Properties& properties : {ProducerDefaults(cluster), ConsumerDefaults(cluster, "g")}) {
    for (const auto& [key, value] : base) EXPECT_EQ(properties.at(key), value) << key;
  }
  EXPECT_EQ(ConsumerDefaults(cluster, "projection.views.v1").at("group.id"),
            "clinical.views.projection.views.v1");
  // librdkafka knows every key and value (it is built with SASL and SSL).
  for (const Properties& properties : {ProducerDefaults(cluster), ConsumerDefaults(cluster, "g")}) {
    auto conf = MakeConf(properties);
    EXPECT_TRUE(conf.ok()) << conf.status();
  }
}

TEST(ClusterTest, PlaintextIsRefusedWithoutEchoingTheValue) {
  for (const char* protocol : {"PLAINTEXT", "plaintext", "SASL_PLAINTEXT", ""}) {
    auto cluster = Load({{"CLINICAL_KAFKA_BOOTSTRAP", "127.0.0.1:9092"},
                         {"CLINICAL_KAFKA_SECURITY_PROTOCOL", protocol}});
    ASSERT_EQ(cluster.status().code(), absl::StatusCode::kInvalidArgument) << protocol;
    EXPECT_THAT(cluster.status().message(), HasSubstr("'kafka-security-protocol'"));
    EXPECT_THAT(cluster.status().message(), HasSubstr("no plaintext"));
  }
}

TEST(ClusterTest, MissingOrUnreadableCredentialsAreConfigErrorsNamingTheKey) {
  TempFile password("pw");
  TempFile empty("\n");
  const std::string bootstrap = "127.0.0.1:9093";
  struct Case {
    std::map<std::string, std::string> env;
    std::string key;
  };
  const std::vector<Case> cases = {
      {{}, "'kafka-bootstrap'"},
      {{{"CLINICAL_KAFKA_BOOTSTRAP", bootstrap}, {"CLINICAL_KAFKA_SASL_PASSWORD_FILE", password.path()}},
       "'kafka-sasl-username'"},
      {{{"CLINICAL_KAFKA_BOOTSTRAP", bootstrap}, {"CLINICAL_KAFKA_SASL_USERNAME", "case"}},
       "'kafka-sasl-password-file'"},
      {{{"CLINICAL_KAFKA_BOOTSTRAP", bootstrap},
        {"CLINICAL_KAFKA_SASL_USERNAME", "case"},
        {"CLINICAL_KAFKA_SASL_PASSWORD_FILE", "/nonexistent/secret-path"}},
       "'kafka-sasl-password-file'"},
      {{{"CLINICAL_KAFKA_BOOTSTRAP", bootstrap},
        {"CLINICAL_KAFKA_SASL_USERNAME", "case"},
        {"CLINICAL_KAFKA_SASL_PASSWORD_FILE", empty.path()}},
       "'kafka-sasl-password-file'"},
      {{{"CLINICAL_KAFKA_BOOTSTRAP", bootstrap},
        {"CLINICAL_KAFKA_SASL_USERNAME", "case"},
        {"CLINICAL_KAFKA_SASL_PASSWORD_FILE", password.path()},
        {"CLINICAL_KAFKA_SASL_MECHANISM", "PLAIN"}},
       "'kafka-sasl-mechanism'"},
      {{{"CLINICAL_KAFKA_BOOTSTRAP", bootstrap},
        {"CLINICAL_KAFKA_SASL_USERNAME", "case"},
        {"CLINICAL_KAFKA_SASL_PASSWORD_FILE", password.path()},
        {"CLINICAL_KAFKA_CA_FILE", "/nonexistent/ca.crt"}},
       "'kafka-ca-file'"},
  };
  for (const Case& c : cases) {
    auto cluster = Load(c.env);
    ASSERT_EQ(cluster.status().code(), absl::StatusCode::kInvalidArgument) << c.key;
    EXPECT_THAT(cluster.status().message(), HasSubstr(c.key));
    EXPECT_THAT(cluster.status().message(), Not(HasSubstr("/nonexistent")));
  }
}

TEST(ClusterTest, MutualTlsUsesTheCertificateAsThePrincipal) {
  TempFile cert("cert");
  TempFile key("key");
  auto cluster = Load({{"CLINICAL_KAFKA_BOOTSTRAP", "kafka:9093"},
                       {"CLINICAL_KAFKA_SECURITY_PROTOCOL", "SSL"},
                       {"CLINICAL_KAFKA_CERT_FILE", cert.path()},
                       {"CLINICAL_KAFKA_KEY_FILE", key.path()}});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  const Properties properties = ClientProperties(*cluster);
  EXPECT_EQ(properties.at("security.protocol"), "ssl");
  EXPECT_EQ(properties.at("ssl.certificate.location"), cert.path());
  EXPECT_EQ(properties.at("ssl.key.location"), key.path());
  EXPECT_FALSE(properties.contains("sasl.username"));
  EXPECT_FALSE(properties.contains("sasl.password"));

  auto without_certificate = Load({{"CLINICAL_KAFKA_BOOTSTRAP", "kafka:9093"},
                                   {"CLINICAL_KAFKA_SECURITY_PROTOCOL", "SSL"}});
  EXPECT_THAT(without_certificate.status().message(), HasSubstr("'kafka-cert-file'"));
  auto without_key = Load({{"CLINICAL_KAFKA_BOOTSTRAP", "kafka:9093"},
                           {"CLINICAL_KAFKA_SECURITY_PROTOCOL", "SSL"},
                           {"CLINICAL_KAFKA_CERT_FILE", cert.path()}});
  EXPECT_THAT(without_key.status().message(), HasSubstr("'kafka-key-file'"));
}

TEST(ClusterTest, RefusalsAreTellingStatuses) {
  EXPECT_EQ(ErrorStatus(RdKafka::ERR__AUTHENTICATION, "metadata").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ErrorStatus(RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED, "produce").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorStatus(RdKafka::ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "init").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorStatus(RdKafka::ERR__TRANSPORT, "metadata").code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace clinical::kafka

#include "clinical/config/config.h"

#include <map>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clinical::config {
namespace {

using ::testing::HasSubstr;

const std::vector<Option> kOptions = {
    {"grpc-port", OptionType::kInt, "50051", "port"},
    {"kafka-bootstrap", OptionType::kString, "127.0.0.1:9092", "brokers"},
    {"metrics", OptionType::kBool, "false", "expose metrics"},
    {"shutdown-grace", OptionType::kDuration, "20s", "drain time"},
};

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

absl::StatusOr<Config> LoadWith(std::vector<const char*> args,
                                std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), "svc");
  return Config::Load(kOptions, static_cast<int>(args.size()), args.data(), FakeEnv(env));
}

TEST(ConfigTest, DefaultsApplyWhenNothingIsGiven) {
  auto config = LoadWith({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetInt("grpc-port"), 50051);
  EXPECT_FALSE(config->GetBool("metrics"));
  EXPECT_EQ(config->GetDuration("shutdown-grace"), absl::Seconds(20));
  EXPECT_EQ(config->SourceOf("grpc-port"), "default");
}

TEST(ConfigTest, FlagBeatsEnvironmentWhichBeatsDefault) {
  auto config = LoadWith({"--grpc-port=7000"},
                         {{"CLINICAL_GRPC_PORT", "8000"}, {"CLINICAL_KAFKA_BOOTSTRAP", "h:1"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetInt("grpc-port"), 7000);
  EXPECT_EQ(config->SourceOf("grpc-port"), "flag");
  EXPECT_EQ(config->GetString("kafka-bootstrap"), "h:1");
  EXPECT_EQ(config->SourceOf("kafka-bootstrap"), "env");
}

TEST(ConfigTest, AcceptsSpaceSeparatedFlagValues) {
  auto config = LoadWith({"--shutdown-grace", "1500ms"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetDuration("shutdown-grace"), absl::Milliseconds(1500));
}

TEST(ConfigTest, RejectsUnknownFlag) {
  auto config = LoadWith({"--grpc-prot=1"});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("unknown flag --grpc-prot"));
}

TEST(ConfigTest, RejectsBadlyTypedValueWithoutEchoingIt) {
  auto config = LoadWith({}, {{"CLINICAL_GRPC_PORT", "secret-ish"}});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("grpc-port"));
  EXPECT_THAT(config.status().message(), HasSubstr("env"));
  EXPECT_THAT(config.status().message(), ::testing::Not(HasSubstr("secret-ish")));
}

TEST(ConfigTest, RejectsFlagWithoutValueAndPositionalArguments) {
  EXPECT_EQ(LoadWith({"--grpc-port"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadWith({"stray"}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConfigTest, HelpReturnsUsageNamingEnvironmentVariables) {
  auto config = LoadWith({"--help"});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(config.status().message(), HasSubstr("CLINICAL_SHUTDOWN_GRACE"));
}

TEST(ConfigTest, EnvironmentNameIsUpperSnakeWithPrefix) {
  EXPECT_EQ(EnvironmentName("kafka-bootstrap"), "CLINICAL_KAFKA_BOOTSTRAP");
}

}  // namespace
}  // namespace clinical::config

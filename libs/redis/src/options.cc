#include "clinical/redis/options.h"

#include "absl/strings/str_cat.h"

namespace clinical::redis {

std::vector<config::Option> EndpointOptions() {
  using config::OptionType;
  return {
      {"redis-host", OptionType::kString, "127.0.0.1", "Redis host"},
      {"redis-port", OptionType::kInt, "6379", "Redis port"},
      {"redis-username", OptionType::kString, "", "this service's Redis ACL user (required)"},
      {"redis-password-file", OptionType::kString, "",
       "file holding the ACL user's password, read once at start (required)"},
  };
}

absl::StatusOr<Endpoint> EndpointFromConfig(const config::Config& config) {
  Endpoint endpoint;
  endpoint.host = config.GetString("redis-host");
  const int64_t port = config.GetInt("redis-port");
  if (endpoint.host.empty()) {
    return absl::InvalidArgumentError("config key 'redis-host' (CLINICAL_REDIS_HOST) is required");
  }
  if (port <= 0 || port > 65535) {
    return absl::InvalidArgumentError("config key 'redis-port' (CLINICAL_REDIS_PORT) must be a port number");
  }
  endpoint.port = static_cast<int>(port);
  endpoint.username = config.GetString("redis-username");
  if (endpoint.username.empty()) {
    return absl::InvalidArgumentError(
        "config key 'redis-username' (CLINICAL_REDIS_USERNAME) is required: Redis has no anonymous user");
  }
  const std::string& password_file = config.GetString("redis-password-file");
  if (password_file.empty()) {
    return absl::InvalidArgumentError(
        "config key 'redis-password-file' (CLINICAL_REDIS_PASSWORD_FILE) is required");
  }
  auto password = config::ReadSecretFile("redis-password-file", password_file);
  if (!password.ok()) return password.status();
  endpoint.password = std::move(*password);
  return endpoint;
}

}  // namespace clinical::redis

#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "clinical/config/config.h"
#include "clinical/redis/connection.h"

namespace clinical::redis {

// The configuration keys of a Redis client, declared once for every process that uses
// Redis (the views and audit services, the audit CLI):
//   redis-host, redis-port     where the server is
//   redis-username             the process's ACL user (one per service: views, audit)
//   redis-password-file        file holding that user's password, read once at start
std::vector<config::Option> EndpointOptions();

// The endpoint those keys describe, with the password read from its file. INVALID_ARGUMENT
// naming the key (never its value) for a bad port, a missing user or an unreadable file:
// the platform's Redis has no anonymous user, so a process without credentials stops at
// start (exit code 2) instead of failing on its first command.
absl::StatusOr<Endpoint> EndpointFromConfig(const config::Config& config);

}  // namespace clinical::redis

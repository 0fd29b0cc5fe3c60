#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "librdkafka/rdkafkacpp.h"

namespace clinical::kafka {

// The status for a librdkafka or broker error, so that callers can tell a refusal from an
// outage: authentication failures (bad or missing credentials) are UNAUTHENTICATED,
// authorization failures (an ACL denies the topic, group, transactional id or cluster
// operation) are PERMISSION_DENIED, everything else is UNAVAILABLE (retryable). The
// message is "<what>: <librdkafka's text>", which names brokers and resources, never data.
absl::Status ErrorStatus(RdKafka::ErrorCode code, std::string_view what);

// True for the authentication and authorization errors above.
bool IsAccessError(RdKafka::ErrorCode code);

}  // namespace clinical::kafka

#include "clinical/kafka/status.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace clinical::kafka {
namespace {

bool IsAuthentication(RdKafka::ErrorCode code) {
  return code == RdKafka::ERR__AUTHENTICATION || code == RdKafka::ERR_SASL_AUTHENTICATION_FAILED;
}

bool IsAuthorization(RdKafka::ErrorCode code) {
  return code == RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED ||
         code == RdKafka::ERR_GROUP_AUTHORIZATION_FAILED ||
         code == RdKafka::ERR_CLUSTER_AUTHORIZATION_FAILED ||
         code == RdKafka::ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
}

}  // namespace

absl::Status ErrorStatus(RdKafka::ErrorCode code, std::string_view what) {
  const std::string message = absl::StrCat(std::string(what), ": ", RdKafka::err2str(code));
  if (IsAuthentication(code)) return absl::UnauthenticatedError(message);
  if (IsAuthorization(code)) return absl::PermissionDeniedError(message);
  return absl::UnavailableError(message);
}

bool IsAccessError(RdKafka::ErrorCode code) { return IsAuthentication(code) || IsAuthorization(code); }

}  // namespace clinical::kafka

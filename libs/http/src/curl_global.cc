#include <mutex>
#include <string>

#include "curl_handles.h"

namespace clinical::http::internal {

// libcurl requires curl_global_init once per process before any other call, and it is not
// guaranteed thread-safe on every build (it sets up the TLS library and, on some platforms,
// the socket layer). Its state is process-wide by nature, so this is the one place the
// library keeps process-wide state: a once-flag and the outcome it guards, both written
// exactly once. curl_global_cleanup is deliberately never called: other threads may still
// be inside a request when static destructors run, and the OS reclaims everything at exit.
absl::Status EnsureCurlInitialized() {
  static std::once_flag once;
  static CURLcode result = CURLE_FAILED_INIT;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (result != CURLE_OK) {
    return absl::InternalError(
        std::string("libcurl initialisation failed: ") + curl_easy_strerror(result));
  }
  return absl::OkStatus();
}

}  // namespace clinical::http::internal

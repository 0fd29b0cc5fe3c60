#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace clinical::http {

// An https URL that libcurl's URL parser accepted and normalised. `spec` is what a request
// is sent to; it may carry tokens in its path or query, so it is never logged and never
// copied into a status message. `host` and `port` are safe to log (see Origin()).
struct Url {
  std::string spec;  // the full normalised URL
  std::string host;  // lower case; an IP literal in canonical form, IPv6 without brackets
  uint16_t port = 443;

  // "https://host:port", without path or query: for logs and delivery reports.
  std::string Origin() const;
};

// Parses `text` with libcurl's URL API (curl_url), never by hand, so that the URL checked
// here is the URL libcurl sends to. Accepted: scheme https, a host, no user name or
// password, no IPv6 zone id, port 1..65535 (443 when absent). Anything else is
// INVALID_ARGUMENT whose message says what is wrong without repeating the URL.
absl::StatusOr<Url> ParseHttpsUrl(std::string_view text);

}  // namespace clinical::http

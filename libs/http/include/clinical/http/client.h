#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/http/address_policy.h"
#include "clinical/http/url.h"

namespace clinical::http {

// Request header fields, sent in this order. Names are HTTP tokens; values must not hold
// CR, LF or NUL. Host, Content-Length and Transfer-Encoding are set by the client.
using Headers = std::vector<std::pair<std::string, std::string>>;

struct RequestOptions {
  // Bounds the whole request: name resolution, connect, TLS handshake and transfer.
  absl::Duration timeout = absl::Seconds(10);
  // PEM bundle of the CAs trusted for this request, and only those; empty: the system
  // bundle (Debian's /etc/ssl/certs).
  std::string ca_file;
  // Applied to every address a connection is opened to.
  AddressPolicy policy;
  // A longer response body aborts the request ("too_large").
  size_t max_response_bytes = size_t{1} << 20;
  // Addresses to use for the URL's host instead of DNS (like curl's --resolve), tried in
  // order; the policy still applies to each. Empty: DNS. For tests that need a name with
  // several addresses and for deployments that pin a receiver's addresses.
  std::vector<std::string> resolve_to;
};

struct Response {
  int status = 0;  // the HTTP status code; any code is a successful exchange
  std::string body;
};

// Why a request failed, for metrics and delivery reports: "dns", "connect", "tls",
// "timeout", "address_refused", "too_large", "http" (the exchange broke: nothing or
// garbage received), "request" (the caller's request or options are invalid) or
// "internal". Empty for OK and for a status this library did not produce.
std::string FailureReason(const absl::Status& status);

// Checks that `path` is a readable PEM file holding at least one certificate, so that a
// wrong CA option stops a service at start instead of failing every request.
absl::Status ValidateCaFile(const std::string& path);

// An HTTPS client on libcurl. Every request:
//  - speaks https only (also after a redirect; redirects are not followed: a 3xx is
//    returned as the response), HTTP/1.1, TLS 1.2 or newer;
//  - verifies the peer's certificate chain and host name; there is no option to turn
//    verification off;
//  - ignores proxy settings from the environment (a proxy would hide the address the
//    policy must judge);
//  - checks every address libcurl opens a connection to against `policy`, after name
//    resolution and at connect time (CURLOPT_OPENSOCKETFUNCTION), so that a DNS answer
//    that changes between a check and the connect (rebinding) cannot slip through; a
//    refused address is skipped and the next resolved address is tried;
//  - is bounded by `timeout`, DNS included: Debian's libcurl (libcurl4-openssl-dev 7.88)
//    is built with the threaded resolver (curl_version_info reports AsynchDNS, no c-ares),
//    so getaddrinfo runs on a helper thread and the request gives up at the deadline
//    even while the lookup is still blocked (the helper finishes on its own later);
//  - does not ask for compressed responses, so `max_response_bytes` bounds what is read.
//
// Status codes: INVALID_ARGUMENT (bad header or options), PERMISSION_DENIED (every address
// refused by the policy), DEADLINE_EXCEEDED (timeout), RESOURCE_EXHAUSTED (response too
// large), FAILED_PRECONDITION (the CA file cannot be used), UNAVAILABLE (DNS, connect, TLS
// handshake or verification, broken exchange), INTERNAL (libcurl could not be set up).
// FailureReason gives the short reason. Messages never contain the URL.
//
// Thread-safe: each request uses its own libcurl handle and nothing is shared between
// requests. A Client may be shared by any number of threads.
class Client {
 public:
  // Initialises libcurl for the process on first use (see client.cc).
  Client();

  absl::StatusOr<Response> Get(const Url& url, const Headers& headers,
                               const RequestOptions& options) const;
  absl::StatusOr<Response> Post(const Url& url, const Headers& headers, const std::string& body,
                                const RequestOptions& options) const;

 private:
  absl::Status init_;  // the outcome of the process-wide libcurl initialisation
};

}  // namespace clinical::http

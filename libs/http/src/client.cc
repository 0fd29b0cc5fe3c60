#include "clinical/http/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/socket.h>

#include <algorithm>
#include <limits>
#include <cstring>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "curl_handles.h"

namespace clinical::http {
namespace {

using internal::EasyHandle;
using internal::HeaderList;

constexpr char kReasonPayload[] = "type.clinical.dev/clinical.http.FailureReason";

absl::Status Failure(absl::StatusCode code, std::string_view reason, std::string_view detail) {
  absl::Status status(code, absl::StrCat("https request failed (", std::string(reason),
                                         "): ", std::string(detail)));
  status.SetPayload(kReasonPayload, absl::Cord(std::string(reason)));
  return status;
}

absl::Status BadRequest(std::string_view detail) {
  return Failure(absl::StatusCode::kInvalidArgument, "request", detail);
}

// What one request's callbacks share with the code that reads the outcome. Lives on the
// stack of the request; libcurl calls the callbacks on the requesting thread only.
struct Transfer {
  const AddressPolicy& policy;
  const Url& url;
  size_t max_body;
  std::string body;
  bool too_large = false;
  int refused = 0;  // addresses the policy refused
  int opened = 0;   // sockets opened to permitted addresses
};

std::optional<IpAddress> AddressOf(const curl_sockaddr& address) {
  // libcurl's storage behind `addr` is large enough for `addrlen` bytes; copy what the
  // family needs (only when addrlen says it is there) instead of casting the pointer.
  const auto* raw = reinterpret_cast<const unsigned char*>(&address.addr);
  if (address.family == AF_INET && address.addrlen >= sizeof(sockaddr_in)) {
    std::array<uint8_t, 4> bytes;
    std::memcpy(bytes.data(), raw + offsetof(sockaddr_in, sin_addr), bytes.size());
    return IpAddress::V4(bytes);
  }
  if (address.family == AF_INET6 && address.addrlen >= sizeof(sockaddr_in6)) {
    std::array<uint8_t, 16> bytes;
    std::memcpy(bytes.data(), raw + offsetof(sockaddr_in6, sin6_addr), bytes.size());
    return IpAddress::V6(bytes);
  }
  return std::nullopt;
}

// CURLOPT_OPENSOCKETFUNCTION: the last moment before a connect, with the address libcurl
// is about to use. CURL_SOCKET_BAD makes libcurl give up this address and try the next.
curl_socket_t OpenSocket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  auto* transfer = static_cast<Transfer*>(user);
  const std::optional<IpAddress> ip =
      purpose == CURLSOCKTYPE_IPCXN ? AddressOf(*address) : std::nullopt;
  if (!ip.has_value() || !transfer->policy.Permits(*ip, transfer->url.host, transfer->url.port)) {
    ++transfer->refused;
    return CURL_SOCKET_BAD;
  }
  const curl_socket_t fd =
      ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  if (fd != CURL_SOCKET_BAD) ++transfer->opened;
  return fd;
}

// CURLOPT_WRITEFUNCTION: collects the body up to the cap; returning less than offered
// aborts the transfer.
size_t Collect(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (n > transfer->max_body - transfer->body.size()) {
    transfer->too_large = true;
    return 0;
  }
  transfer->body.append(data, n);
  return n;
}

bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

absl::StatusOr<HeaderList> BuildHeaders(const Headers& headers) {
  HeaderList list;
  auto append = [&list](const std::string& line) {
    curl_slist* grown = curl_slist_append(list.get(), line.c_str());
    if (grown == nullptr) return false;
    (void)list.release();  // `grown` is the same list with one more node
    list.reset(grown);
    return true;
  };
  for (const auto& [name, value] : headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), IsTokenChar)) {
      return BadRequest("a header name is not an HTTP token");
    }
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return BadRequest("a header value holds CR, LF or NUL");
    }
    const std::string lower = absl::AsciiStrToLower(name);
    if (lower == "host" || lower == "content-length" || lower == "transfer-encoding") {
      return BadRequest("Host, Content-Length and Transfer-Encoding are set by the client");
    }
    if (!append(absl::StrCat(name, ": ", value))) {
      return Failure(absl::StatusCode::kInternal, "internal", "out of memory");
    }
  }
  // No "Expect: 100-continue" round trip: bodies are small and one timeout bounds it all.
  if (!append("Expect:")) return Failure(absl::StatusCode::kInternal, "internal", "out of memory");
  return list;
}

absl::StatusOr<HeaderList> BuildResolve(const Url& url, const std::vector<std::string>& addresses) {
  if (addresses.empty()) return HeaderList();
  const bool v6_host = url.host.find(':') != std::string::npos;
  std::string entry = absl::StrCat(v6_host ? "[" : "", url.host, v6_host ? "]" : "", ":",
                                   url.port, ":");
  for (size_t i = 0; i < addresses.size(); ++i) {
    const std::optional<IpAddress> ip = IpAddress::Parse(addresses[i]);
    if (!ip.has_value()) return BadRequest("resolve_to holds something that is not an address");
    absl::StrAppend(&entry, i == 0 ? "" : ",", ip->is_v4() ? "" : "[", ip->ToString(),
                    ip->is_v4() ? "" : "]");
  }
  HeaderList list(curl_slist_append(nullptr, entry.c_str()));
  if (list == nullptr) return Failure(absl::StatusCode::kInternal, "internal", "out of memory");
  return list;
}

absl::Status MapError(CURLcode code, const Transfer& transfer) {
  using absl::StatusCode;
  const char* text = curl_easy_strerror(code);
  if (transfer.too_large || code == CURLE_FILESIZE_EXCEEDED) {
    return Failure(StatusCode::kResourceExhausted, "too_large",
                   absl::StrCat("response body larger than ", transfer.max_body, " bytes"));
  }
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
      return Failure(StatusCode::kUnavailable, "dns", text);
    case CURLE_COULDNT_CONNECT:
      if (transfer.opened == 0 && transfer.refused > 0) {
        return Failure(StatusCode::kPermissionDenied, "address_refused",
                       absl::StrCat("every address (", transfer.refused,
                                    ") was refused by the address policy"));
      }
      return Failure(StatusCode::kUnavailable, "connect", text);
    case CURLE_OPERATION_TIMEDOUT:
      return Failure(StatusCode::kDeadlineExceeded, "timeout", text);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
      return Failure(StatusCode::kUnavailable, "tls", text);
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
      return Failure(StatusCode::kFailedPrecondition, "tls", text);
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FAILED_INIT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_NOT_BUILT_IN:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Failure(StatusCode::kInternal, "internal", text);
    default:  // send/receive errors, nothing or garbage received, a broken HTTP exchange
      return Failure(StatusCode::kUnavailable, "http", text);
  }
}

// Runs one request on a fresh easy handle. `body` is null for GET.
absl::StatusOr<Response> Perform(const Url& url, const Headers& headers, const std::string* body,
                                 const RequestOptions& options) {
  if (options.timeout <= absl::ZeroDuration()) return BadRequest("the timeout must be positive");
  auto header_list = BuildHeaders(headers);
  if (!header_list.ok()) return header_list.status();
  auto resolve = BuildResolve(url, options.resolve_to);
  if (!resolve.ok()) return resolve.status();
  EasyHandle easy(curl_easy_init());
  if (easy == nullptr) return Failure(absl::StatusCode::kInternal, "internal", "curl_easy_init");

  Transfer transfer{options.policy, url, options.max_response_bytes, {}, false, 0, 0};
  const long timeout_ms = static_cast<long>(std::clamp<int64_t>(
      absl::ToInt64Milliseconds(options.timeout), 1, std::numeric_limits<long>::max()));
  CURLcode set = CURLE_OK;
  // Values go through C varargs: every integer must be a long (or curl_off_t where asked).
  auto option = [&](CURLoption name, auto value) {
    if (set == CURLE_OK) set = curl_easy_setopt(easy.get(), name, value);
  };
  option(CURLOPT_URL, url.spec.c_str());
  option(CURLOPT_PROTOCOLS_STR, "https");
  option(CURLOPT_REDIR_PROTOCOLS_STR, "https");
  option(CURLOPT_FOLLOWLOCATION, 0L);
  option(CURLOPT_SSL_VERIFYPEER, 1L);
  option(CURLOPT_SSL_VERIFYHOST, 2L);
  option(CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  if (!options.ca_file.empty()) {
    // Only the given CAs: the default CA directory would otherwise still be consulted.
    option(CURLOPT_CAINFO, options.ca_file.c_str());
    option(CURLOPT_CAPATH, static_cast<const char*>(nullptr));
  }
  option(CURLOPT_PROXY, "");  // no proxy, also not from https_proxy / ALL_PROXY
  option(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  option(CURLOPT_NOSIGNAL, 1L);  // no SIGALRM-based timeouts in a multi-threaded process
  // A lookup still blocked in getaddrinfo at the deadline is abandoned (its thread ends on
  // its own) instead of being waited for: without this, DNS would outlast the timeout.
  option(CURLOPT_QUICK_EXIT, 1L);
  option(CURLOPT_TIMEOUT_MS, timeout_ms);
  option(CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  option(CURLOPT_OPENSOCKETFUNCTION, &OpenSocket);
  option(CURLOPT_OPENSOCKETDATA, static_cast<void*>(&transfer));
  option(CURLOPT_WRITEFUNCTION, &Collect);
  option(CURLOPT_WRITEDATA, static_cast<void*>(&transfer));
  // Refuses early when the announced length is too large; Collect caps the rest.
  const size_t off_t_max = static_cast<size_t>(std::numeric_limits<curl_off_t>::max());
  option(CURLOPT_MAXFILESIZE_LARGE,
         static_cast<curl_off_t>(std::min(options.max_response_bytes, off_t_max)));
  option(CURLOPT_USERAGENT, "clinical-http/1");
  option(CURLOPT_HTTPHEADER, header_list->get());
  if (*resolve != nullptr) option(CURLOPT_RESOLVE, resolve->get());
  if (body == nullptr) {
    option(CURLOPT_HTTPGET, 1L);
  } else {
    option(CURLOPT_POST, 1L);
    option(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    option(CURLOPT_POSTFIELDS, body->data());
  }
  if (set != CURLE_OK) {
    // A libcurl without one of these options must not send a weaker request.
    return Failure(absl::StatusCode::kInternal, "internal", curl_easy_strerror(set));
  }

  const CURLcode performed = curl_easy_perform(easy.get());
  if (performed != CURLE_OK || transfer.too_large) return MapError(performed, transfer);
  long status = 0;
  if (curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status <= 0) {
    return Failure(absl::StatusCode::kUnavailable, "http", "no HTTP status received");
  }
  return Response{static_cast<int>(status), std::move(transfer.body)};
}

absl::Status InitFailure(const absl::Status& init) {
  return Failure(absl::StatusCode::kInternal, "internal", std::string(init.message()));
}

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};

}  // namespace

std::string FailureReason(const absl::Status& status) {
  if (status.ok()) return "";
  const auto reason = status.GetPayload(kReasonPayload);  // an absl::optional here
  return reason.has_value() ? std::string(*reason) : "";
}

absl::Status ValidateCaFile(const std::string& path) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_file(path.c_str(), "r"));
  if (bio == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError("cannot read the CA file");
  }
  STACK_OF(X509_INFO)* infos = PEM_X509_INFO_read_bio(bio.get(), nullptr, nullptr, nullptr);
  int certificates = 0;
  if (infos != nullptr) {
    for (int i = 0; i < sk_X509_INFO_num(infos); ++i) {
      if (sk_X509_INFO_value(infos, i)->x509 != nullptr) ++certificates;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
  }
  ERR_clear_error();  // OpenSSL's error queue is per thread; leave it clean for libcurl
  if (certificates == 0) return absl::InvalidArgumentError("the CA file holds no PEM certificate");
  return absl::OkStatus();
}

Client::Client() : init_(internal::EnsureCurlInitialized()) {}

absl::StatusOr<Response> Client::Get(const Url& url, const Headers& headers,
                                     const RequestOptions& options) const {
  if (!init_.ok()) return InitFailure(init_);
  return Perform(url, headers, nullptr, options);
}

absl::StatusOr<Response> Client::Post(const Url& url, const Headers& headers,
                                      const std::string& body,
                                      const RequestOptions& options) const {
  if (!init_.ok()) return InitFailure(init_);
  return Perform(url, headers, &body, options);
}

}  // namespace clinical::http

#include "clinical/http/url.h"

#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "clinical/http/address_policy.h"
#include "curl_handles.h"

namespace clinical::http {
namespace {

using internal::CurlString;
using internal::UrlHandle;

// Longer URLs are not webhook or JWKS addresses; the cap keeps a hostile config small.
constexpr size_t kMaxUrlLength = 8192;

absl::Status Invalid(std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("url: ", std::string(problem)));
}

// One part of a parsed URL; nullopt when libcurl says the part is absent (or fails).
std::optional<std::string> Part(CURLU* url, CURLUPart part, unsigned int flags = 0) {
  char* raw = nullptr;
  if (curl_url_get(url, part, &raw, flags) != CURLUE_OK || raw == nullptr) return std::nullopt;
  CurlString owned(raw);
  return std::string(owned.get());
}

}  // namespace

std::string Url::Origin() const {
  const bool v6 = host.find(':') != std::string::npos;
  return absl::StrCat("https://", v6 ? "[" : "", host, v6 ? "]" : "", ":", port);
}

absl::StatusOr<Url> ParseHttpsUrl(std::string_view text) {
  if (text.size() > kMaxUrlLength) return Invalid("too long");
  // libcurl takes a C string: an embedded NUL would silently cut the URL short.
  if (text.find('\0') != std::string_view::npos) return Invalid("contains a NUL byte");
  if (absl::Status init = internal::EnsureCurlInitialized(); !init.ok()) return init;
  UrlHandle url(curl_url());
  if (url == nullptr) return absl::InternalError("url: out of memory");
  // No flags: a scheme is required (none is guessed) and only schemes libcurl supports parse.
  if (curl_url_set(url.get(), CURLUPART_URL, std::string(text).c_str(), 0) != CURLUE_OK) {
    return Invalid("not a valid URL");
  }
  const std::optional<std::string> scheme = Part(url.get(), CURLUPART_SCHEME);
  if (!scheme.has_value() || absl::AsciiStrToLower(*scheme) != "https") {
    return Invalid("scheme must be https");
  }
  if (Part(url.get(), CURLUPART_USER) || Part(url.get(), CURLUPART_PASSWORD) ||
      Part(url.get(), CURLUPART_OPTIONS)) {
    return Invalid("user name or password not allowed");
  }
  if (Part(url.get(), CURLUPART_ZONEID)) return Invalid("IPv6 zone id not allowed");
  std::optional<std::string> host = Part(url.get(), CURLUPART_HOST);
  if (!host.has_value() || host->empty() || *host == "[]") return Invalid("host required");

  Url out;
  out.host = absl::AsciiStrToLower(*host);
  if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  if (std::optional<IpAddress> literal = IpAddress::Parse(out.host)) {
    out.host = literal->ToString();
  }
  if (std::optional<std::string> port = Part(url.get(), CURLUPART_PORT)) {
    int value = 0;
    if (!absl::SimpleAtoi(*port, &value) || value < 1 || value > 65535) {
      return Invalid("port must be in 1..65535");
    }
    out.port = static_cast<uint16_t>(value);
  }
  std::optional<std::string> spec = Part(url.get(), CURLUPART_URL);
  if (!spec.has_value()) return Invalid("not a valid URL");
  out.spec = *std::move(spec);
  return out;
}

}  // namespace clinical::http

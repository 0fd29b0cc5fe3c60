#include "clinical/http/address_policy.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace clinical::http {
namespace {

bool StartsWith(const std::array<uint8_t, 16>& bytes, std::initializer_list<uint8_t> prefix) {
  return std::equal(prefix.begin(), prefix.end(), bytes.begin());
}

bool IsV4Mapped(const IpAddress& address) {
  return !address.is_v4() &&
         StartsWith(address.bytes(), {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff});
}

IpAddress TailV4(const IpAddress& address) {
  const auto& b = address.bytes();
  return IpAddress::V4({b[12], b[13], b[14], b[15]});
}

std::optional<std::string_view> RefusedV4(const std::array<uint8_t, 16>& b) {
  if (b[0] == 169 && b[1] == 254 && b[2] == 169 && b[3] == 254) return "metadata";
  if (b[0] == 100 && b[1] == 100 && b[2] == 100 && b[3] == 200) return "metadata";  // Alibaba
  if (b[0] == 0) return "unspecified";
  if (b[0] == 127) return "loopback";
  if (b[0] == 169 && b[1] == 254) return "link_local";
  if (b[0] >= 224 && b[0] <= 239) return "multicast";
  if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255) return "broadcast";
  return std::nullopt;
}

// Whether the first `prefix` bits of `a` and `b` are equal.
bool SamePrefix(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b, int prefix) {
  const int whole = prefix / 8;
  if (!std::equal(a.begin(), a.begin() + whole, b.begin())) return false;
  const int rest = prefix % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

// Canonical form of a host as AddressPolicy compares it (see Url::host).
std::string CanonicalHost(std::string host) {
  host = absl::AsciiStrToLower(host);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (std::optional<IpAddress> literal = IpAddress::Parse(host)) return literal->ToString();
  return host;
}

bool IsHostNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

absl::Status BadEntry(std::string_view entry, const std::string& problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("allow-list entry '", std::string(entry), "': ", problem));
}

absl::StatusOr<uint16_t> ParsePort(std::string_view text) {
  int port = 0;
  if (text.empty() || text.size() > 5 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      !absl::SimpleAtoi(std::string(text), &port) || port < 1 || port > 65535) {
    return absl::InvalidArgumentError("port must be in 1..65535");
  }
  return static_cast<uint16_t>(port);
}

// One non-empty, trimmed entry into `policy`.
absl::Status AddEntry(std::string_view entry, AddressPolicy& policy) {
  if (entry.find('/') != std::string_view::npos) {
    auto network = IpNetwork::Parse(entry);
    if (!network.ok()) return BadEntry(entry, std::string(network.status().message()));
    policy.AllowNetwork(*network);
    return absl::OkStatus();
  }
  std::string_view host;
  std::string_view port;
  if (entry.front() == '[') {
    const size_t close = entry.find("]:");
    if (close == std::string_view::npos) return BadEntry(entry, "expected [IPv6]:port");
    host = entry.substr(1, close - 1);
    port = entry.substr(close + 2);
    const std::optional<IpAddress> literal = IpAddress::Parse(host);
    if (!literal.has_value() || literal->is_v4()) return BadEntry(entry, "not an IPv6 address");
  } else {
    const size_t colon = entry.rfind(':');
    if (colon == std::string_view::npos) {
      return BadEntry(entry, "expected host:port or a CIDR block (address/prefix)");
    }
    host = entry.substr(0, colon);
    port = entry.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return BadEntry(entry, "an IPv6 address needs brackets: [address]:port, or a CIDR block");
    }
    if (host.find('*') != std::string_view::npos) {
      return BadEntry(entry, "wildcards are not supported");
    }
    if (host.empty() || !std::all_of(host.begin(), host.end(), IsHostNameChar)) {
      return BadEntry(entry, "not a host name or address");
    }
  }
  auto parsed_port = ParsePort(port);
  if (!parsed_port.ok()) return BadEntry(entry, std::string(parsed_port.status().message()));
  policy.AllowEndpoint(std::string(host), *parsed_port);
  return absl::OkStatus();
}

}  // namespace

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  const std::string c_text(text);  // inet_pton needs a C string
  if (c_text.find('\0') != std::string::npos) return std::nullopt;
  IpAddress out;
  if (::inet_pton(AF_INET, c_text.c_str(), out.bytes_.data()) == 1) {
    out.v4_ = true;
    return out;
  }
  if (::inet_pton(AF_INET6, c_text.c_str(), out.bytes_.data()) == 1) return out;
  return std::nullopt;
}

IpAddress IpAddress::V4(const std::array<uint8_t, 4>& bytes) {
  IpAddress out;
  out.v4_ = true;
  std::copy(bytes.begin(), bytes.end(), out.bytes_.begin());
  return out;
}

IpAddress IpAddress::V6(const std::array<uint8_t, 16>& bytes) {
  IpAddress out;
  out.bytes_ = bytes;
  return out;
}

std::optional<IpAddress> IpAddress::EmbeddedV4() const {
  if (v4_) return std::nullopt;
  if (IsV4Mapped(*this) ||                                          // ::ffff:0:0/96
      StartsWith(bytes_, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) ||   // ::/96 (compatible)
      StartsWith(bytes_, {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0})) {  // 64:ff9b::/96
    return TailV4(*this);
  }
  return std::nullopt;
}

std::string IpAddress::ToString() const {
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(v4_ ? AF_INET : AF_INET6, bytes_.data(), text, sizeof text);
  return text;
}

absl::StatusOr<IpNetwork> IpNetwork::Parse(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return absl::InvalidArgumentError("a CIDR block is address/prefix");
  }
  const std::optional<IpAddress> base = IpAddress::Parse(text.substr(0, slash));
  if (!base.has_value()) return absl::InvalidArgumentError("not an IP address before the '/'");
  const std::string_view digits = text.substr(slash + 1);
  int prefix = -1;
  const int max = base->is_v4() ? 32 : 128;
  if (digits.empty() || digits.size() > 3 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      !absl::SimpleAtoi(std::string(digits), &prefix) || prefix > max) {
    return absl::InvalidArgumentError(absl::StrCat("prefix length must be in 0..", max));
  }
  // Bits after the prefix must be zero.
  for (int bit = prefix; bit < max; ++bit) {
    if (base->bytes()[bit / 8] & (0x80 >> (bit % 8))) {
      return absl::InvalidArgumentError("address has bits set after the prefix length");
    }
  }
  return IpNetwork(*base, prefix);
}

bool IpNetwork::Contains(const IpAddress& address) const {
  if (base_.is_v4() && IsV4Mapped(address)) return Contains(TailV4(address));
  if (base_.is_v4() != address.is_v4()) return false;
  return SamePrefix(base_.bytes(), address.bytes(), prefix_);
}

std::string IpNetwork::ToString() const { return absl::StrCat(base_.ToString(), "/", prefix_); }

std::optional<std::string_view> RefusedRange(const IpAddress& address) {
  const auto& b = address.bytes();
  if (address.is_v4()) return RefusedV4(b);
  if (address == IpAddress::V6({0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54})) {
    return "metadata";  // AWS IMDS over IPv6, fd00:ec2::254
  }
  if (address == IpAddress::V6({})) return "unspecified";
  if (address == IpAddress::V6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})) return "loopback";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return "link_local";
  if (b[0] == 0xff) return "multicast";
  if (std::optional<IpAddress> v4 = address.EmbeddedV4()) return RefusedV4(v4->bytes());
  return std::nullopt;
}

AddressPolicy AddressPolicy::Unrestricted() {
  AddressPolicy policy;
  for (const char* everything : {"0.0.0.0/0", "::/0"}) policy.AllowNetwork(*IpNetwork::Parse(everything));
  return policy;
}

void AddressPolicy::AllowNetwork(IpNetwork network) { networks_.push_back(std::move(network)); }

void AddressPolicy::AllowEndpoint(std::string host, uint16_t port) {
  endpoints_.push_back(Endpoint{CanonicalHost(std::move(host)), port});
}

bool AddressPolicy::Permits(const IpAddress& address, std::string_view host,
                            uint16_t port) const {
  for (const Endpoint& endpoint : endpoints_) {
    if (endpoint.port == port && endpoint.host == host) return true;
  }
  for (const IpNetwork& network : networks_) {
    if (network.Contains(address)) return true;
  }
  return !RefusedRange(address).has_value();
}

absl::StatusOr<AddressPolicy> ParseAllowList(std::string_view comma_separated) {
  AddressPolicy policy;
  size_t start = 0;
  while (start <= comma_separated.size()) {
    size_t end = comma_separated.find(',', start);
    if (end == std::string_view::npos) end = comma_separated.size();
    std::string_view entry = comma_separated.substr(start, end - start);
    while (!entry.empty() && absl::ascii_isspace(static_cast<unsigned char>(entry.front()))) {
      entry.remove_prefix(1);
    }
    while (!entry.empty() && absl::ascii_isspace(static_cast<unsigned char>(entry.back()))) {
      entry.remove_suffix(1);
    }
    if (!entry.empty()) {
      if (absl::Status added = AddEntry(entry, policy); !added.ok()) return added;
    }
    start = end + 1;
  }
  return policy;
}

}  // namespace clinical::http

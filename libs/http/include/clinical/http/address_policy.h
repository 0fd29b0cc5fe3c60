#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace clinical::http {

// An IPv4 or IPv6 address (bytes in network order). A value type without I/O.
class IpAddress {
 public:
  // Dotted-quad IPv4 or RFC 4291 IPv6 text, without brackets, port or zone id.
  static std::optional<IpAddress> Parse(std::string_view text);
  static IpAddress V4(const std::array<uint8_t, 4>& bytes);
  static IpAddress V6(const std::array<uint8_t, 16>& bytes);

  bool is_v4() const { return v4_; }
  // 4 significant bytes for IPv4, 16 for IPv6.
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }
  // The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d)
  // or NAT64 well-known-prefix (64:ff9b::a.b.c.d) IPv6 address; nullopt otherwise.
  std::optional<IpAddress> EmbeddedV4() const;
  // Canonical text (inet_ntop).
  std::string ToString() const;

  friend bool operator==(const IpAddress&, const IpAddress&) = default;

 private:
  IpAddress() = default;
  bool v4_ = false;
  std::array<uint8_t, 16> bytes_{};
};

// A CIDR block, e.g. 10.20.0.0/16 or fd12:3456::/32.
class IpNetwork {
 public:
  // "address/prefix". INVALID_ARGUMENT for a malformed block or one with bits set after the
  // prefix (10.0.0.1/8 is more likely a typo than a wish to allow 10/8).
  static absl::StatusOr<IpNetwork> Parse(std::string_view text);

  // Same family only; an IPv4 block also contains the IPv4-mapped IPv6 form of its
  // addresses (the same destination on a dual-stack socket).
  bool Contains(const IpAddress& address) const;
  std::string ToString() const;

 private:
  IpNetwork(IpAddress base, int prefix) : base_(base), prefix_(prefix) {}
  IpAddress base_;
  int prefix_;
};

// Why the default policy refuses `address`, or nullopt if it does not. One of "loopback"
// (127.0.0.0/8, ::1), "link_local" (169.254.0.0/16, fe80::/10), "metadata" (cloud
// instance metadata: 169.254.169.254, fd00:ec2::254, 100.100.100.200), "unspecified"
// (0.0.0.0/8, ::), "multicast" (224.0.0.0/4, ff00::/8), "broadcast" (255.255.255.255).
// An IPv6 address embedding an IPv4 address (see IpAddress::EmbeddedV4) is refused when
// the embedded address is. Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7) and
// everything else are not refused: hospital receivers live there.
std::optional<std::string_view> RefusedRange(const IpAddress& address);

// Decides whether a connection to an IP address may be made. Default-constructed, it
// refuses what RefusedRange names and allows everything else. Explicit allow entries
// override the refusal:
//  - a CIDR block allows every address in it, whatever name led there;
//  - a host:port entry allows every address that the URL's host (as written in the URL,
//    case-insensitive; an IP literal compared as an address) resolves to, on that port
//    only. It trusts DNS for that name: use it for names the deployment controls.
// A value type without I/O; const methods are safe to call from any thread.
class AddressPolicy {
 public:
  // Allows every address. Only for endpoints the operator configures (the identity
  // provider's discovery and keys), never for addresses that users or data supply.
  static AddressPolicy Unrestricted();

  void AllowNetwork(IpNetwork network);
  // `host` as in Url::host (lower case, IPv6 literal without brackets).
  void AllowEndpoint(std::string host, uint16_t port);

  // Whether a connection to `address` may be made for a URL naming `host` and `port`.
  bool Permits(const IpAddress& address, std::string_view host, uint16_t port) const;

 private:
  struct Endpoint {
    std::string host;
    uint16_t port;
  };
  std::vector<IpNetwork> networks_;
  std::vector<Endpoint> endpoints_;
};

// Parses a comma-separated allow-list into a policy; blanks around entries are ignored and
// an empty list gives the default policy. Entries: "host:port" ("[v6]:port" for an IPv6
// literal) or a CIDR block ("10.1.0.0/16", "fd00:1::/64"). A bare address, a port outside
// 1..65535, wildcards or a malformed block are INVALID_ARGUMENT naming the entry.
absl::StatusOr<AddressPolicy> ParseAllowList(std::string_view comma_separated);

}  // namespace clinical::http

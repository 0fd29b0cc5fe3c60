#include "clinical/identity/principal.h"

#include <algorithm>

namespace clinical::identity {
namespace {

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool IsUserIdChar(char c) {
  return IsAsciiAlnum(c) || c == '.' || c == '_' || c == '@' || c == ':' || c == '+' || c == '-';
}

bool IsTenantIdChar(char c) { return IsAsciiAlnum(c) || c == '.' || c == '_' || c == '-'; }

// A Kubernetes-style name segment of a SPIFFE path: 1-63 of [a-z0-9-].
bool IsSpiffeSegment(std::string_view segment) {
  if (segment.empty() || segment.size() > 63) return false;
  return std::all_of(segment.begin(), segment.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// SPIFFE trust domain names: lowercase letters, digits, '.', '_' and '-' (no port, no
// user info, no path).
bool IsTrustDomain(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

// Removes `prefix` from the front of `text`; false when `text` does not start with it.
bool ConsumePrefix(std::string_view& text, std::string_view prefix) {
  if (text.substr(0, prefix.size()) != prefix) return false;
  text.remove_prefix(prefix.size());
  return true;
}

// The text up to the next '/' (or the end), removed from `text` together with the '/'.
std::string_view NextSegment(std::string_view& text) {
  const size_t slash = text.find('/');
  std::string_view segment = text.substr(0, slash);
  text.remove_prefix(slash == std::string_view::npos ? text.size() : slash + 1);
  return segment;
}

}  // namespace

bool IsValidUserId(std::string_view user_id) {
  if (user_id.empty() || user_id.size() > 128) return false;
  if (user_id.front() == '.' || user_id.back() == '.') return false;
  return std::all_of(user_id.begin(), user_id.end(), IsUserIdChar);
}

bool IsValidTenantId(std::string_view tenant_id) {
  if (tenant_id.empty() || tenant_id.size() > 64) return false;
  if (!IsAsciiAlnum(tenant_id.front())) return false;
  return std::all_of(tenant_id.begin(), tenant_id.end(), IsTenantIdChar);
}

bool IsPlatformRole(std::string_view role) {
  return std::find(kPlatformRoles.begin(), kPlatformRoles.end(), role) != kPlatformRoles.end();
}

std::optional<ServiceIdentity> ParseSpiffeId(std::string_view uri, std::string_view trust_domain) {
  if (!IsTrustDomain(trust_domain)) return std::nullopt;
  std::string_view rest = uri;
  if (!ConsumePrefix(rest, "spiffe://") || !ConsumePrefix(rest, trust_domain) ||
      !ConsumePrefix(rest, "/")) {
    return std::nullopt;
  }
  // Exactly "ns/<namespace>/sa/<service>": a missing, extra or empty segment fails, and
  // since segments admit only [a-z0-9-], so do '?', '#', '%' and ':'.
  const std::string_view ns_label = NextSegment(rest);
  const std::string_view namespace_name = NextSegment(rest);
  const std::string_view sa_label = NextSegment(rest);
  if (rest.empty() || rest.find('/') != std::string_view::npos) return std::nullopt;
  const std::string_view service = rest;
  if (ns_label != "ns" || sa_label != "sa") return std::nullopt;
  if (!IsSpiffeSegment(namespace_name) || !IsSpiffeSegment(service)) return std::nullopt;
  return ServiceIdentity{std::string(namespace_name), std::string(service)};
}

}  // namespace clinical::identity

#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace clinical::identity {

// Pure checks of the identifiers a caller may present, shared by token verification and
// the gRPC layer. Identifiers that pass them are safe to copy into events, access records,
// metric labels and log fields: no spaces, no control characters, no path or quote
// characters, bounded length. All functions are thread-safe.

// 1-128 characters of [A-Za-z0-9._@:+-], not starting or ending with a dot. Covers the
// subjects issuers use in practice: UUIDs (Keycloak, Azure oid), opaque ids (Okta
// "00u..."), e-mail-like names and base64url pairwise subjects.
bool IsValidUserId(std::string_view user_id);

// 1-64 characters of [A-Za-z0-9._-], starting with a letter or digit.
bool IsValidTenantId(std::string_view tenant_id);

// The roles a human caller can hold on the platform, in their canonical spelling (the
// lowercase names of clinical.common.v1.Role without the ROLE_ prefix).
inline constexpr std::array<std::string_view, 7> kPlatformRoles = {
    "case_manager", "supervisor", "intake_coordinator", "scheduler", "auditor", "privacy_officer", "administrator"};

// The role of platform services. It is granted only for a verified service certificate
// (ParseSpiffeId), never from a bearer token.
inline constexpr std::string_view kServiceRole = "service";

// True when `role` is exactly one of kPlatformRoles.
bool IsPlatformRole(std::string_view role);

// A workload identity from a SPIFFE X.509 SVID.
struct ServiceIdentity {
  std::string namespace_name;  // Kubernetes namespace
  std::string service;         // service account name
};

// Parses "spiffe://<trust_domain>/ns/<namespace>/sa/<service>". Strict: the trust domain
// must equal `trust_domain` exactly, there are exactly four path segments, and namespace
// and service are 1-63 characters of [a-z0-9-]. No query, fragment, port, user info or
// percent-encoding. nullopt for anything else, including a `trust_domain` that is not a
// valid trust domain name (lowercase [a-z0-9._-]).
std::optional<ServiceIdentity> ParseSpiffeId(std::string_view uri, std::string_view trust_domain);

}  // namespace clinical::identity

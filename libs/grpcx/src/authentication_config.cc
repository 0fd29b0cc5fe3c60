// Configuration of the Authenticator: which issuer, audience and claims, where its keys
// are, and which peers are fellow services.
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "clinical/grpcx/authenticator.h"
#include "clinical/http/client.h"
#include "clinical/identity/jwks.h"
#include "clinical/identity/principal.h"

namespace clinical::grpcx {
namespace {

absl::Status Bad(const std::string& key, const std::string& why) {
  return absl::FailedPreconditionError(absl::StrCat("config key '", key, "' ", why));
}

// "a, b,c" -> {"a", "b", "c"}.
std::vector<std::string> CommaList(const std::string& text) {
  std::vector<std::string> out;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    out.emplace_back(absl::StripAsciiWhitespace(item));
  }
  return out;
}

// The URI SAN of the first certificate in `cert_file`, or "" when it has none.
absl::StatusOr<std::string> UriOfCertificate(const std::string& cert_file) {
  std::ifstream in(cert_file, std::ios::binary);
  std::stringstream pem;
  pem << in.rdbuf();
  const std::string text = pem.str();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  if (cert == nullptr) return Bad("tls-cert-file", "holds no PEM certificate");
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  std::string uri;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* value = name->d.uniformResourceIdentifier;
    uri.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)), static_cast<size_t>(ASN1_STRING_length(value)));
    break;
  }
  GENERAL_NAMES_free(names);
  return uri;
}

// "spiffe://<domain>/..." -> "<domain>".
std::string TrustDomainOf(const std::string& spiffe_id) {
  constexpr std::string_view kScheme = "spiffe://";
  if (!spiffe_id.starts_with(kScheme)) return "";
  const std::string rest = spiffe_id.substr(kScheme.size());
  return rest.substr(0, rest.find('/'));
}

}  // namespace

std::vector<config::Option> AuthenticationOptions() {
  using config::OptionType;
  return {
      {"oidc-issuer", OptionType::kString, "",
       "issuer URL of the identity provider; tokens' iss must equal it (required)"},
      {"oidc-audience", OptionType::kString, "clinical-api",
       "audience(s) a token must name in aud, comma-separated"},
      {"oidc-jwks-url", OptionType::kString, "",
       "the issuer's JWKS (empty: found through OIDC discovery at <issuer>/.well-known/openid-configuration)"},
      {"oidc-ca-file", OptionType::kString, "",
       "PEM CA bundle to verify the identity provider's HTTPS (empty: the system CAs)"},
      {"oidc-algorithms", OptionType::kString, "RS256,ES256", "accepted signature algorithms (RS256, ES256)"},
      {"oidc-clock-skew", OptionType::kDuration, "60s", "tolerance on exp/nbf/iat (at most 5m)"},
      {"oidc-user-claim", OptionType::kString, "sub",
       "claim holding the user id (e.g. preferred_username for Keycloak)"},
      {"oidc-roles-claim", OptionType::kString, "roles",
       "claim (dot path) holding the roles: realm_access.roles (Keycloak), roles (Azure AD), groups (Okta)"},
      {"oidc-tenant-claim", OptionType::kString, "tenant", "claim (dot path) holding the tenant, e.g. tid (Azure AD)"},
      {"oidc-role-prefix", OptionType::kString, "",
       "prefix stripped from role values before they are matched (e.g. clinical- for Okta groups)"},
      {"oidc-jwks-refresh-interval", OptionType::kDuration, "10s",
       "least time between two JWKS fetches caused by an unknown key id"},
      {"oidc-jwks-max-age", OptionType::kDuration, "10m", "keys older than this are fetched again"},
      {"oidc-discovery-timeout", OptionType::kDuration, "60s",
       "how long start-up waits for the identity provider's discovery document"},
  };
}

absl::StatusOr<std::shared_ptr<Authenticator>> AuthenticatorFromConfig(
    const config::Config& config, const TlsFiles& tls, access::Recorder* recorder,
    logging::Logger& logger, metrics::Registry& metrics) {
  identity::VerifierOptions verifier;
  verifier.issuer = config.GetString("oidc-issuer");
  verifier.audiences = CommaList(config.GetString("oidc-audience"));
  verifier.algorithms = CommaList(config.GetString("oidc-algorithms"));
  verifier.clock_skew = config.GetDuration("oidc-clock-skew");
  verifier.claims.user = config.GetString("oidc-user-claim");
  verifier.claims.roles = config.GetString("oidc-roles-claim");
  verifier.claims.tenant = config.GetString("oidc-tenant-claim");
  verifier.role_prefix = config.GetString("oidc-role-prefix");
  if (verifier.issuer.empty()) return Bad("oidc-issuer", "is required (the identity provider's issuer URL)");
  if (!verifier.issuer.starts_with("https://")) return Bad("oidc-issuer", "must be an https URL");
  if (absl::Status valid = verifier.Validate(); !valid.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("token verification settings: ", valid.message()));
  }

  // Fetches from the identity provider: HTTPS only, verified, bounded. The provider is
  // the operator's choice (not a user's), so its address may be anything, loopback too.
  auto client = std::make_shared<http::Client>();
  http::RequestOptions request;
  request.timeout = absl::Seconds(5);
  request.ca_file = config.GetString("oidc-ca-file");
  request.policy = http::AddressPolicy::Unrestricted();
  auto fetch = [client, request](const std::string& url) -> absl::StatusOr<std::string> {
    auto parsed = http::ParseHttpsUrl(url);
    if (!parsed.ok()) return parsed.status();
    auto response = client->Get(*parsed, {{"Accept", "application/json"}}, request);
    if (!response.ok()) return response.status();
    if (response->status != 200) {
      return absl::UnavailableError(absl::StrCat("identity provider answered HTTP ", response->status));
    }
    return std::move(response->body);
  };

  std::string jwks_url = config.GetString("oidc-jwks-url");
  if (jwks_url.empty()) {
    std::string base = verifier.issuer;
    if (base.ends_with('/')) base.pop_back();
    const std::string discovery = absl::StrCat(base, "/.well-known/openid-configuration");
    const absl::Time deadline = absl::Now() + config.GetDuration("oidc-discovery-timeout");
    absl::Status last;
    for (int attempt = 0;; ++attempt) {
      auto document = fetch(discovery);
      if (document.ok()) {
        auto uri = identity::JwksUriFromDiscovery(*document, verifier.issuer);
        if (!uri.ok()) {
          return absl::FailedPreconditionError(absl::StrCat("OIDC discovery: ", std::string(uri.status().message())));
        }
        jwks_url = *uri;
        break;
      }
      last = document.status();
      if (absl::Now() >= deadline) {
        return absl::UnavailableError(absl::StrCat("OIDC discovery did not answer: ", std::string(last.message())));
      }
      if (attempt == 0) logger.Warn("identity provider not reachable yet; retrying", {{"reason", std::string(last.message())}});
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  } else if (!jwks_url.starts_with("https://")) {
    return Bad("oidc-jwks-url", "must be an https URL");
  }
  identity::KeySetOptions key_options;
  key_options.min_refresh_interval = config.GetDuration("oidc-jwks-refresh-interval");
  key_options.max_age = config.GetDuration("oidc-jwks-max-age");
  auto keys = std::make_unique<identity::KeySet>(fetch, jwks_url, key_options);

  // Fellow services: the same trust domain and namespace as this server's own certificate.
  auto own = UriOfCertificate(tls.cert_file);
  if (!own.ok()) return own.status();
  ServicePeers services;
  services.trust_domain = TrustDomainOf(*own);
  const auto self = identity::ParseSpiffeId(*own, services.trust_domain);
  if (!self.has_value()) {
    return Bad("tls-cert-file", "must carry a SPIFFE ID (URI SAN spiffe://<trust domain>/ns/<namespace>/sa/<service>)");
  }
  services.namespace_name = self->namespace_name;
  logger.Info("authentication", {{"issuer", verifier.issuer},
                                 {"jwks", jwks_url},
                                 {"trust_domain", services.trust_domain},
                                 {"namespace", services.namespace_name}});
  return Authenticator::Create(std::move(keys), std::move(verifier), std::move(services), recorder, logger,
                               metrics);
}

}  // namespace clinical::grpcx

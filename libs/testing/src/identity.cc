#include "clinical/testing/identity.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "clinical/http/client.h"
#include "clinical/testing/platform.h"
#include "grpcpp/create_channel.h"
#include "nlohmann/json.hpp"

namespace clinical::testing {
namespace {

[[noreturn]] void Fail(const std::string& why) {
  std::fprintf(stderr, "test identity provider: %s\n", why.c_str());
  std::exit(1);
}

std::string ReadSecret(const std::string& name) {
  const std::string path = absl::StrCat(Platform::Get().platform_dir, "/secrets/", name);
  std::ifstream in(path);
  std::string value;
  if (!std::getline(in, value) || value.empty()) Fail(absl::StrCat("cannot read ", path));
  return std::string(absl::StripAsciiWhitespace(value));
}

// application/x-www-form-urlencoded value.
std::string FormEncode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char hex[4];
      std::snprintf(hex, sizeof(hex), "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

// Talks to the platform's Keycloak: the admin API (as clinical-provisioner) and the token
// endpoint. One instance per test process.
class IdentityProvider {
 public:
  IdentityProvider()
      : issuer_(Platform::Get().oidc_issuer),
        admin_base_(AdminBase(issuer_)),
        password_(ReadSecret("demo-users.password")),
        provisioner_secret_(ReadSecret("keycloak-provisioner.secret")) {
    request_.timeout = absl::Seconds(20);
    request_.ca_file = absl::StrCat(Platform::Get().pki_dir, "/ca.crt");
    request_.policy = http::AddressPolicy::Unrestricted();
  }

  std::string Token(const Person& person, const std::string& client_id) {
    std::lock_guard lock(mutex_);
    const std::string username = Username(person);
    const std::string cache_key = absl::StrCat(client_id, "/", username);
    auto cached = tokens_.find(cache_key);
    if (cached != tokens_.end() && absl::Now() < cached->second.refresh_after) return cached->second.token;
    if (provisioned_.count(username) == 0) {
      Provision(person, username);
      provisioned_.insert(username);
    }
    nlohmann::json answer = PostForm(absl::StrCat(issuer_, "/protocol/openid-connect/token"),
                                     {{"grant_type", "password"}, {"client_id", client_id},
                                      {"username", username}, {"password", password_}});
    CachedToken token;
    token.token = answer.value("access_token", "");
    if (token.token.empty()) Fail(absl::StrCat("no access token for ", username));
    token.refresh_after = absl::Now() + absl::Seconds(answer.value("expires_in", 60) - 30);
    tokens_[cache_key] = token;
    return token.token;
  }

 private:
  struct CachedToken {
    std::string token;
    absl::Time refresh_after;
  };

  // "https://host:port/realms/clinical" -> "https://host:port/admin/realms/clinical".
  static std::string AdminBase(const std::string& issuer) {
    const auto at = issuer.find("/realms/");
    if (at == std::string::npos) Fail("unexpected issuer URL");
    return absl::StrCat(issuer.substr(0, at), "/admin", issuer.substr(at));
  }

  // One Keycloak user per distinct person: the staff id the services see is an attribute,
  // so the same staff id may exist in several tenants or roles without sharing a user.
  static std::string Username(const Person& person) {
    std::string name = absl::AsciiStrToLower(absl::StrCat("t.", person.tenant, ".", person.role, ".", person.user));
    for (char& c : name) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
    }
    return name;
  }

  http::Response Send(const std::string& method, const std::string& url, const std::string& body,
                      const http::Headers& headers) {
    absl::StatusOr<http::Url> parsed = http::ParseHttpsUrl(url);
    if (!parsed.ok()) Fail(absl::StrCat("not an https URL: ", url));
    absl::StatusOr<http::Response> response = method == "GET" ? client_.Get(*parsed, headers, request_)
                                                              : client_.Post(*parsed, headers, body, request_);
    if (!response.ok()) Fail(absl::StrCat(method, " ", url, ": ", response.status().ToString()));
    return *std::move(response);
  }

  nlohmann::json PostForm(const std::string& url, const std::vector<std::pair<std::string, std::string>>& fields) {
    std::string body;
    for (const auto& [key, value] : fields) {
      absl::StrAppend(&body, body.empty() ? "" : "&", FormEncode(key), "=", FormEncode(value));
    }
    http::Response response = Send("POST", url, body, {{"Content-Type", "application/x-www-form-urlencoded"}});
    if (response.status != 200) Fail(absl::StrCat("POST ", url, " answered ", response.status, ": ", response.body));
    return nlohmann::json::parse(response.body);
  }

  std::string AdminToken() {
    if (absl::Now() < admin_refresh_after_) return admin_token_;
    nlohmann::json answer = PostForm(absl::StrCat(issuer_, "/protocol/openid-connect/token"),
                                     {{"grant_type", "client_credentials"}, {"client_id", "clinical-provisioner"},
                                      {"client_secret", provisioner_secret_}});
    admin_token_ = answer.value("access_token", "");
    admin_refresh_after_ = absl::Now() + absl::Seconds(answer.value("expires_in", 60) - 30);
    return admin_token_;
  }

  http::Response Admin(const std::string& method, const std::string& path, const std::string& body = "") {
    return Send(method, absl::StrCat(admin_base_, path), body,
                {{"Authorization", absl::StrCat("Bearer ", AdminToken())}, {"Content-Type", "application/json"}});
  }

  // Creates the person (if missing) with the tenant and staff id attributes and the role.
  void Provision(const Person& person, const std::string& username) {
    nlohmann::json user = {
        {"username", username},
        {"enabled", true},
        // An email's local part has at most 64 characters: a digest of the username.
        {"email", absl::StrCat("p", absl::Hex(std::hash<std::string>{}(username), absl::kZeroPad16), "@test.example.org")},
        {"emailVerified", true},
        {"firstName", "Test"},
        {"lastName", "Person"},
        {"attributes", nlohmann::json::object()},
        {"credentials", {{{"type", "password"}, {"value", password_}, {"temporary", false}}}},
    };
    // An empty tenant or role is left out: such a person's token lacks the claim.
    if (!person.tenant.empty()) user["attributes"]["tenant"] = {person.tenant};
    user["attributes"]["clinical_user_id"] = {person.user};
    http::Response created = Admin("POST", "/users", user.dump());
    // 409: another test process made the same person first; it is identical by construction.
    if (created.status != 201 && created.status != 409) {
      Fail(absl::StrCat("creating ", username, " answered ", created.status, ": ", created.body));
    }
    http::Response found = Admin("GET", absl::StrCat("/users?exact=true&username=", FormEncode(username)));
    auto users = nlohmann::json::parse(found.body, nullptr, false);
    if (found.status != 200 || !users.is_array() || users.empty()) Fail(absl::StrCat("cannot find ", username));
    const std::string id = users[0].value("id", "");
    http::Response available = Admin("GET", absl::StrCat("/users/", id, "/role-mappings/realm/available"));
    auto roles = nlohmann::json::parse(available.body, nullptr, false);
    if (!roles.is_array()) Fail(absl::StrCat("cannot list roles for ", username));
    for (const auto& role : roles) {
      if (role.value("name", "") != person.role) continue;
      http::Response mapped = Admin("POST", absl::StrCat("/users/", id, "/role-mappings/realm"),
                                    nlohmann::json::array({role}).dump());
      if (mapped.status != 204) Fail(absl::StrCat("granting ", person.role, " answered ", mapped.status));
    }
  }

  const std::string issuer_;
  const std::string admin_base_;
 public:
  nlohmann::json Jwks() {
    std::lock_guard lock(mutex_);
    http::Response response = Send("GET", absl::StrCat(issuer_, "/protocol/openid-connect/certs"), "", {});
    if (response.status != 200) Fail("cannot read the realm's JWKS");
    return nlohmann::json::parse(response.body);
  }

  // Adds an RSA signing key (PKCS#8 PEM) to the realm as the bootstrap administrator.
  void PublishKey(const std::string& private_pem) {
    std::lock_guard lock(mutex_);
    const std::string base = issuer_.substr(0, issuer_.find("/realms/"));
    nlohmann::json answer = PostForm(absl::StrCat(base, "/realms/master/protocol/openid-connect/token"),
                                     {{"grant_type", "password"}, {"client_id", "admin-cli"}, {"username", "admin"},
                                      {"password", ReadSecret("keycloak-admin.password")}});
    const std::string admin = answer.value("access_token", "");
    const http::Headers auth = {{"Authorization", absl::StrCat("Bearer ", admin)}, {"Content-Type", "application/json"}};
    http::Response realm = Send("GET", admin_base_, "", auth);
    const std::string realm_id = nlohmann::json::parse(realm.body, nullptr, false).value("id", "");
    if (realm.status != 200 || realm_id.empty()) Fail("cannot read the realm as its administrator");
    std::string body;
    for (absl::string_view line : absl::StrSplit(private_pem, '\n')) {
      if (!line.empty() && !absl::StartsWith(line, "-----")) absl::StrAppend(&body, line);
    }
    nlohmann::json component = {
        {"name", absl::StrCat("rotated-", absl::ToUnixNanos(absl::Now()))},
        {"providerId", "rsa"},
        {"providerType", "org.keycloak.keys.KeyProvider"},
        {"parentId", realm_id},
        // Lowest priority: published in the JWKS, never chosen to sign the realm's tokens.
        {"config", {{"priority", {"0"}}, {"active", {"true"}}, {"enabled", {"true"}}, {"algorithm", {"RS256"}},
                    {"privateKey", {body}}}}};
    http::Response created = Send("POST", absl::StrCat(admin_base_, "/components"), component.dump(), auth);
    if (created.status != 201) Fail(absl::StrCat("publishing a key answered ", created.status, ": ", created.body));
  }

 private:
  const std::string password_;
  const std::string provisioner_secret_;
  http::Client client_;
  http::RequestOptions request_;
  std::mutex mutex_;
  std::map<std::string, CachedToken> tokens_;
  std::set<std::string> provisioned_;
  std::string admin_token_;
  absl::Time admin_refresh_after_ = absl::InfinitePast();
};

// The base64url modulus ("n" of a JWK) of an RSA private key in PEM.
std::string RsaModulus(const std::string& private_pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(private_pem.data(), static_cast<int>(private_pem.size())),
                                                BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr),
                                                          EVP_PKEY_free);
  BIGNUM* n = nullptr;
  if (key == nullptr || EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_N, &n) != 1) return "";
  std::string bytes(static_cast<size_t>(BN_num_bytes(n)), '\0');
  BN_bn2bin(n, reinterpret_cast<unsigned char*>(bytes.data()));
  BN_free(n);
  std::string text = absl::WebSafeBase64Escape(bytes);  // unpadded, as JWKs are
  return text;
}

IdentityProvider& Provider() {
  static IdentityProvider* provider = new IdentityProvider();
  return *provider;
}

grpcx::TlsFiles Files(const std::string& name) {
  const std::string& dir = Platform::Get().pki_dir;
  grpcx::TlsFiles tls;
  tls.cert_file = absl::StrCat(dir, "/", name, ".crt");
  tls.key_file = absl::StrCat(dir, "/", name, ".key");
  tls.ca_file = absl::StrCat(dir, "/ca.crt");
  return tls;
}

}  // namespace

std::string RealmTestSigningKey() {
  const std::string path = absl::StrCat(Platform::Get().platform_dir, "/keycloak/test-signing.key");
  std::ifstream in(path);
  std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (pem.empty()) Fail(absl::StrCat("cannot read ", path));
  return pem;
}

std::string RealmKeyId(const std::string& private_pem) {
  const std::string modulus = RsaModulus(private_pem);
  for (const auto& key : Provider().Jwks().value("keys", nlohmann::json::array())) {
    if (!modulus.empty() && key.value("n", "") == modulus) return key.value("kid", "");
  }
  return "";
}

std::string PublishRealmKey(const std::string& private_pem) {
  Provider().PublishKey(private_pem);
  const std::string kid = RealmKeyId(private_pem);
  if (kid.empty()) Fail("the realm does not publish the key it was given");
  return kid;
}

std::string TokenFor(const Person& person) { return Provider().Token(person, "clinical-demo"); }
std::string TokenFor(const Person& person, const std::string& client_id) { return Provider().Token(person, client_id); }

void Authenticate(grpc::ClientContext& context, const Person& person) {
  if (person.user.empty()) return;
  context.AddMetadata("authorization", absl::StrCat("Bearer ", TokenFor(person)));
}

std::unique_ptr<grpc::ClientContext> ContextAs(const Person& person, absl::Duration deadline) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  Authenticate(*context, person);
  return context;
}

grpcx::TlsFiles ClientTls() { return Files("test-client"); }
grpcx::TlsFiles ServiceTls(const std::string& service) { return Files(service); }

std::shared_ptr<grpc::Channel> SecureChannel(const std::string& address) { return SecureChannel(address, ClientTls()); }

std::shared_ptr<grpc::Channel> SecureChannel(const std::string& address, const grpcx::TlsFiles& tls) {
  grpc::ChannelArguments arguments;
  // A private subchannel pool: channels to the same address must not share a connection.
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpcx::ChannelCredentials(tls), arguments);
}

}  // namespace clinical::testing

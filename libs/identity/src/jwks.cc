#include "clinical/identity/jwks.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "base64url.h"
#include "nlohmann/json.hpp"

namespace clinical::identity {
namespace {

using Json = nlohmann::json;

// OpenSSL handles live only in these holders (never in headers).
struct BignumFree {
  void operator()(BIGNUM* bn) const { BN_free(bn); }
};
struct ParamBuildFree {
  void operator()(OSSL_PARAM_BLD* bld) const { OSSL_PARAM_BLD_free(bld); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* params) const { OSSL_PARAM_free(params); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* pkey) const { EVP_PKEY_free(pkey); }
};
struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using Bignum = std::unique_ptr<BIGNUM, BignumFree>;
using ParamBuild = std::unique_ptr<OSSL_PARAM_BLD, ParamBuildFree>;
using Params = std::unique_ptr<OSSL_PARAM, ParamFree>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

// OpenSSL reports failures on a per-thread error queue. A rejected key must not leave
// entries there: the same thread may next run a TLS handshake that reads the queue.
class ClearOpensslErrorsOnExit {
 public:
  ClearOpensslErrorsOnExit() = default;
  ClearOpensslErrorsOnExit(const ClearOpensslErrorsOnExit&) = delete;
  ClearOpensslErrorsOnExit& operator=(const ClearOpensslErrorsOnExit&) = delete;
  ~ClearOpensslErrorsOnExit() { ERR_clear_error(); }
};

constexpr int kMinRsaBits = 2048;
// Verification cost grows with the modulus; an issuer has no reason to go beyond this.
constexpr int kMaxRsaBits = 8192;
// Public exponents are 65537 in practice; a huge one would make every verification slow.
constexpr size_t kMaxRsaExponentBytes = 8;
constexpr size_t kP256CoordinateBytes = 32;
constexpr size_t kMaxKidBytes = 256;

// A string member of `object`, or nullopt when absent or not a string.
std::optional<std::string> StringMember(const Json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// Key material of a JWK: base64url without padding (RFC 7518 §6). Some issuers pad
// anyway; the padding carries no information, so it is tolerated here (not in tokens).
std::optional<std::string> DecodeKeyMaterial(const Json& jwk, const char* name) {
  std::optional<std::string> text = StringMember(jwk, name);
  if (!text) return std::nullopt;
  while (!text->empty() && text->back() == '=') text->pop_back();
  if (text->empty()) return std::nullopt;
  return internal::DecodeBase64Url(*text);
}

Bignum BignumFromBytes(const std::string& bytes) {
  return Bignum(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()), nullptr));
}

// Builds a public key of `type` ("RSA" or "EC") from OSSL_PARAMs and checks it.
Pkey PublicKeyFromParams(const char* type, OSSL_PARAM* params) {
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return nullptr;
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1) return nullptr;
  Pkey pkey(raw);
  // EC: the point is on the curve and not the identity. RSA: OpenSSL's sanity checks of
  // modulus and exponent (an even modulus fails, for one).
  PkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
  return pkey;
}

Pkey RsaKeyFromJwk(const Json& jwk) {
  const std::optional<std::string> n = DecodeKeyMaterial(jwk, "n");
  const std::optional<std::string> e = DecodeKeyMaterial(jwk, "e");
  if (!n || !e || e->size() > kMaxRsaExponentBytes) return nullptr;
  // Bounds before any big-number work; BN_bin2bn ignores leading zero bytes.
  if (n->size() > kMaxRsaBits / 8 + 1) return nullptr;
  Bignum modulus = BignumFromBytes(*n);
  Bignum exponent = BignumFromBytes(*e);
  if (!modulus || !exponent) return nullptr;
  const int bits = BN_num_bits(modulus.get());
  if (bits < kMinRsaBits || bits > kMaxRsaBits) return nullptr;
  ParamBuild build(OSSL_PARAM_BLD_new());
  if (!build || OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, modulus.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, exponent.get()) != 1) {
    return nullptr;
  }
  Params params(OSSL_PARAM_BLD_to_param(build.get()));
  if (!params) return nullptr;
  return PublicKeyFromParams("RSA", params.get());
}

Pkey P256KeyFromJwk(const Json& jwk) {
  const std::optional<std::string> x = DecodeKeyMaterial(jwk, "x");
  const std::optional<std::string> y = DecodeKeyMaterial(jwk, "y");
  // RFC 7518 §6.2.1.2: coordinates are the full field size, leading zeros included.
  if (!x || !y || x->size() != kP256CoordinateBytes || y->size() != kP256CoordinateBytes) {
    return nullptr;
  }
  const std::string point = std::string(1, '\x04') + *x + *y;  // SEC1 uncompressed
  ParamBuild build(OSSL_PARAM_BLD_new());
  if (!build ||
      OSSL_PARAM_BLD_push_utf8_string(build.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1",
                                      0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(build.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return nullptr;
  }
  Params params(OSSL_PARAM_BLD_to_param(build.get()));
  if (!params) return nullptr;
  return PublicKeyFromParams("EC", params.get());
}

std::optional<std::string> ToPem(EVP_PKEY* pkey) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), pkey) != 1) return std::nullopt;
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  if (size <= 0 || data == nullptr) return std::nullopt;
  return std::string(data, static_cast<size_t>(size));
}

// A JWK is for signatures unless "use" or "key_ops" says otherwise (RFC 7517 §4.2-4.3).
bool IsForVerification(const Json& jwk) {
  if (const auto use = jwk.find("use"); use != jwk.end()) {
    if (!use->is_string() || use->get_ref<const std::string&>() != "sig") return false;
  }
  if (const auto ops = jwk.find("key_ops"); ops != jwk.end()) {
    if (!ops->is_array()) return false;
    return std::any_of(ops->begin(), ops->end(), [](const Json& op) {
      return op.is_string() && op.get_ref<const std::string&>() == "verify";
    });
  }
  return true;
}

// The key of one JWK, or nullopt when it is not one we verify with.
std::optional<PublicKey> KeyFromJwk(const Json& jwk) {
  if (!jwk.is_object() || !IsForVerification(jwk)) return std::nullopt;
  const std::optional<std::string> kty = StringMember(jwk, "kty");
  if (!kty) return std::nullopt;
  PublicKey key;
  if (const auto kid = jwk.find("kid"); kid != jwk.end()) {
    if (!kid->is_string() || kid->get_ref<const std::string&>().size() > kMaxKidBytes) {
      return std::nullopt;
    }
    key.kid = kid->get<std::string>();
  }
  const bool has_alg = jwk.contains("alg");
  const std::optional<std::string> alg = StringMember(jwk, "alg");
  if (has_alg && !alg) return std::nullopt;

  Pkey pkey;
  if (*kty == "RSA") {
    key.algorithm = alg.value_or("RS256");
    if (key.algorithm != "RS256") return std::nullopt;
    pkey = RsaKeyFromJwk(jwk);
  } else if (*kty == "EC") {
    if (StringMember(jwk, "crv") != "P-256") return std::nullopt;
    key.algorithm = alg.value_or("ES256");
    if (key.algorithm != "ES256") return std::nullopt;
    pkey = P256KeyFromJwk(jwk);
  } else {
    return std::nullopt;  // "oct" (shared secrets) included: never a verification key here
  }
  if (!pkey) return std::nullopt;
  std::optional<std::string> pem = ToPem(pkey.get());
  if (!pem) return std::nullopt;
  key.pem = std::move(*pem);
  return key;
}

// "https://host[...]" with a non-empty host and no user info, whitespace or controls.
bool IsHttpsUrl(const std::string& url) {
  constexpr std::string_view kScheme = "https://";
  if (url.size() <= kScheme.size() || url.size() > 2048) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    const char c = url[i];
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (lower != kScheme[i]) return false;
  }
  if (std::any_of(url.begin(), url.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
    return false;
  }
  const std::string_view rest = std::string_view(url).substr(kScheme.size());
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  return !authority.empty() && authority.find('@') == std::string_view::npos;
}

Json ParseJson(std::string_view text) {
  return Json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
}

}  // namespace

absl::StatusOr<std::vector<PublicKey>> ParseJwks(std::string_view json) {
  const ClearOpensslErrorsOnExit clear_errors;
  const Json document = ParseJson(json);
  if (document.is_discarded() || !document.is_object()) {
    return absl::InvalidArgumentError("JWKS is not a JSON object");
  }
  const auto keys = document.find("keys");
  if (keys == document.end() || !keys->is_array()) {
    return absl::InvalidArgumentError("JWKS has no \"keys\" array");
  }
  std::vector<PublicKey> result;
  for (const Json& jwk : *keys) {
    std::optional<PublicKey> key = KeyFromJwk(jwk);
    if (!key) continue;
    const bool duplicate = std::any_of(result.begin(), result.end(), [&](const PublicKey& known) {
      return known.kid == key->kid && known.algorithm == key->algorithm;
    });
    if (!duplicate) result.push_back(std::move(*key));
  }
  return result;
}

absl::StatusOr<std::string> JwksUriFromDiscovery(std::string_view openid_configuration_json,
                                                 std::string_view expected_issuer) {
  const Json document = ParseJson(openid_configuration_json);
  if (document.is_discarded() || !document.is_object()) {
    return absl::InvalidArgumentError("OpenID configuration is not a JSON object");
  }
  const std::optional<std::string> issuer = StringMember(document, "issuer");
  if (!issuer) return absl::InvalidArgumentError("OpenID configuration has no \"issuer\"");
  if (expected_issuer.empty() || *issuer != expected_issuer) {
    return absl::InvalidArgumentError(
        "OpenID configuration \"issuer\" differs from the configured issuer");
  }
  std::optional<std::string> jwks_uri = StringMember(document, "jwks_uri");
  if (!jwks_uri) return absl::InvalidArgumentError("OpenID configuration has no \"jwks_uri\"");
  if (!IsHttpsUrl(*jwks_uri)) {
    return absl::InvalidArgumentError("OpenID configuration \"jwks_uri\" is not an https URL");
  }
  return std::move(*jwks_uri);
}

}  // namespace clinical::identity

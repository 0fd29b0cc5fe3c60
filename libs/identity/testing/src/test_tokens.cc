#include "clinical/identity/testing/test_tokens.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>

namespace clinical::identity::test_support {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* pkey) const { EVP_PKEY_free(pkey); }
};
struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct BignumFree {
  void operator()(BIGNUM* bn) const { BN_free(bn); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct JwtFree {
  void operator()(jwt_t* jwt) const { jwt_free(jwt); }
};
struct CharFree {
  void operator()(char* text) const { std::free(text); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Bio = std::unique_ptr<BIO, BioFree>;
using Bignum = std::unique_ptr<BIGNUM, BignumFree>;

void Require(bool condition, const char* what) {
  if (!condition) throw std::runtime_error(what);
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string PrivatePem(EVP_PKEY* pkey) {
  Bio bio(BIO_new(BIO_s_mem()));
  Require(PEM_write_bio_PrivateKey(bio.get(), pkey, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "write private key");
  return BioText(bio.get());
}

std::string PublicPem(EVP_PKEY* pkey) {
  Bio bio(BIO_new(BIO_s_mem()));
  Require(PEM_write_bio_PUBKEY(bio.get(), pkey) == 1, "write public key");
  return BioText(bio.get());
}

// Big-endian bytes of a key parameter, left-padded to `width` bytes when width > 0.
std::string BnParam(EVP_PKEY* pkey, const char* name, int width = 0) {
  BIGNUM* raw = nullptr;
  Require(EVP_PKEY_get_bn_param(pkey, name, &raw) == 1, "read key parameter");
  Bignum bn(raw);
  const int size = width > 0 ? width : BN_num_bytes(bn.get());
  std::string bytes(static_cast<size_t>(size), '\0');
  Require(BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(bytes.data()), size) == size,
          "encode key parameter");
  return bytes;
}

}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(written));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

TestKey MakeRsaKey(const std::string& kid, int bits) {
  Pkey pkey(EVP_RSA_gen(static_cast<unsigned int>(bits)));
  Require(pkey != nullptr, "generate RSA key");
  TestKey key{kid, "RS256", PrivatePem(pkey.get()), PublicPem(pkey.get()), Json::object()};
  key.jwk = {{"kty", "RSA"},
             {"kid", kid},
             {"use", "sig"},
             {"alg", "RS256"},
             {"n", Base64UrlEncode(BnParam(pkey.get(), OSSL_PKEY_PARAM_RSA_N))},
             {"e", Base64UrlEncode(BnParam(pkey.get(), OSSL_PKEY_PARAM_RSA_E))}};
  return key;
}

TestKey MakeEcKey(const std::string& kid) {
  Pkey pkey(EVP_EC_gen("P-256"));
  Require(pkey != nullptr, "generate EC key");
  TestKey key{kid, "ES256", PrivatePem(pkey.get()), PublicPem(pkey.get()), Json::object()};
  key.jwk = {{"kty", "EC"},
             {"kid", kid},
             {"use", "sig"},
             {"alg", "ES256"},
             {"crv", "P-256"},
             {"x", Base64UrlEncode(BnParam(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32))},
             {"y", Base64UrlEncode(BnParam(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32))}};
  return key;
}

std::string JwksOf(const std::vector<Json>& jwks) {
  return Json{{"keys", jwks}}.dump();
}

std::string SignWithLibjwt(const Json& claims, jwt_alg_t alg, std::string_view key,
                           const std::map<std::string, std::string>& headers) {
  jwt_t* raw = nullptr;
  Require(jwt_new(&raw) == 0, "jwt_new");
  std::unique_ptr<jwt_t, JwtFree> jwt(raw);
  Require(jwt_add_grants_json(jwt.get(), claims.dump().c_str()) == 0, "jwt_add_grants_json");
  for (const auto& [name, value] : headers) {
    Require(jwt_add_header(jwt.get(), name.c_str(), value.c_str()) == 0, "jwt_add_header");
  }
  Require(jwt_set_alg(jwt.get(), alg, reinterpret_cast<const unsigned char*>(key.data()),
                      static_cast<int>(key.size())) == 0,
          "jwt_set_alg");
  std::unique_ptr<char, CharFree> token(jwt_encode_str(jwt.get()));
  Require(token != nullptr, "jwt_encode_str");
  return std::string(token.get());
}

std::string SignRs256Raw(const Json& header, const Json& payload, const TestKey& key) {
  const std::string signing_input =
      Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(payload.dump());
  Bio bio(BIO_new_mem_buf(key.private_pem.data(), static_cast<int>(key.private_pem.size())));
  Pkey pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  Require(pkey != nullptr, "read private key");
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  Require(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey.get()) == 1,
          "sign init");
  size_t size = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(signing_input.data());
  Require(EVP_DigestSign(ctx.get(), nullptr, &size, data, signing_input.size()) == 1, "sign size");
  std::string signature(size, '\0');
  Require(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size, data,
                         signing_input.size()) == 1,
          "sign");
  signature.resize(size);
  return signing_input + "." + Base64UrlEncode(signature);
}

std::string Unsigned(const Json& header, const Json& payload) {
  return Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(payload.dump()) + ".";
}

void FakeJwksEndpoint::Serve(std::string body) {
  absl::MutexLock lock(&mu_);
  body_ = std::move(body);
  failure_ = absl::OkStatus();
}

void FakeJwksEndpoint::Fail(absl::Status status) {
  absl::MutexLock lock(&mu_);
  failure_ = std::move(status);
}

int FakeJwksEndpoint::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

std::string FakeJwksEndpoint::last_url() const {
  absl::MutexLock lock(&mu_);
  return last_url_;
}

KeySet::Fetcher FakeJwksEndpoint::Fetcher() {
  return [this](const std::string& url) -> absl::StatusOr<std::string> {
    absl::MutexLock lock(&mu_);
    ++calls_;
    last_url_ = url;
    if (!failure_.ok()) return failure_;
    return body_;
  };
}

}  // namespace clinical::identity::test_support

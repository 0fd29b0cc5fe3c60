#include "clinical/http/testing/test_ca.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <utility>

#include "gtest/gtest.h"

namespace clinical::http::testing {
namespace {

struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CertFree {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

Key NewKey() {
  Key key(EVP_EC_gen("P-256"));
  EXPECT_NE(key, nullptr) << "EC key generation failed";
  return key;
}

bool AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  if (extension == nullptr) return false;
  const bool added = X509_add_ext(cert, extension, -1) == 1;
  X509_EXTENSION_free(extension);
  return added;
}

// A certificate for `key` named `common_name`, signed by `issuer` / `issuer_key` (itself
// when null), with the given X.509v3 extensions (NID, value in openssl.cnf syntax).
Cert NewCert(const std::string& common_name, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
             const std::vector<std::pair<int, std::string>>& extensions) {
  Cert cert(X509_new());
  uint64_t serial = 0;
  bool ok = cert != nullptr &&
            RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial) == 1;
  ok = ok && X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
       ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial >> 1) == 1 &&
       X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
       X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600) != nullptr;
  X509_NAME* name = ok ? X509_get_subject_name(cert.get()) : nullptr;
  ok = ok && X509_NAME_add_entry_by_txt(
                 name, "CN", MBSTRING_ASC,
                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0) == 1;
  ok = ok && X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name) == 1 &&
       X509_set_pubkey(cert.get(), key) == 1;
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : extensions) {
    ok = ok && AddExtension(cert.get(), &ctx, nid, value);
  }
  ok = ok && X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()) > 0;
  EXPECT_TRUE(ok) << "certificate for " << common_name << " not made";
  return ok ? std::move(cert) : nullptr;
}

std::string ToPem(const std::function<int(BIO*)>& write) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || write(bio.get()) != 1) {
    ADD_FAILURE() << "PEM encoding failed";
    return "";
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

}  // namespace

struct TestCa::Keys {
  Key key;
  Cert cert;
};

TestCa::TestCa(std::string_view common_name) : keys_(std::make_unique<Keys>()) {
  keys_->key = NewKey();
  if (keys_->key == nullptr) return;
  keys_->cert = NewCert(std::string(common_name), keys_->key.get(), nullptr, nullptr,
                        {{NID_basic_constraints, "critical,CA:TRUE"},
                         {NID_key_usage, "critical,keyCertSign,cRLSign"},
                         {NID_subject_key_identifier, "hash"}});
  if (keys_->cert == nullptr) return;
  std::string path =
      (std::filesystem::temp_directory_path() / "clinical-test-ca-XXXXXX").string();
  const int fd = ::mkstemp(path.data());
  if (fd < 0) {
    ADD_FAILURE() << "cannot create the CA file";
    return;
  }
  const std::string pem =
      ToPem([this](BIO* bio) { return PEM_write_bio_X509(bio, keys_->cert.get()); });
  const bool written = ::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size());
  ::close(fd);
  EXPECT_TRUE(written) << "cannot write the CA file";
  ca_file_ = path;
}

TestCa::~TestCa() {
  if (!ca_file_.empty()) std::filesystem::remove(ca_file_);
}

ServerCredentials TestCa::Issue(const std::vector<std::string>& dns_names,
                                const std::vector<std::string>& ip_addresses) const {
  return IssueNamed("test receiver", dns_names, ip_addresses, {}, "serverAuth");
}

ServerCredentials TestCa::IssueWorkload(const std::string& spiffe_id) const {
  return IssueNamed("test workload", {"localhost"}, {"127.0.0.1"}, {spiffe_id}, "serverAuth,clientAuth");
}

ServerCredentials TestCa::IssueNamed(const std::string& common_name, const std::vector<std::string>& dns_names,
                                     const std::vector<std::string>& ip_addresses,
                                     const std::vector<std::string>& uris,
                                     const std::string& extended_key_usage) const {
  ServerCredentials out;
  if (keys_->cert == nullptr) return out;
  Key key = NewKey();
  if (key == nullptr) return out;
  std::string names;
  for (const std::string& dns : dns_names) names += (names.empty() ? "DNS:" : ",DNS:") + dns;
  for (const std::string& ip : ip_addresses) names += (names.empty() ? "IP:" : ",IP:") + ip;
  for (const std::string& uri : uris) names += (names.empty() ? "URI:" : ",URI:") + uri;
  Cert cert = NewCert(common_name, key.get(), keys_->cert.get(), keys_->key.get(),
                      {{NID_basic_constraints, "critical,CA:FALSE"},
                       {NID_key_usage, "critical,digitalSignature"},
                       {NID_ext_key_usage, extended_key_usage},
                       {NID_subject_key_identifier, "hash"},
                       {NID_authority_key_identifier, "keyid:always"},
                       {NID_subject_alt_name, names}});
  if (cert == nullptr) return out;
  out.certificate_pem = ToPem([&](BIO* bio) { return PEM_write_bio_X509(bio, cert.get()); });
  out.private_key_pem = ToPem([&](BIO* bio) {
    return PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  return out;
}

}  // namespace clinical::http::testing

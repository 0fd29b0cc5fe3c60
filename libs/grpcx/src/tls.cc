#include "clinical/grpcx/tls.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace clinical::grpcx {
namespace {

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Deleter {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

absl::StatusOr<std::string> ReadFile(const std::string& path, const std::string& option) {
  std::ifstream in(path, std::ios::binary);
  if (path.empty() || !in) {
    return absl::FailedPreconditionError(absl::StrCat("config key '", option, "': file not readable"));
  }
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

std::unique_ptr<BIO, BioDeleter> MemoryBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioDeleter>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::unique_ptr<X509, X509Deleter> FirstCertificate(const std::string& pem) {
  auto bio = MemoryBio(pem);
  return std::unique_ptr<X509, X509Deleter>(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

std::shared_ptr<grpc::experimental::FileWatcherCertificateProvider> Provider(const TlsFiles& files) {
  const auto seconds = static_cast<unsigned int>(std::max<int64_t>(1, absl::ToInt64Seconds(files.reload_interval)));
  return std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(files.key_file, files.cert_file,
                                                                              files.ca_file, seconds);
}

}  // namespace

absl::Status CheckTlsFiles(const TlsFiles& files) {
  auto cert_pem = ReadFile(files.cert_file, "tls-cert-file");
  if (!cert_pem.ok()) return cert_pem.status();
  auto key_pem = ReadFile(files.key_file, "tls-key-file");
  if (!key_pem.ok()) return key_pem.status();
  auto ca_pem = ReadFile(files.ca_file, "tls-ca-file");
  if (!ca_pem.ok()) return ca_pem.status();
  auto cert = FirstCertificate(*cert_pem);
  if (cert == nullptr) return absl::FailedPreconditionError("config key 'tls-cert-file': no PEM certificate");
  if (FirstCertificate(*ca_pem) == nullptr) {
    return absl::FailedPreconditionError("config key 'tls-ca-file': no PEM certificate");
  }
  auto key_bio = MemoryBio(*key_pem);
  std::unique_ptr<EVP_PKEY, KeyDeleter> key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) return absl::FailedPreconditionError("config key 'tls-key-file': no PEM private key");
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::FailedPreconditionError("config keys 'tls-cert-file' and 'tls-key-file' do not match");
  }
  if (files.reload_interval < absl::Seconds(1)) {
    return absl::FailedPreconditionError("config key 'tls-reload-interval' must be at least 1s");
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const TlsFiles& files) {
  grpc::experimental::TlsServerCredentialsOptions options(Provider(files));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const TlsFiles& files) {
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(Provider(files));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  return grpc::experimental::TlsCredentials(options);
}

std::vector<config::Option> TlsOptions() {
  using config::OptionType;
  return {
      {"tls-cert-file", OptionType::kString, "",
       "PEM certificate chain of this workload (mTLS on every gRPC connection; required)"},
      {"tls-key-file", OptionType::kString, "", "PEM private key of tls-cert-file (required)"},
      {"tls-ca-file", OptionType::kString, "",
       "PEM CA bundle that peers' certificates must chain to (required)"},
      {"tls-reload-interval", OptionType::kDuration, "60s",
       "how often the TLS files are re-read (rotation without restart)"},
  };
}

absl::StatusOr<TlsFiles> TlsFilesFromConfig(const config::Config& config) {
  TlsFiles files;
  files.cert_file = config.GetString("tls-cert-file");
  files.key_file = config.GetString("tls-key-file");
  files.ca_file = config.GetString("tls-ca-file");
  files.reload_interval = config.GetDuration("tls-reload-interval");
  if (absl::Status checked = CheckTlsFiles(files); !checked.ok()) return checked;
  return files;
}

}  // namespace clinical::grpcx

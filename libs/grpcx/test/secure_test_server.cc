#include "secure_test_server.h"

#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"

namespace clinical::grpcx::testing {
namespace {

void WriteFile(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

}  // namespace

std::string SpiffeId(const std::string& name) {
  return absl::StrCat("spiffe://", kTrustDomain, "/ns/", kNamespace, "/sa/", name);
}

TestPki::TestPki(const std::string& ca_name) : ca_(ca_name) {
  std::random_device entropy;
  dir_ = std::filesystem::temp_directory_path() /
         absl::StrCat("clinical-grpcx-pki-", entropy(), "-", entropy());
  std::filesystem::create_directories(dir_);
}

TestPki::~TestPki() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

TlsFiles TestPki::Workload(const std::string& name) {
  const http::testing::ServerCredentials issued = ca_.IssueWorkload(SpiffeId(name));
  const std::string stem = absl::StrCat(name, "-", ++issued_);
  TlsFiles files;
  files.cert_file = (dir_ / (stem + ".crt")).string();
  files.key_file = (dir_ / (stem + ".key")).string();
  files.ca_file = ca_.ca_file();
  files.reload_interval = absl::Seconds(1);
  WriteFile(files.cert_file, issued.certificate_pem);
  WriteFile(files.key_file, issued.private_key_pem);
  return files;
}

TestIssuer::TestIssuer() : key_(identity::test_support::MakeRsaKey("test-key-1")) {
  endpoint_.Serve(identity::test_support::JwksOf({key_.jwk}));
}

nlohmann::json TestIssuer::Claims(const std::string& user, const std::string& role,
                                  const std::string& tenant) const {
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  nlohmann::json claims = {{"iss", kIssuer}, {"aud", kAudience}, {"exp", now + 600}, {"iat", now},
                           {"sub", user},    {"tenant", tenant}};
  claims["roles"] = role.empty() ? nlohmann::json::array() : nlohmann::json::array({role});
  return claims;
}

std::string TestIssuer::Sign(const nlohmann::json& claims) const {
  return identity::test_support::SignWithLibjwt(claims, JWT_ALG_RS256, key_.private_pem, {{"kid", key_.kid}});
}

identity::VerifierOptions TestIssuer::VerifierOptions() {
  identity::VerifierOptions options;
  options.issuer = kIssuer;
  options.audiences = {kAudience};
  return options;
}

std::shared_ptr<Authenticator> MakeAuthenticator(TestIssuer& issuer, access::Recorder* recorder,
                                                 logging::Logger& logger, metrics::Registry& metrics,
                                                 identity::KeySetOptions key_options) {
  auto keys = std::make_unique<identity::KeySet>(
      issuer.endpoint().Fetcher(), absl::StrCat(kIssuer, "/protocol/openid-connect/certs"), key_options);
  ServicePeers services;
  services.trust_domain = kTrustDomain;
  services.namespace_name = kNamespace;
  auto authenticator = Authenticator::Create(std::move(keys), TestIssuer::VerifierOptions(), std::move(services),
                                             recorder, logger, metrics);
  EXPECT_TRUE(authenticator.ok()) << authenticator.status();
  return authenticator.ok() ? *authenticator : nullptr;
}

ServerOptions SecureServerOptions(TestPki& pki, const std::string& name) {
  ServerOptions options;
  options.tls = pki.Workload(name);
  return options;
}

std::shared_ptr<grpc::Channel> Channel(const std::string& address, const TlsFiles& tls) {
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, ChannelCredentials(tls), arguments);
}

}  // namespace clinical::grpcx::testing

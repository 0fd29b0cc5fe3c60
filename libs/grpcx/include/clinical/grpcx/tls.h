#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clinical/config/config.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace clinical::grpcx {

// The files of one workload's TLS identity: its certificate chain and private key (PEM),
// and the CA bundle it trusts for its peers. Every gRPC server and client of the platform
// is built from these through the two functions below — there is no plaintext mode.
struct TlsFiles {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  // How often the files are re-read: a rotated certificate (cert-manager renewing the
  // mounted secret, the local platform re-issuing one) is used for new connections
  // without a restart.
  absl::Duration reload_interval = absl::Minutes(1);
};

// OK when all three files are readable, parse as PEM and the key matches the certificate;
// FAILED_PRECONDITION naming the option otherwise (never the file's content). Run at start
// so a missing mount stops the process instead of failing every handshake later.
absl::Status CheckTlsFiles(const TlsFiles& files);

// Server side of mTLS: presents the workload's certificate and requires every client to
// present a certificate chaining to `ca_file` (the handshake fails otherwise, before any
// RPC). Plaintext connections are refused.
std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const TlsFiles& files);

// Client side of mTLS: verifies the server's certificate against `ca_file` (including its
// name against the target host) and presents the workload's certificate.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const TlsFiles& files);

// The options that name a workload's TLS files (tls-cert-file, tls-key-file, tls-ca-file,
// tls-reload-interval), for services and for tools.
std::vector<config::Option> TlsOptions();
absl::StatusOr<TlsFiles> TlsFilesFromConfig(const config::Config& config);

}  // namespace clinical::grpcx

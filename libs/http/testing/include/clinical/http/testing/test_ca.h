#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace clinical::http::testing {

// A certificate and its private key, PEM-encoded.
struct ServerCredentials {
  std::string certificate_pem;
  std::string private_key_pem;
};

// A throw-away certificate authority made at run time with OpenSSL (EC P-256, valid from an
// hour ago for a day), so that no key material lives in the repository and nothing needs
// the openssl command. Its certificate is written to a file for a client's CA option; the
// file is removed with the object. Failures are reported as gtest failures.
class TestCa {
 public:
  explicit TestCa(std::string_view common_name);
  ~TestCa();
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  // The PEM file holding this CA's certificate.
  const std::string& ca_file() const { return ca_file_; }

  // A server certificate signed by this CA whose subjectAltName lists `dns_names` and
  // `ip_addresses`.
  ServerCredentials Issue(const std::vector<std::string>& dns_names,
                          const std::vector<std::string>& ip_addresses) const;

  // For receivers on this machine: localhost, 127.0.0.1 and ::1.
  ServerCredentials IssueForLoopback() const {
    return Issue({"localhost"}, {"127.0.0.1", "::1"});
  }

  // A workload certificate (mutual TLS: server and client) for localhost and 127.0.0.1
  // whose URI SAN is `spiffe_id`, e.g. "spiffe://clinical.local/ns/test/sa/case".
  ServerCredentials IssueWorkload(const std::string& spiffe_id) const;

 private:
  ServerCredentials IssueNamed(const std::string& common_name, const std::vector<std::string>& dns_names,
                               const std::vector<std::string>& ip_addresses, const std::vector<std::string>& uris,
                               const std::string& extended_key_usage) const;
  struct Keys;
  std::unique_ptr<Keys> keys_;
  std::string ca_file_;
};

}  // namespace clinical::http::testing

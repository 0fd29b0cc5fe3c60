#pragma once

// Unit-test support for the gRPC layer: a ServiceHost as every service runs it — mutual TLS
// with certificates from a CA made at run time, and the platform's Authenticator verifying
// tokens against a stand-in JWKS endpoint — without any server process around it.

#include <filesystem>
#include <map>
#include <set>
#include <memory>
#include <string>

#include "clinical/access/relations.h"
#include "clinical/grpcx/authenticator.h"
#include "clinical/grpcx/service_host.h"
#include "clinical/grpcx/tls.h"
#include "clinical/http/testing/test_ca.h"
#include "clinical/identity/testing/test_tokens.h"
#include "grpcpp/channel.h"
#include "nlohmann/json.hpp"

namespace clinical::grpcx::testing {

inline constexpr char kIssuer[] = "https://issuer.test/realms/clinical";
inline constexpr char kAudience[] = "clinical-api";
inline constexpr char kTrustDomain[] = "clinical.local";
inline constexpr char kNamespace[] = "test";

// "spiffe://clinical.local/ns/test/sa/<name>".
std::string SpiffeId(const std::string& name);

// A CA made for the test, and TLS files of workloads it certifies, in a temporary folder
// removed at destruction.
class TestPki {
 public:
  explicit TestPki(const std::string& ca_name = "grpcx test CA");
  ~TestPki();
  // Certificate and key files for a workload `name` (SPIFFE ID SpiffeId(name)), with this
  // CA as the trusted CA. Each call issues a new certificate into new files.
  TlsFiles Workload(const std::string& name);
  const std::string& ca_file() const { return ca_.ca_file(); }

 private:
  http::testing::TestCa ca_;
  std::filesystem::path dir_;
  int issued_ = 0;
};

// The issuer: a signing key published through a stand-in JWKS endpoint, and tokens.
class TestIssuer {
 public:
  TestIssuer();
  // Claims of a valid token for the person (claims named as ClaimsNames below); a test
  // changes what it needs and signs with Sign().
  nlohmann::json Claims(const std::string& user, const std::string& role, const std::string& tenant) const;
  std::string Sign(const nlohmann::json& claims) const;
  std::string Token(const std::string& user, const std::string& role, const std::string& tenant) const {
    return Sign(Claims(user, role, tenant));
  }
  const identity::test_support::TestKey& key() const { return key_; }
  identity::test_support::FakeJwksEndpoint& endpoint() { return endpoint_; }
  static identity::VerifierOptions VerifierOptions();

 private:
  identity::test_support::TestKey key_;
  identity::test_support::FakeJwksEndpoint endpoint_;
};

// An Authenticator for `issuer`, accepting SPIFFE service identities of the test trust
// domain and namespace. `recorder` may be null.
std::shared_ptr<Authenticator> MakeAuthenticator(TestIssuer& issuer, access::Recorder* recorder,
                                                 logging::Logger& logger, metrics::Registry& metrics,
                                                 identity::KeySetOptions keys = {});

// Relations as a test declares them: per case id, how every caller stands to it (unknown
// cases are kUnknown), and who supervises whom. Thread-safe once set up.
class FakeRelations : public access::RelationsSource {
 public:
  // Every caller stands to `case_id` as `relations` says (case_id is filled in).
  void Set(const std::string& case_id, access::CaseRelations relations) {
    relations.case_id = case_id;
    cases_[case_id] = std::move(relations);
  }
  // A case of the caller's tenant to which everyone stands in every relationship.
  void Related(const std::string& case_id) {
    access::CaseRelations all;
    all.where = access::CaseRelations::Where::kInTenant;
    all.assigned = all.care_team = all.team_supervisor = all.unassigned = true;
    Set(case_id, all);
  }
  void Supervise(const std::string& supervisor, const std::string& person) { supervised_.insert({supervisor, person}); }

  absl::StatusOr<access::CaseRelations> RelationsTo(const access::Principal&, const std::string& case_id) const override {
    auto it = cases_.find(case_id);
    if (it != cases_.end()) return it->second;
    access::CaseRelations unknown;
    unknown.case_id = case_id;
    return unknown;
  }
  absl::StatusOr<bool> Supervises(const access::Principal& principal, const std::string& person) const override {
    return supervised_.count({principal.user_id, person}) > 0;
  }

 private:
  std::map<std::string, access::CaseRelations> cases_;
  std::set<std::pair<std::string, std::string>> supervised_;
};

// Options of a server on 127.0.0.1 (free port) with the TLS identity of workload `name`.
ServerOptions SecureServerOptions(TestPki& pki, const std::string& name = "case");

// A mutual-TLS channel to `address` presenting `tls`.
std::shared_ptr<grpc::Channel> Channel(const std::string& address, const TlsFiles& tls);

}  // namespace clinical::grpcx::testing

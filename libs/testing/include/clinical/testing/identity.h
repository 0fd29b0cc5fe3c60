#pragma once

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "clinical/grpcx/tls.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/credentials.h"

namespace clinical::testing {

// How tests authenticate, the way real clients do: a mutual-TLS channel with the test
// client's certificate from the platform's CA, and a bearer token that the platform's
// identity provider (the Keycloak that the ctest fixture starts) issued for a person.

// A person as the services will see them: the staff id (claim clinical_user_id), one
// platform role ("case_manager", "supervisor", ...) and the tenant.
struct Person {
  std::string user;
  std::string role;
  std::string tenant;
};

// An access token for `person`, issued by the platform's Keycloak through the password
// grant. The person is created in the realm on first use (through the admin API, with
// only the client `clinical-provisioner`'s user-management rights), one Keycloak user per
// distinct (user, role, tenant), so tests running at the same time never change each
// other's people. Tokens are cached until shortly before they expire. Thread-safe; aborts
// the test with a clear message when the identity provider is unreachable.
std::string TokenFor(const Person& person);
// The same through another client of the realm: "clinical-demo" (RS256, the default),
// "clinical-demo-es256" (ES256 access tokens).
std::string TokenFor(const Person& person, const std::string& client_id);

// Adds `authorization: Bearer <TokenFor(person)>` to `context`; nothing when person.user
// is empty (a call without a token).
void Authenticate(grpc::ClientContext& context, const Person& person);

// A client context with a deadline, authenticated as `person` (see Authenticate).
std::unique_ptr<grpc::ClientContext> ContextAs(const Person& person, absl::Duration deadline = absl::Seconds(30));

// The identity provider's side, for tests that need tokens the realm would never issue.
// The realm publishes a test signing key (deploy/local/lib/keycloak.sh) besides its own:
// RealmTestSigningKey() is its private key (PEM) and RealmKeyId(pem) the kid under which
// the realm publishes an RSA key ("" if it does not). PublishRealmKey adds a new RSA
// signing key to the realm, as an operator rotating keys would (admin API), and returns
// its kid once the realm's JWKS shows it.
std::string RealmTestSigningKey();
std::string RealmKeyId(const std::string& private_pem);
std::string PublishRealmKey(const std::string& private_pem);

// The TLS identity of the test client ("test-client": a client certificate that is not a
// service's, so every call needs a person's token) and of a platform service.
grpcx::TlsFiles ClientTls();
grpcx::TlsFiles ServiceTls(const std::string& service);

// A channel to `address` ("127.0.0.1:PORT") over mutual TLS with `tls` (ClientTls() by
// default), on a private subchannel pool so that closing it cannot keep a server's drain
// waiting (gRPC 1.51 waits out the grace for idle connections).
std::shared_ptr<grpc::Channel> SecureChannel(const std::string& address);
std::shared_ptr<grpc::Channel> SecureChannel(const std::string& address, const grpcx::TlsFiles& tls);

}  // namespace clinical::testing

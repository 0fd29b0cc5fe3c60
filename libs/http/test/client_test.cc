// The HTTPS client against HTTPS servers in this process, on loopback addresses and ports
// chosen by the kernel, with certificates from CAs made at run time.
#include "clinical/http/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>

#include "clinical/http/testing/test_ca.h"
#include "clinical/http/testing/tls_test_server.h"
#include "clinical/testing/wait.h"
#include "gtest/gtest.h"

namespace clinical::http {
namespace {

using http::testing::Reply;
using http::testing::ReceivedRequest;
using http::testing::TestCa;
using http::testing::TlsTestServer;

Url MustParse(const std::string& text) {
  auto url = ParseHttpsUrl(text);
  EXPECT_TRUE(url.ok()) << url.status();
  return url.value_or(Url{});
}

AddressPolicy MustAllow(const std::string& allow) {
  auto policy = ParseAllowList(allow);
  EXPECT_TRUE(policy.ok()) << policy.status();
  return policy.value_or(AddressPolicy{});
}

// Options that trust `ca` and allow 127.0.0.1:<port>.
RequestOptions Trusting(const TestCa& ca, int port) {
  RequestOptions options;
  options.timeout = absl::Seconds(5);
  options.ca_file = ca.ca_file();
  options.policy = MustAllow("127.0.0.1:" + std::to_string(port));
  return options;
}

std::string Local(int port, const std::string& path = "/") {
  return "https://127.0.0.1:" + std::to_string(port) + path;
}

// A port nothing listens on (bound, read, closed).
int ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

Reply Ok(std::string body = "hello") {
  Reply reply;
  reply.body = std::move(body);
  return reply;
}

TEST(ClientTest, GetsFromAReceiverWhoseCertificateComesFromTheGivenCa) {
  TestCa ca("client-test-ca");
  TlsTestServer server(ca.IssueForLoopback(), [](const ReceivedRequest&) { return Ok(); });
  auto response = Client().Get(MustParse(Local(server.port(), "/keys?x=1")), {},
                               Trusting(ca, server.port()));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "hello");
}

TEST(ClientTest, PostsTheBodyAndHeadersAsGiven) {
  TestCa ca("client-test-ca");
  std::mutex mutex;
  ReceivedRequest seen;
  TlsTestServer server(ca.IssueForLoopback(), [&](const ReceivedRequest& request) {
    std::lock_guard<std::mutex> lock(mutex);
    seen = request;
    Reply reply = Ok("");
    reply.status = 202;
    return std::optional<Reply>(reply);
  });
  // Larger than 1 KiB, where older libcurls start sending "Expect: 100-continue".
  const std::string body = std::string(3000, 'x') + "{\"a\":1}";
  auto response = Client().Post(MustParse(Local(server.port(), "/hook")),
                                {{"Content-Type", "application/json"}, {"X-Test", "v1=abc"}},
                                body, Trusting(ca, server.port()));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 202);
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.target, "/hook");
  EXPECT_EQ(seen.body, body);
  EXPECT_EQ(seen.Header("content-type"), "application/json");
  EXPECT_EQ(seen.Header("x-test"), "v1=abc");
  EXPECT_EQ(seen.Header("expect"), "");
}

TEST(ClientTest, ACertificateFromAnotherCaIsRefused) {
  TestCa receiver_ca("receiver-ca");
  TestCa trusted_ca("trusted-ca");
  TlsTestServer server(receiver_ca.IssueForLoopback(),
                       [](const ReceivedRequest&) { return Ok(); });
  auto response =
      Client().Get(MustParse(Local(server.port())), {}, Trusting(trusted_ca, server.port()));
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(FailureReason(response.status()), "tls") << response.status();
  EXPECT_TRUE(clinical::testing::WaitUntil([&] { return server.handshakes_failed() == 1; },
                                           absl::Seconds(5)));
  EXPECT_EQ(server.requests(), 0);
}

TEST(ClientTest, TheSystemBundleDoesNotTrustATestCa) {
  TestCa ca("client-test-ca");
  TlsTestServer server(ca.IssueForLoopback(), [](const ReceivedRequest&) { return Ok(); });
  RequestOptions options = Trusting(ca, server.port());
  options.ca_file.clear();
  auto response = Client().Get(MustParse(Local(server.port())), {}, options);
  EXPECT_EQ(FailureReason(response.status()), "tls") << response.status();
}

TEST(ClientTest, ACertificateForAnotherHostIsRefused) {
  TestCa ca("client-test-ca");
  TlsTestServer server(ca.Issue({"receiver.example"}, {"10.0.0.1"}),
                       [](const ReceivedRequest&) { return Ok(); });
  auto response = Client().Get(MustParse(Local(server.port())), {}, Trusting(ca, server.port()));
  EXPECT_EQ(FailureReason(response.status()), "tls") << response.status();
  EXPECT_EQ(server.requests(), 0);
}

TEST(ClientTest, AnUnreadableCaFileIsAFailedPrecondition) {
  TestCa ca("client-test-ca");
  TlsTestServer server(ca.IssueForLoopback(), [](const ReceivedRequest&) { return Ok(); });
  RequestOptions options = Trusting(ca, server.port());
  options.ca_file = "/nonexistent/ca.pem";
  auto response = Client().Get(MustParse(Local(server.port())), {}, options);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kFailedPrecondition) << response.status();
  EXPECT_EQ(FailureReason(response.status()), "tls");
}

TEST(ClientTest, LoopbackWithoutAnAllowEntryIsRefusedBeforeAnyConnection) {
  TestCa ca("client-test-ca");
  TlsTestServer server(ca.IssueForLoopback(), [](const ReceivedRequest&) { return Ok(); });
  RequestOptions options = Trusting(ca, server.port());
  options.policy = AddressPolicy();
  auto response = Client().Get(MustParse(Local(server.port())), {}, options);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(FailureReason(response.status()), "address_refused") << response.status();
  // An entry for another port of the same host does not help either.
  options.policy = MustAllow("127.0.0.1:" + std::to_string(server.port() == 1 ? 2 : 1));
  response = Client().Get(MustParse(Local(server.port())), {}, options);
  EXPECT_EQ(FailureReason(response.status()), "address_refused") << response.status();
  EXPECT_EQ(server.connections(), 0);
}

TEST(ClientTest, EveryResolvedAddressIsTriedUntilOneIsAllowedAndListens) {
  TestCa ca("client-test-ca");
  // Listens on 127.0.0.1 only; "localhost" is made to resolve to ::1 first.
  TlsTestServer server(ca.IssueForLoopback(), [](const ReceivedRequest&) { return Ok(); });
  const Url url = MustParse("https://localhost:" + std::to_string(server.port()) + "/");
  RequestOptions options = Trusting(ca, server.port());
  options.resolve_to = {"::1", "127.0.0.1"};

  // Both allowed by name: ::1 is refused by the kernel (nothing listens), 127.0.0.1 answers.
  options.policy = MustAllow("localhost:" + std::to_string(server.port()));
  auto response = Client().Get(url, {}, options);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);

  // Only the IPv4 loopback block allowed: ::1 is refused by the policy, 127.0.0.1 answers.
  options.policy = MustAllow("127.0.0.0/8");
  response = Client().Get(url, {}, options);
  ASSERT_TRUE(response.ok()) << response.status();

  // Nothing allowed: every address refused.
  options.policy = AddressPolicy();
  response = Client().Get(url, {}, options);
  EXPECT_EQ(FailureReason(response.status()), "address_refused") << response.status();
  EXPECT_EQ(server.requests(), 2);

  options.resolve_to = {"localhost"};
  EXPECT_EQ(FailureReason(Client().Get(url, {}, options).status()), "request");
}

TEST(ClientTest, AReceiverThatNeverAnswersTimesOutWithinTheBound) {
  TestCa ca("client-test-ca");
  TlsTestServer server(ca.IssueForLoopback(),
                       [](const ReceivedRequest&) { return std::optional<Reply>(); });
  RequestOptions options = Trusting(ca, server.port());
  options.timeout = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  auto response = Client().Get(MustParse(Local(server.port())), {}, options);
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(response.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(FailureReason(response.status()), "timeout") << response.status();
  EXPECT_GE(took, absl::Milliseconds(250));  // libcurl and absl read different clocks
  EXPECT_LT(took, absl::Seconds(2));
  EXPECT_EQ(server.requests(), 1);
}

TEST(ClientTest, NothingListeningIsAConnectFailure) {
  TestCa ca("client-test-ca");
  const int port = ClosedPort();
  auto response = Client().Get(MustParse(Local(port)), {}, Trusting(ca, port));
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(FailureReason(response.status()), "connect") << response.status();
}

TEST(ClientTest, AResponseLargerThanTheCapAborts) {
  TestCa ca("client-test-ca");
  std::atomic<bool> with_length{true};
  TlsTestServer server(ca.IssueForLoopback(), [&](const ReceivedRequest&) {
    Reply reply = Ok(std::string(5000, 'x'));
    reply.content_length = with_length;
    return std::optional<Reply>(reply);
  });
  RequestOptions options = Trusting(ca, server.port());
  options.max_response_bytes = 4096;
  auto response = Client().Get(MustParse(Local(server.port())), {}, options);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(FailureReason(response.status()), "too_large") << response.status();
  with_length = false;  // read until the server closes: the cap applies while reading
  response = Client().Get(MustParse(Local(server.port())), {}, options);
  EXPECT_EQ(FailureReason(response.status()), "too_large") << response.status();
  options.max_response_bytes = 5000;
  response = Client().Get(MustParse(Local(server.port())), {}, options);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body.size(), 5000u);
}

TEST(ClientTest, RedirectsAreReturnedNotFollowed) {
  TestCa ca("client-test-ca");
  TlsTestServer server(ca.IssueForLoopback(), [](const ReceivedRequest&) {
    Reply reply = Ok("");
    reply.status = 302;
    reply.headers = {{"Location", "/elsewhere"}};
    return std::optional<Reply>(reply);
  });
  auto response = Client().Get(MustParse(Local(server.port())), {}, Trusting(ca, server.port()));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 302);
  EXPECT_EQ(server.requests(), 1);
}

TEST(ClientTest, ProxySettingsFromTheEnvironmentAreIgnored) {
  TestCa ca("client-test-ca");
  TlsTestServer server(ca.IssueForLoopback(), [](const ReceivedRequest&) { return Ok(); });
  const std::string proxy = "http://127.0.0.1:" + std::to_string(ClosedPort());
  for (const char* name : {"https_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"}) {
    ::setenv(name, proxy.c_str(), 1);
  }
  auto response = Client().Get(MustParse(Local(server.port())), {}, Trusting(ca, server.port()));
  for (const char* name : {"https_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"}) {
    ::unsetenv(name);
  }
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
}

TEST(ClientTest, InvalidRequestsAreRefusedBeforeAnyConnection) {
  TestCa ca("client-test-ca");
  TlsTestServer server(ca.IssueForLoopback(), [](const ReceivedRequest&) { return Ok(); });
  const Url url = MustParse(Local(server.port()));
  const RequestOptions options = Trusting(ca, server.port());
  for (const Headers& headers :
       {Headers{{"X-Id", "a\r\nX-Injected: 1"}}, Headers{{"X-Id", "a\nb"}},
        Headers{{"Bad Name", "v"}}, Headers{{"", "v"}}, Headers{{"Host", "evil.example"}},
        Headers{{"Content-Length", "0"}}, Headers{{"transfer-encoding", "chunked"}}}) {
    auto response = Client().Post(url, headers, "{}", options);
    EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(FailureReason(response.status()), "request");
  }
  RequestOptions no_time = options;
  no_time.timeout = absl::ZeroDuration();
  EXPECT_EQ(FailureReason(Client().Get(url, {}, no_time).status()), "request");
  EXPECT_EQ(server.connections(), 0);
}

TEST(ClientTest, FailureReasonIsEmptyForStatusesFromElsewhere) {
  EXPECT_EQ(FailureReason(absl::OkStatus()), "");
  EXPECT_EQ(FailureReason(absl::UnavailableError("broker down")), "");
}

TEST(ClientTest, ValidateCaFileWantsAReadablePemCertificate) {
  TestCa ca("client-test-ca");
  EXPECT_TRUE(ValidateCaFile(ca.ca_file()).ok());
  EXPECT_EQ(ValidateCaFile("/nonexistent/ca.pem").code(), absl::StatusCode::kInvalidArgument);
  const std::string not_pem = ca.ca_file() + ".txt";
  std::ofstream(not_pem) << "not a certificate\n";
  EXPECT_EQ(ValidateCaFile(not_pem).code(), absl::StatusCode::kInvalidArgument);
  std::filesystem::remove(not_pem);
}

}  // namespace
}  // namespace clinical::http

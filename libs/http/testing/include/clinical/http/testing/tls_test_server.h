#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "clinical/http/testing/test_ca.h"

namespace clinical::http::testing {

// One HTTP/1.1 request as the server read it.
struct ReceivedRequest {
  std::string method;
  std::string target;
  std::string head;  // the request line and header fields, CRLF-separated
  std::string body;  // Content-Length bytes

  // The first header field named `name` (case-insensitive), trimmed; empty if absent.
  std::string Header(std::string_view name) const;
};

struct Reply {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra header fields
  // false: no Content-Length; the body ends when the server closes the connection.
  bool content_length = true;
};

// Decides the reply to a request; nullopt holds the connection open without answering
// until the client gives up or the server stops (a receiver that never answers).
using Handler = std::function<std::optional<Reply>(const ReceivedRequest&)>;

// An HTTPS server for tests of HTTPS clients, in the test process: listens on a loopback
// address (`bind_address`, 127.0.0.1 or ::1) and a port chosen by the kernel, serves one
// connection at a time, one request per connection ("Connection: close"). The handler runs
// on the server's thread. Every wait is bounded (50 ms polls, 2 s socket timeouts), and the
// destructor stops and joins the thread.
class TlsTestServer {
 public:
  TlsTestServer(const ServerCredentials& credentials, Handler handler,
                std::string_view bind_address = "127.0.0.1");
  ~TlsTestServer();
  TlsTestServer(const TlsTestServer&) = delete;
  TlsTestServer& operator=(const TlsTestServer&) = delete;

  int port() const { return port_; }
  int connections() const { return connections_; }        // TCP connections accepted
  int handshakes_failed() const { return handshakes_failed_; }
  int requests() const { return requests_; }              // complete requests read

 private:
  struct Tls;
  void Run();
  void Serve(int fd);

  std::unique_ptr<Tls> tls_;
  const Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> handshakes_failed_{0};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

}  // namespace clinical::http::testing

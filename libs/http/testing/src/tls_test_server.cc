#include "clinical/http/testing/tls_test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace clinical::http::testing {
namespace {

struct CtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

constexpr size_t kMaxRequestBytes = 1 << 20;

bool LoadCredentials(SSL_CTX* ctx, const ServerCredentials& credentials) {
  BIO* cert_bio = BIO_new_mem_buf(credentials.certificate_pem.data(),
                                  static_cast<int>(credentials.certificate_pem.size()));
  BIO* key_bio = BIO_new_mem_buf(credentials.private_key_pem.data(),
                                 static_cast<int>(credentials.private_key_pem.size()));
  X509* cert = cert_bio ? PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr) : nullptr;
  EVP_PKEY* key = key_bio ? PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr) : nullptr;
  const bool ok = cert != nullptr && key != nullptr && SSL_CTX_use_certificate(ctx, cert) == 1 &&
                  SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  X509_free(cert);
  EVP_PKEY_free(key);
  BIO_free(cert_bio);
  BIO_free(key_bio);
  return ok;
}

std::string ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 302: return "Found";
    case 401: return "Unauthorized";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

}  // namespace

struct TlsTestServer::Tls {
  std::unique_ptr<SSL_CTX, CtxFree> ctx;
};

std::string ReceivedRequest::Header(std::string_view name) const {
  const std::string wanted = absl::AsciiStrToLower(std::string(name));
  for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    if (absl::AsciiStrToLower(line.substr(0, colon)) == wanted) {
      return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    }
  }
  return "";
}

TlsTestServer::TlsTestServer(const ServerCredentials& credentials, Handler handler,
                             std::string_view bind_address)
    : tls_(std::make_unique<Tls>()), handler_(std::move(handler)) {
  tls_->ctx.reset(SSL_CTX_new(TLS_server_method()));
  if (tls_->ctx == nullptr || SSL_CTX_set_min_proto_version(tls_->ctx.get(), TLS1_2_VERSION) != 1 ||
      !LoadCredentials(tls_->ctx.get(), credentials)) {
    ADD_FAILURE() << "TLS server context not set up";
    return;
  }
  sockaddr_storage address{};
  socklen_t length = 0;
  const std::string text(bind_address);
  if (auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
      ::inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    length = sizeof(sockaddr_in);
  } else if (auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
             ::inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    length = sizeof(sockaddr_in6);
  } else {
    ADD_FAILURE() << "not an address: " << text;
    return;
  }
  listen_fd_ = ::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ADD_FAILURE() << "cannot listen on " << text << ": " << std::strerror(errno);
    return;
  }
  port_ = ntohs(address.ss_family == AF_INET
                    ? reinterpret_cast<sockaddr_in*>(&address)->sin_port
                    : reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
  thread_ = std::thread([this] { Run(); });
}

TlsTestServer::~TlsTestServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void TlsTestServer::Run() {
  // A client that gives up mid-reply must not kill the test process: with SIGPIPE blocked
  // on this thread, a write to a closed connection fails with EPIPE instead.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++connections_;
    Serve(fd);
    ::close(fd);
  }
}

void TlsTestServer::Serve(int fd) {
  // Bounds every blocking TLS read and write on this connection.
  const timeval limit{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(tls_->ctx.get()));
  if (ssl == nullptr || SSL_set_fd(ssl.get(), fd) != 1 || SSL_accept(ssl.get()) != 1) {
    ++handshakes_failed_;
    ERR_clear_error();
    return;
  }
  std::string data;
  size_t header_end = std::string::npos;
  size_t content_length = 0;
  ReceivedRequest request;
  while (data.size() < kMaxRequestBytes) {
    char buffer[4096];
    const int n = SSL_read(ssl.get(), buffer, sizeof buffer);
    if (n <= 0) {
      ERR_clear_error();
      return;
    }
    data.append(buffer, static_cast<size_t>(n));
    if (header_end == std::string::npos) {
      header_end = data.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        request.head = data.substr(0, header_end);
        if (!absl::SimpleAtoi(request.Header("content-length"), &content_length)) {
          content_length = 0;
        }
      }
    }
    if (header_end != std::string::npos && data.size() >= header_end + 4 + content_length) break;
  }
  if (header_end == std::string::npos || data.size() < header_end + 4 + content_length) return;
  const std::vector<std::string> request_line =
      absl::StrSplit(request.head.substr(0, request.head.find("\r\n")), ' ');
  if (request_line.size() >= 2) {
    request.method = request_line[0];
    request.target = request_line[1];
  }
  request.body = data.substr(header_end + 4, content_length);
  ++requests_;
  const std::optional<Reply> reply = handler_(request);
  if (!reply.has_value()) {
    // Never answer: keep the connection until the client closes it or the server stops.
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buffer[256];
      if (SSL_read(ssl.get(), buffer, sizeof buffer) <= 0) break;
    }
    ERR_clear_error();
    return;
  }
  std::string response = absl::StrCat("HTTP/1.1 ", reply->status, " ",
                                      ReasonPhrase(reply->status), "\r\nConnection: close\r\n");
  if (reply->content_length) {
    absl::StrAppend(&response, "Content-Length: ", reply->body.size(), "\r\n");
  }
  for (const auto& [name, value] : reply->headers) {
    absl::StrAppend(&response, name, ": ", value, "\r\n");
  }
  absl::StrAppend(&response, "\r\n", reply->body);
  SSL_write(ssl.get(), response.data(), static_cast<int>(response.size()));
  SSL_shutdown(ssl.get());
  ERR_clear_error();
}

}  // namespace clinical::http::testing

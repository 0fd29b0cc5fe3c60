#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "clinical/metrics/http_server.h"
#include "clinical/metrics/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clinical::metrics {
namespace {

using ::testing::HasSubstr;

TEST(RegistryTest, RendersCountersWithHelpTypeAndEscapedLabels) {
  Registry registry;
  registry.GetCounter("requests_total", "Requests.", {{"code", "OK"}, {"path", "a\"b\\c"}}).Increment(3);
  registry.GetCounter("requests_total", "Requests.", {{"code", "OK"}, {"path", "a\"b\\c"}}).Increment();
  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("# HELP requests_total Requests.\n# TYPE requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("requests_total{code=\"OK\",path=\"a\\\"b\\\\c\"} 4\n"));
}

TEST(RegistryTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  Registry registry;
  Histogram& latency = registry.GetHistogram("latency_seconds", "Latency.", {{"m", "x"}}, {0.1, 1});
  latency.Observe(0.05);
  latency.Observe(0.5);
  latency.Observe(7);
  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("latency_seconds_bucket{m=\"x\",le=\"0.1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_bucket{m=\"x\",le=\"1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_bucket{m=\"x\",le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_sum{m=\"x\"} 7.55\n"));
  EXPECT_THAT(text, HasSubstr("latency_seconds_count{m=\"x\"} 3\n"));
}

TEST(RegistryTest, CollectorsReportAtScrapeTime) {
  Registry registry;
  int lag = 5;
  registry.AddCollector([&lag](Sink& sink) {
    sink.Gauge("projection_lag", "Lag.", {{"partition", "0"}}, lag);
  });
  EXPECT_THAT(registry.Render(), HasSubstr("projection_lag{partition=\"0\"} 5\n"));
  lag = 0;
  EXPECT_THAT(registry.Render(), HasSubstr("projection_lag{partition=\"0\"} 0\n"));
  EXPECT_THAT(registry.Render(), HasSubstr("# TYPE projection_lag gauge\n"));
}

std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return "";
  }
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
  send(fd, request.data(), request.size(), 0);
  std::string response;
  char buffer[4096];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) response.append(buffer, static_cast<size_t>(n));
  close(fd);
  return response;
}

TEST(MetricsServerTest, ServesTheExpositionOverHttp) {
  Registry registry;
  registry.GetCounter("up_total", "Up.", {}).Increment();
  MetricsServer server(registry);
  auto port = server.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string response = HttpGet(*port, "/metrics");
  EXPECT_THAT(response, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(response, HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(response, HasSubstr("\r\n\r\n# HELP up_total Up.\n"));
  EXPECT_THAT(HttpGet(*port, "/other"), HasSubstr("404"));
  server.Stop();
  EXPECT_EQ(HttpGet(*port, "/metrics"), "") << "a stopped server must not answer";
}

}  // namespace
}  // namespace clinical::metrics

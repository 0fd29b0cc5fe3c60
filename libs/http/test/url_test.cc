// ParseHttpsUrl: https only, through libcurl's URL parser, never echoing the URL.
#include "clinical/http/url.h"

#include <string>

#include "gtest/gtest.h"

namespace clinical::http {
namespace {

TEST(UrlTest, ParsesHttpsUrlsWithTheirHostAndPort) {
  auto url = ParseHttpsUrl("https://gw.example:8443/hook/v1?token=abc");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->host, "gw.example");
  EXPECT_EQ(url->port, 8443);
  EXPECT_EQ(url->spec, "https://gw.example:8443/hook/v1?token=abc");
  EXPECT_EQ(url->Origin(), "https://gw.example:8443");

  auto defaults = ParseHttpsUrl("HTTPS://GW.Example");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->host, "gw.example");
  EXPECT_EQ(defaults->port, 443);

  auto v6 = ParseHttpsUrl("https://[0:0:0:0:0:0:0:1]:9443/x");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->Origin(), "https://[::1]:9443");

  auto literal = ParseHttpsUrl("https://127.0.0.1:1/");
  ASSERT_TRUE(literal.ok());
  EXPECT_EQ(literal->host, "127.0.0.1");
  EXPECT_EQ(literal->port, 1);
}

TEST(UrlTest, TheHostIsTheOneLibcurlConnectsTo) {
  // libcurl reads other spellings of an IPv4 address, and a third slash, its own way; the
  // host reported (and matched against host:port allow entries) is libcurl's reading.
  EXPECT_EQ(ParseHttpsUrl("https://0x7f.1/")->host, "127.0.0.1");
  EXPECT_EQ(ParseHttpsUrl("https://2130706433/")->host, "127.0.0.1");
  EXPECT_EQ(ParseHttpsUrl("https://[::FFFF:127.0.0.1]/")->host, "::ffff:127.0.0.1");
  EXPECT_EQ(ParseHttpsUrl("https:///hook")->host, "hook");
}

TEST(UrlTest, RefusesEverythingButHttpsWithAHostAndNoCredentials) {
  for (const char* text :
       {"", "http://gw.example/hook", "ftp://gw.example/", "file:///etc/passwd",
        "gw.example/hook", "//gw.example/hook", "https://", "https:////hook", "https://:443/",
        "https://user@gw.example/", "https://user:pw@gw.example/", "https://:pw@gw.example/", "https://@gw.example/",
        "https://gw.example:0/", "https://gw.example:65536/", "https://gw.example:-1/",
        "https://gw.example:port/", "https://[fe80::1%25eth0]/", "https://gw example/",
        "https://gw.example/\r\nX: y", "javascript:alert(1)"}) {
    auto url = ParseHttpsUrl(text);
    EXPECT_EQ(url.status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
  EXPECT_FALSE(ParseHttpsUrl(std::string("https://gw.example/\0.evil", 25)).ok());
  EXPECT_FALSE(ParseHttpsUrl("https://gw.example/" + std::string(9000, 'a')).ok());
}

TEST(UrlTest, ErrorsNeverRepeatTheUrl) {
  for (const char* text :
       {"http://gw.example/hook?token=s3cr3t", "https://user:s3cr3t@gw.example/",
        "https://gw.example:99999/?token=s3cr3t", "s3cr3t://gw.example/"}) {
    auto url = ParseHttpsUrl(text);
    ASSERT_FALSE(url.ok()) << text;
    EXPECT_EQ(url.status().message().find("s3cr3t"), absl::string_view::npos) << url.status();
    EXPECT_EQ(url.status().message().find("gw.example"), absl::string_view::npos) << url.status();
  }
}

}  // namespace
}  // namespace clinical::http

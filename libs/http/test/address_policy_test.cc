// AddressPolicy, IpNetwork and ParseAllowList: which addresses a connection may go to.
#include "clinical/http/address_policy.h"

#include <string>

#include "gtest/gtest.h"

namespace clinical::http {
namespace {

IpAddress Ip(const std::string& text) {
  std::optional<IpAddress> ip = IpAddress::Parse(text);
  EXPECT_TRUE(ip.has_value()) << text;
  return ip.value_or(IpAddress::V4({0, 0, 0, 0}));
}

std::string Range(const std::string& text) {
  return std::string(RefusedRange(Ip(text)).value_or("allowed"));
}

TEST(AddressPolicyTest, EveryRefusedRangeIsNamed) {
  for (const char* ip : {"127.0.0.1", "127.255.255.254", "127.1.2.3", "::1"}) {
    EXPECT_EQ(Range(ip), "loopback") << ip;
  }
  for (const char* ip : {"169.254.0.1", "169.254.255.255", "fe80::1", "febf:ffff::1"}) {
    EXPECT_EQ(Range(ip), "link_local") << ip;
  }
  for (const char* ip : {"169.254.169.254", "fd00:ec2::254", "100.100.100.200"}) {
    EXPECT_EQ(Range(ip), "metadata") << ip;
  }
  for (const char* ip : {"0.0.0.0", "0.1.2.3", "::"}) EXPECT_EQ(Range(ip), "unspecified") << ip;
  for (const char* ip : {"224.0.0.1", "239.255.255.250", "ff02::1", "ff05::1:3"}) {
    EXPECT_EQ(Range(ip), "multicast") << ip;
  }
  EXPECT_EQ(Range("255.255.255.255"), "broadcast");
}

TEST(AddressPolicyTest, Ipv6FormsEmbeddingARefusedIpv4AddressAreRefused) {
  EXPECT_EQ(Range("::ffff:127.0.0.1"), "loopback");         // IPv4-mapped
  EXPECT_EQ(Range("::ffff:7f00:1"), "loopback");            // the same, hex spelling
  EXPECT_EQ(Range("::ffff:169.254.169.254"), "metadata");
  EXPECT_EQ(Range("::ffff:100.100.100.200"), "metadata");
  EXPECT_EQ(Range("::ffff:169.254.1.1"), "link_local");
  EXPECT_EQ(Range("::ffff:0.0.0.0"), "unspecified");
  EXPECT_EQ(Range("::ffff:224.0.0.1"), "multicast");
  EXPECT_EQ(Range("::ffff:255.255.255.255"), "broadcast");
  EXPECT_EQ(Range("::127.0.0.1"), "loopback");              // IPv4-compatible
  EXPECT_EQ(Range("::169.254.169.254"), "metadata");
  EXPECT_EQ(Range("64:ff9b::127.0.0.1"), "loopback");       // NAT64 well-known prefix
  EXPECT_EQ(Range("64:ff9b::a9fe:a9fe"), "metadata");
  EXPECT_EQ(Range("::ffff:10.1.2.3"), "allowed");
}

TEST(AddressPolicyTest, PrivateAndPublicRangesAreAllowedByDefault) {
  const AddressPolicy policy;
  for (const char* ip : {"10.0.0.1", "172.16.0.1", "172.31.255.254", "192.168.1.10",
                         "100.64.0.1", "100.100.100.199", "8.8.8.8", "169.253.255.255",
                         "169.255.0.1", "fc00::1", "fd12:3456::1", "fd00:ec2::253",
                         "2001:db8::1", "fec0::1"}) {
    EXPECT_TRUE(policy.Permits(Ip(ip), "receiver.example", 443)) << ip;
  }
  for (const char* ip : {"127.0.0.1", "::1", "169.254.169.254", "::ffff:127.0.0.1", "0.0.0.0"}) {
    EXPECT_FALSE(policy.Permits(Ip(ip), "receiver.example", 443)) << ip;
  }
}

TEST(AddressPolicyTest, CidrEntriesAllowTheirBlockOnly) {
  auto policy = ParseAllowList("127.0.0.0/8, fe80::/64,169.254.169.254/32");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_TRUE(policy->Permits(Ip("127.0.0.1"), "any", 1));
  EXPECT_TRUE(policy->Permits(Ip("127.9.9.9"), "any", 65535));
  EXPECT_TRUE(policy->Permits(Ip("::ffff:127.0.0.1"), "any", 1));  // same destination
  EXPECT_TRUE(policy->Permits(Ip("fe80::1"), "any", 1));
  EXPECT_FALSE(policy->Permits(Ip("fe80:0:0:1::1"), "any", 1));
  EXPECT_TRUE(policy->Permits(Ip("169.254.169.254"), "any", 1));
  EXPECT_FALSE(policy->Permits(Ip("169.254.169.253"), "any", 1));
  EXPECT_FALSE(policy->Permits(Ip("::1"), "any", 1));  // a v4 block is not v6 loopback
  EXPECT_FALSE(policy->Permits(Ip("::127.0.0.1"), "any", 1));

  auto v6 = ParseAllowList("::1/128");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(v6->Permits(Ip("::1"), "any", 1));
  EXPECT_FALSE(v6->Permits(Ip("127.0.0.1"), "any", 1));
  auto odd_prefix = ParseAllowList("127.0.0.0/9");
  ASSERT_TRUE(odd_prefix.ok());
  EXPECT_TRUE(odd_prefix->Permits(Ip("127.127.255.255"), "any", 1));
  EXPECT_FALSE(odd_prefix->Permits(Ip("127.128.0.0"), "any", 1));
}

TEST(AddressPolicyTest, HostPortEntriesAllowThatHostOnThatPortWhateverItResolvesTo) {
  auto policy = ParseAllowList("Localhost:8443,127.0.0.1:9443,[::1]:7443, metadata.internal:80");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_TRUE(policy->Permits(Ip("127.0.0.1"), "localhost", 8443));
  EXPECT_TRUE(policy->Permits(Ip("::1"), "localhost", 8443));
  EXPECT_FALSE(policy->Permits(Ip("127.0.0.1"), "localhost", 8444));
  EXPECT_FALSE(policy->Permits(Ip("127.0.0.1"), "localhost.example", 8443));
  EXPECT_TRUE(policy->Permits(Ip("127.0.0.1"), "127.0.0.1", 9443));
  EXPECT_FALSE(policy->Permits(Ip("127.0.0.1"), "127.0.0.1", 8443));
  EXPECT_TRUE(policy->Permits(Ip("::1"), "::1", 7443));
  EXPECT_TRUE(policy->Permits(Ip("169.254.169.254"), "metadata.internal", 80));
  EXPECT_FALSE(policy->Permits(Ip("169.254.169.254"), "other.internal", 80));

  AddressPolicy direct;
  direct.AllowEndpoint("[0:0:0:0:0:0:0:1]", 443);  // canonicalised like Url::host
  EXPECT_TRUE(direct.Permits(Ip("::1"), "::1", 443));
}

TEST(AddressPolicyTest, EmptyAllowListIsTheDefaultPolicy) {
  for (const char* text : {"", " ", ",", " , ,"}) {
    auto policy = ParseAllowList(text);
    ASSERT_TRUE(policy.ok()) << "'" << text << "'";
    EXPECT_FALSE(policy->Permits(Ip("127.0.0.1"), "127.0.0.1", 443));
    EXPECT_TRUE(policy->Permits(Ip("10.0.0.1"), "gw", 443));
  }
}

TEST(AddressPolicyTest, MalformedAllowListsAreRefusedNamingTheEntry) {
  for (const char* text :
       {"127.0.0.1",        // a bare address: block or endpoint?
        "localhost",        // no port
        "::1",              // IPv6 without brackets
        "::1:443",          // ambiguous
        "[::1]",            // no port
        "[127.0.0.1]:443",  // brackets are for IPv6
        "host:0", "host:65536", "host:-1", "host:+443", "host:44a", "host:",
        ":443", "*.example:443", "ho st:443", "10.0.0.0/33", "::/129", "10.0.0.1/8",
        "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/ 8", "not-an-ip/8", "10.0.0/8",
        "fe80::1/10", "ok:443,bad"}) {
    auto policy = ParseAllowList(text);
    EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
  auto bad = ParseAllowList("gw:443, 10.0.0.1/8");
  EXPECT_NE(bad.status().message().find("'10.0.0.1/8'"), absl::string_view::npos)
      << bad.status();
}

TEST(AddressPolicyTest, IpAddressParsingAndText) {
  EXPECT_FALSE(IpAddress::Parse("").has_value());
  EXPECT_FALSE(IpAddress::Parse("localhost").has_value());
  EXPECT_FALSE(IpAddress::Parse("[::1]").has_value());
  EXPECT_FALSE(IpAddress::Parse("fe80::1%eth0").has_value());
  EXPECT_FALSE(IpAddress::Parse("127.1").has_value());
  EXPECT_FALSE(IpAddress::Parse(std::string("127.0.0.1\0x", 11)).has_value());
  EXPECT_EQ(Ip("0:0:0:0:0:ffff:7f00:1").ToString(), "::ffff:127.0.0.1");
  EXPECT_EQ(Ip("2001:DB8::1").ToString(), "2001:db8::1");
  EXPECT_TRUE(Ip("10.0.0.1").is_v4());
  EXPECT_FALSE(Ip("::ffff:10.0.0.1").is_v4());
  EXPECT_EQ(Ip("::ffff:10.0.0.1").EmbeddedV4(), Ip("10.0.0.1"));
  EXPECT_FALSE(Ip("2001:db8::1").EmbeddedV4().has_value());
  auto network = IpNetwork::Parse("fd00:1::/32");
  ASSERT_TRUE(network.ok());
  EXPECT_EQ(network->ToString(), "fd00:1::/32");
}

// For operator-configured endpoints (the identity provider): loopback, metadata, anything.
TEST(AddressPolicyTest, UnrestrictedAllowsEveryAddressTheDefaultRefuses) {
  const AddressPolicy open = AddressPolicy::Unrestricted();
  for (const char* text : {"127.0.0.1", "::1", "169.254.169.254", "fd00:ec2::254", "0.0.0.0", "::ffff:127.0.0.1",
                           "10.1.2.3", "8.8.8.8"}) {
    const auto address = IpAddress::Parse(text);
    ASSERT_TRUE(address.has_value()) << text;
    EXPECT_TRUE(open.Permits(*address, "idp.example", 443)) << text;
  }
}

}  // namespace
}  // namespace clinical::http

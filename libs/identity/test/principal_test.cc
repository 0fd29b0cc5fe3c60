// Identifier checks and SPIFFE ids: what may be copied into events, records and logs.
#include "clinical/identity/principal.h"

#include <string>

#include "gtest/gtest.h"

namespace clinical::identity {
namespace {

TEST(UserIdTest, AcceptsTheSubjectsIssuersUse) {
  EXPECT_TRUE(IsValidUserId("8f14e45f-ceea-467f-a0e6-3b5e2c1f9d2a"));  // Keycloak, Azure oid
  EXPECT_TRUE(IsValidUserId("00u1abcdEFGH2345"));                      // Okta
  EXPECT_TRUE(IsValidUserId("alice@clinic.example"));
  EXPECT_TRUE(IsValidUserId("AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ"));  // Azure sub
  EXPECT_TRUE(IsValidUserId("svc:gateway+1_x-y"));
  EXPECT_TRUE(IsValidUserId(std::string(128, 'a')));
}

TEST(UserIdTest, RefusesEmptyLongDottedAndForeignCharacters) {
  EXPECT_FALSE(IsValidUserId(""));
  EXPECT_FALSE(IsValidUserId(std::string(129, 'a')));
  EXPECT_FALSE(IsValidUserId(".alice"));
  EXPECT_FALSE(IsValidUserId("alice."));
  for (const char* bad : {"al ice", "al/ice", "al\"ice", "al\nice", "al\\ice", "al%20", "al;ice",
                          "alice\xc3\xa9", "al*"}) {
    EXPECT_FALSE(IsValidUserId(bad)) << bad;
  }
  EXPECT_FALSE(IsValidUserId(std::string_view("al\0ice", 6)));
}

TEST(TenantIdTest, AcceptsSlugsAndGuids) {
  EXPECT_TRUE(IsValidTenantId("tenant-a"));
  EXPECT_TRUE(IsValidTenantId("72f988bf-86f1-41af-91ab-2d7cd011db47"));  // Azure tid
  EXPECT_TRUE(IsValidTenantId("0.clinic_north"));
  EXPECT_TRUE(IsValidTenantId(std::string(64, 't')));
}

TEST(TenantIdTest, RefusesBadStartLengthAndCharacters) {
  EXPECT_FALSE(IsValidTenantId(""));
  EXPECT_FALSE(IsValidTenantId(std::string(65, 't')));
  EXPECT_FALSE(IsValidTenantId("-tenant"));
  EXPECT_FALSE(IsValidTenantId(".tenant"));
  EXPECT_FALSE(IsValidTenantId("_tenant"));
  EXPECT_FALSE(IsValidTenantId("ten ant"));
  EXPECT_FALSE(IsValidTenantId("ten@ant"));
  EXPECT_FALSE(IsValidTenantId("ten:ant"));
}

TEST(PlatformRoleTest, KnowsExactlyTheFiveHumanRoles) {
  for (std::string_view role : kPlatformRoles) EXPECT_TRUE(IsPlatformRole(role)) << role;
  EXPECT_FALSE(IsPlatformRole("service"));
  EXPECT_FALSE(IsPlatformRole("Case_Manager"));
  EXPECT_FALSE(IsPlatformRole(""));
}

TEST(SpiffeIdTest, ParsesNamespaceAndService) {
  const auto id = ParseSpiffeId("spiffe://clinical.example/ns/clinical/sa/case-service",
                                "clinical.example");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->namespace_name, "clinical");
  EXPECT_EQ(id->service, "case-service");
  EXPECT_TRUE(ParseSpiffeId("spiffe://td/ns/" + std::string(63, 'n') + "/sa/s", "td"));
}

TEST(SpiffeIdTest, RefusesEverythingElse) {
  const std::string td = "clinical.example";
  for (const std::string& uri : std::vector<std::string>{
           "",
           "spiffe://other.example/ns/clinical/sa/case",      // another trust domain
           "spiffe://clinical.example.evil/ns/clinical/sa/case",
           "spiffe://clinical.example:443/ns/clinical/sa/case",
           "spiffe://user@clinical.example/ns/clinical/sa/case",
           "SPIFFE://clinical.example/ns/clinical/sa/case",
           "https://clinical.example/ns/clinical/sa/case",
           "spiffe://clinical.example/ns/clinical/sa",
           "spiffe://clinical.example/ns/clinical/sa/",
           "spiffe://clinical.example/ns/clinical/sa/case/extra",
           "spiffe://clinical.example/ns/clinical/sa/case/",
           "spiffe://clinical.example//ns/clinical/sa/case",
           "spiffe://clinical.example/ns//sa/case",
           "spiffe://clinical.example/sa/case/ns/clinical",
           "spiffe://clinical.example/ns/Clinical/sa/case",
           "spiffe://clinical.example/ns/clinical/sa/case_svc",
           "spiffe://clinical.example/ns/clinical/sa/case?x=1",
           "spiffe://clinical.example/ns/clinical/sa/case#f",
           "spiffe://clinical.example/ns/clinical/sa/ca%73e",
           "spiffe://clinical.example/ns/" + std::string(64, 'n') + "/sa/case",
       }) {
    EXPECT_FALSE(ParseSpiffeId(uri, td).has_value()) << uri;
  }
  EXPECT_FALSE(ParseSpiffeId("spiffe:///ns/a/sa/b", ""));
  EXPECT_FALSE(ParseSpiffeId("spiffe://td/x/ns/a/sa/b", "td/x"));
}

}  // namespace
}  // namespace clinical::identity

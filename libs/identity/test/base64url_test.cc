// The strict base64url decoder every token part goes through.
#include "base64url.h"

#include "gtest/gtest.h"
#include "clinical/identity/testing/test_tokens.h"

namespace clinical::identity::internal {
namespace {

TEST(Base64UrlTest, DecodesTheRfc4648Vectors) {
  EXPECT_EQ(DecodeBase64Url(""), "");
  EXPECT_EQ(DecodeBase64Url("Zg"), "f");
  EXPECT_EQ(DecodeBase64Url("Zm8"), "fo");
  EXPECT_EQ(DecodeBase64Url("Zm9v"), "foo");
  EXPECT_EQ(DecodeBase64Url("Zm9vYg"), "foob");
  EXPECT_EQ(DecodeBase64Url("Zm9vYmE"), "fooba");
  EXPECT_EQ(DecodeBase64Url("Zm9vYmFy"), "foobar");
}

TEST(Base64UrlTest, DecodesTheUrlSafeAlphabet) {
  EXPECT_EQ(DecodeBase64Url("-_8"), std::string("\xfb\xff", 2));
}

TEST(Base64UrlTest, RefusesPaddingOtherAlphabetsAndImpossibleLengths) {
  EXPECT_FALSE(DecodeBase64Url("Zg=="));
  EXPECT_FALSE(DecodeBase64Url("+/8"));
  EXPECT_FALSE(DecodeBase64Url("Zm9v Yg"));
  EXPECT_FALSE(DecodeBase64Url("Zm9vY"));  // 4n+1 characters
  EXPECT_FALSE(DecodeBase64Url(std::string_view("Zm\0v", 4)));
}

TEST(Base64UrlTest, RefusesNonCanonicalTrailingBits) {
  // "Zh" and "Zm9" carry set bits below the last whole byte.
  EXPECT_FALSE(DecodeBase64Url("Zh"));
  EXPECT_FALSE(DecodeBase64Url("Zm9"));
}

TEST(Base64UrlTest, RoundTripsEveryByteValueAndLength) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) {
    bytes.push_back(static_cast<char>(i));
    EXPECT_EQ(DecodeBase64Url(test_support::Base64UrlEncode(bytes)), bytes) << i;
  }
}

}  // namespace
}  // namespace clinical::identity::internal

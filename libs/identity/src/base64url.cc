#include "base64url.h"

#include <cstdint>

namespace clinical::identity::internal {
namespace {

// The 6-bit value of a base64url character, or -1.
int SextetOf(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

}  // namespace

bool IsBase64UrlAlphabet(std::string_view text) {
  for (char c : text) {
    if (SextetOf(c) < 0) return false;
  }
  return true;
}

std::optional<std::string> DecodeBase64Url(std::string_view text) {
  // A single leftover character carries 6 bits, less than a byte: never valid.
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    const int sextet = SextetOf(c);
    if (sextet < 0) return std::nullopt;
    buffer = (buffer << 6) | static_cast<uint32_t>(sextet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xffu));
    }
  }
  // Leftover bits (2 or 4) are padding and must be zero for the encoding to be canonical.
  if ((buffer & ((1u << bits) - 1u)) != 0) return std::nullopt;
  return out;
}

}  // namespace clinical::identity::internal

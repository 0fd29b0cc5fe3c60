#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace clinical::identity::internal {

// Decodes unpadded base64url (RFC 4648 §5), the encoding of every JWS part. Strict: only
// the URL-safe alphabet, no padding or whitespace, and the unused low bits of the last
// character must be zero, so a byte string has exactly one accepted encoding and a changed
// character always changes the decoded bytes. nullopt for anything else.
std::optional<std::string> DecodeBase64Url(std::string_view text);

// True when every character of `text` is in the base64url alphabet [A-Za-z0-9_-].
bool IsBase64UrlAlphabet(std::string_view text);

}  // namespace clinical::identity::internal

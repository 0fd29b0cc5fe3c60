#include "clinical/projection/read_model.h"

#include <openssl/sha.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace clinical::projection {
namespace {

bool AllOf(const std::string& text, size_t max_length, const char* extra) {
  if (text.empty() || text.size() > max_length) return false;
  for (char c : text) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && std::string(extra).find(c) == std::string::npos) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<KeySpace> KeySpace::Create(const std::string& root, const std::string& version) {
  if (!AllOf(root, 200, "._:-")) {
    return absl::InvalidArgumentError("projection key root must be 1..200 of [A-Za-z0-9._:-]");
  }
  if (!AllOf(version, 64, "._-") || version == "active") {
    return absl::InvalidArgumentError(
        "projection version must be 1..64 of [A-Za-z0-9._-] and not 'active'");
  }
  return KeySpace(root, version);
}

KeySpace::KeySpace(std::string root, std::string version)
    : root_(std::move(root)),
      version_(std::move(version)),
      prefix_(absl::StrCat(root_, ":", version_, ":")) {}

std::string KeySpace::OffsetSuffix(const std::string& topic, int32_t partition) {
  return absl::StrCat("_offset:", topic, ":", partition);
}

LuaScript::LuaScript(std::string name, std::string source)
    : name_(std::move(name)), source_(std::move(source)) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(source_.data()), source_.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char byte : digest) {
    sha1_.push_back(kHex[byte >> 4]);
    sha1_.push_back(kHex[byte & 0xf]);
  }
}

RedisCommand LuaScript::Call(const std::vector<std::string>& keys,
                             const std::vector<std::string>& args) const {
  RedisCommand command = {"EVALSHA", sha1_, absl::StrCat(keys.size())};
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
  return command;
}

}  // namespace clinical::projection

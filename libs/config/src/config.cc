#include "clinical/config/config.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace clinical::config {
namespace {

// Reading an undeclared key or a key as the wrong type is a programming error, caught by
// the first test that touches it; it is not a runtime condition to handle.
void Require(bool condition, std::string_view what, std::string_view name) {
  if (condition) return;
  std::fprintf(stderr, "config: %.*s: %.*s\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(name.size()), name.data());
  std::abort();
}

absl::Status CheckType(const Option& option, const std::string& text, std::string_view source) {
  switch (option.type) {
    case OptionType::kString:
      return absl::OkStatus();
    case OptionType::kInt: {
      int64_t unused;
      if (absl::SimpleAtoi(text, &unused)) return absl::OkStatus();
      break;
    }
    case OptionType::kBool: {
      bool unused;
      if (absl::SimpleAtob(text, &unused)) return absl::OkStatus();
      break;
    }
    case OptionType::kDuration: {
      absl::Duration unused;
      if (absl::ParseDuration(text, &unused)) return absl::OkStatus();
      break;
    }
  }
  // The value itself is not echoed: configuration may carry secrets.
  return absl::InvalidArgumentError(
      absl::StrCat("config key '", option.name, "' (from ", std::string(source), ") has an invalid value"));
}

const char* TypeName(OptionType type) {
  switch (type) {
    case OptionType::kString:
      return "string";
    case OptionType::kInt:
      return "int";
    case OptionType::kBool:
      return "bool";
    case OptionType::kDuration:
      return "duration";
  }
  return "?";
}

}  // namespace

EnvLookup ProcessEnvironment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

std::string EnvironmentName(std::string_view option_name) {
  return absl::StrCat("CLINICAL_",
                      absl::AsciiStrToUpper(absl::StrReplaceAll(std::string(option_name), {{"-", "_"}})));
}

absl::StatusOr<Config> Config::Load(std::span<const Option> options, int argc,
                                    const char* const* argv, const EnvLookup& env) {
  std::map<std::string, std::string, std::less<>> flags;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      return absl::FailedPreconditionError(Usage(argc > 0 ? argv[0] : "service", options));
    }
    if (!arg.starts_with("--")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument at position ", i));
    }
    arg.remove_prefix(2);
    std::string name, value;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else {
      name = arg;
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
      value = argv[++i];
    }
    bool known = false;
    for (const Option& option : options) known = known || option.name == name;
    if (!known) return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    flags[name] = value;
  }

  Config config;
  for (const Option& option : options) {
    Value value{option.type, option.default_value, "default"};
    if (auto flag = flags.find(option.name); flag != flags.end()) {
      value.text = flag->second;
      value.source = "flag";
    } else if (auto from_env = env(EnvironmentName(option.name)); from_env.has_value()) {
      value.text = *from_env;
      value.source = "env";
    }
    if (absl::Status status = CheckType(option, value.text, value.source); !status.ok()) {
      return status;
    }
    config.values_[option.name] = std::move(value);
  }
  return config;
}

std::string Config::Usage(std::string_view program, std::span<const Option> options) {
  std::string usage = absl::StrCat("usage: ", std::string(program), " [--key=value ...]\n");
  for (const Option& option : options) {
    absl::StrAppend(&usage, "  --", option.name, " (", TypeName(option.type), ", env ",
                    EnvironmentName(option.name), ", default '", option.default_value,
                    "')\n      ", option.help, "\n");
  }
  return usage;
}

const Config::Value& Config::Find(std::string_view name, OptionType type) const {
  auto it = values_.find(name);
  Require(it != values_.end(), "undeclared key", name);
  Require(it->second.type == type, "key read as the wrong type", name);
  return it->second;
}

const std::string& Config::GetString(std::string_view name) const {
  return Find(name, OptionType::kString).text;
}

int64_t Config::GetInt(std::string_view name) const {
  int64_t value = 0;
  Require(absl::SimpleAtoi(Find(name, OptionType::kInt).text, &value), "bad int", name);
  return value;
}

bool Config::GetBool(std::string_view name) const {
  bool value = false;
  Require(absl::SimpleAtob(Find(name, OptionType::kBool).text, &value), "bad bool", name);
  return value;
}

absl::Duration Config::GetDuration(std::string_view name) const {
  absl::Duration value;
  Require(absl::ParseDuration(Find(name, OptionType::kDuration).text, &value), "bad duration",
          name);
  return value;
}

absl::StatusOr<std::string> ReadSecretFile(std::string_view key, const std::string& path) {
  const std::string where = absl::StrCat("config key '", std::string(key), "' (", EnvironmentName(key), ")");
  std::ifstream file(path);
  if (!file) return absl::InvalidArgumentError(absl::StrCat(where, " names a file that cannot be read"));
  std::stringstream content;
  content << file.rdbuf();
  std::string secret(absl::StripTrailingAsciiWhitespace(content.str()));
  if (secret.empty()) return absl::InvalidArgumentError(absl::StrCat(where, " names an empty file"));
  return secret;
}

const std::string& Config::SourceOf(std::string_view name) const {
  auto it = values_.find(name);
  Require(it != values_.end(), "undeclared key", name);
  return it->second.source;
}

}  // namespace clinical::config

#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace clinical::config {

enum class OptionType { kString, kInt, kBool, kDuration };

// One configuration key a process accepts. `name` is kebab-case ("grpc-port"); it is read
// from the flag `--grpc-port=VALUE` (or `--grpc-port VALUE`) and, when no flag is given,
// from the environment variable CLINICAL_GRPC_PORT. Otherwise `default_value` applies.
struct Option {
  std::string name;
  OptionType type = OptionType::kString;
  std::string default_value;
  std::string help;
};

// Looks an environment variable up; injected so tests need not touch the real environment.
using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;
EnvLookup ProcessEnvironment();

// "grpc-port" -> "CLINICAL_GRPC_PORT".
std::string EnvironmentName(std::string_view option_name);

// Config is the validated configuration of one process: every value was type-checked at
// Load, so the getters cannot fail for a declared option. Immutable and thread-safe.
class Config {
 public:
  // Parses the command line against `options`. Returns INVALID_ARGUMENT naming the key for
  // an unknown flag, a flag without a value, or a value of the wrong type (wherever it
  // came from). `--help` yields FAILED_PRECONDITION whose message is the usage text.
  // The environment is shared with other processes, so unknown CLINICAL_* variables are
  // not errors; unknown flags always are.
  static absl::StatusOr<Config> Load(std::span<const Option> options, int argc,
                                     const char* const* argv, const EnvLookup& env);

  // Usage text listing every option, its environment variable and default.
  static std::string Usage(std::string_view program, std::span<const Option> options);

  // Accessors abort (a programming error) when `name` was not declared.
  const std::string& GetString(std::string_view name) const;
  int64_t GetInt(std::string_view name) const;
  bool GetBool(std::string_view name) const;
  absl::Duration GetDuration(std::string_view name) const;

  // Where a value came from ("flag", "env" or "default"), for the startup log line.
  const std::string& SourceOf(std::string_view name) const;

 private:
  struct Value {
    OptionType type;
    std::string text;
    std::string source;
  };
  const Value& Find(std::string_view name, OptionType type) const;

  std::map<std::string, Value, std::less<>> values_;
};

// Reads a secret (a password) from the file a config key names: the whole content without
// trailing line breaks or spaces. INVALID_ARGUMENT naming the key — never the path's content —
// when the file cannot be read or is empty. Secrets come from files, not flags or the
// environment, so they do not show in process listings.
absl::StatusOr<std::string> ReadSecretFile(std::string_view key, const std::string& path);

}  // namespace clinical::config

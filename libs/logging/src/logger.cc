#include "clinical/logging/logger.h"

#include "absl/time/clock.h"

namespace clinical::logging {
namespace {

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "unknown";
}

}  // namespace

std::string FormatJsonLine(absl::Time time, Level level, std::string_view service,
                           std::string_view message, std::initializer_list<Field> fields) {
  nlohmann::ordered_json line;
  line["ts"] = absl::FormatTime("%Y-%m-%d%ET%H:%M:%E6SZ", time, absl::UTCTimeZone());
  line["level"] = LevelName(level);
  line["service"] = service;
  line["msg"] = message;
  for (const auto& [key, value] : fields) {
    line[std::string(key)] = value;
  }
  // `replace` keeps a line valid JSON even if a value holds invalid UTF-8.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool ParseLevel(std::string_view text, Level* level) {
  for (Level candidate : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (text == LevelName(candidate)) {
      *level = candidate;
      return true;
    }
  }
  return false;
}

Logger::Logger(std::string service, std::ostream& out, Level min_level)
    : service_(std::move(service)), min_level_(min_level), out_(out) {}

void Logger::Log(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (level < min_level_) return;
  std::string line = FormatJsonLine(absl::Now(), level, service_, message, fields);
  std::lock_guard<std::mutex> lock(mutex_);
  out_ << line << '\n';
  out_.flush();
}

}  // namespace clinical::logging

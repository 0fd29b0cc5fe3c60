#pragma once

#include <initializer_list>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace clinical::logging {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// One structured field of a log line. Values are ids, counts, codes and durations only:
// patient data (PHI) never goes into a log line, so callers never pass free text taken
// from a request.
using Field = std::pair<std::string_view, nlohmann::json>;

// Renders one log record as a single-line JSON object (no trailing newline).
// Pure: the same inputs give the same bytes, which the tests rely on.
std::string FormatJsonLine(absl::Time time, Level level, std::string_view service,
                           std::string_view message, std::initializer_list<Field> fields);

// Parses "debug", "info", "warn" or "error"; returns false for anything else.
bool ParseLevel(std::string_view text, Level* level);

// Logger writes JSON lines to a stream (stderr in services). Thread-safe: concurrent calls
// never interleave within a line. The stream must outlive the logger.
class Logger {
 public:
  explicit Logger(std::string service, std::ostream& out, Level min_level = Level::kInfo);

  void Log(Level level, std::string_view message, std::initializer_list<Field> fields = {});
  void Debug(std::string_view message, std::initializer_list<Field> fields = {}) {
    Log(Level::kDebug, message, fields);
  }
  void Info(std::string_view message, std::initializer_list<Field> fields = {}) {
    Log(Level::kInfo, message, fields);
  }
  void Warn(std::string_view message, std::initializer_list<Field> fields = {}) {
    Log(Level::kWarn, message, fields);
  }
  void Error(std::string_view message, std::initializer_list<Field> fields = {}) {
    Log(Level::kError, message, fields);
  }

 private:
  const std::string service_;
  const Level min_level_;
  std::mutex mutex_;
  std::ostream& out_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace clinical::logging

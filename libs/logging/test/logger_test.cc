#include "clinical/logging/logger.h"

#include <sstream>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace clinical::logging {
namespace {

TEST(LoggerTest, FormatsOneJsonObjectPerLineWithFieldsInOrder) {
  const absl::Time t = absl::FromUnixMicros(1'700'000'000'123'456);
  const std::string line =
      FormatJsonLine(t, Level::kWarn, "case", "append failed", {{"partition", 3}, {"code", "UNAVAILABLE"}});
  EXPECT_EQ(line,
            R"({"ts":"2023-11-14T22:13:20.123456Z","level":"warn","service":"case",)"
            R"("msg":"append failed","partition":3,"code":"UNAVAILABLE"})");
}

TEST(LoggerTest, EscapesControlCharactersAndInvalidUtf8) {
  const std::string line = FormatJsonLine(absl::UnixEpoch(), Level::kInfo, "svc",
                                          "a\"b\nc", {{"bad", std::string("\xff")}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["msg"], "a\"b\nc");
}

TEST(LoggerTest, DropsRecordsBelowMinimumLevel) {
  std::ostringstream out;
  Logger logger("svc", out, Level::kWarn);
  logger.Info("hidden");
  logger.Error("shown");
  EXPECT_EQ(out.str().find("hidden"), std::string::npos);
  EXPECT_NE(out.str().find("shown"), std::string::npos);
}

TEST(LoggerTest, ConcurrentWritersNeverInterleaveLines) {
  std::ostringstream out;
  Logger logger("svc", out);
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&logger, w] {
      for (int i = 0; i < 200; ++i) logger.Info("tick", {{"writer", w}, {"i", i}});
    });
  }
  for (auto& writer : writers) writer.join();
  std::istringstream lines(out.str());
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    EXPECT_TRUE(nlohmann::json::accept(line)) << line;
    ++count;
  }
  EXPECT_EQ(count, 800);
}

TEST(LoggerTest, ParsesKnownLevelsOnly) {
  Level level = Level::kInfo;
  EXPECT_TRUE(ParseLevel("error", &level));
  EXPECT_EQ(level, Level::kError);
  EXPECT_FALSE(ParseLevel("verbose", &level));
  EXPECT_EQ(level, Level::kError);
}

}  // namespace
}  // namespace clinical::logging

// The log line format and --log-file.
#include "vmm/log.h"

#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/temp_dir.h"

namespace skiff {
namespace {

std::string ReadText(const std::string& path) {
  std::vector<uint8_t> bytes = testing::ReadFile(path);
  return std::string(bytes.begin(), bytes.end());
}

// Sends the log to a file for one test, then back to stderr at warn.
class LogToFile : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(OpenLogFile(path_).ok()); }
  void TearDown() override {
    SetLogFd(UniqueFd());
    SetLogLevel(LogLevel::kWarn);
  }
  std::string Text() const { return ReadText(path_); }

  testing::TempDir dir_;
  const std::string path_ = dir_.File("skiff.log");
};

TEST(FormatLogLineTest, MonotonicSecondsLevelSubsystemMessage) {
  EXPECT_EQ(FormatLogLine(8812.0443109, LogLevel::kInfo, "boot", "first KVM_RUN"),
            "8812.044310 info boot: first KVM_RUN\n");
  EXPECT_EQ(FormatLogLine(0.5, LogLevel::kError, "virtio-blk", "x"),
            "0.500000 error virtio-blk: x\n");
  EXPECT_EQ(FormatLogLine(3, LogLevel::kWarn, "a", ""), "3.000000 warn a: \n");
  EXPECT_EQ(FormatLogLine(3, LogLevel::kDebug, "a", "b"), "3.000000 debug a: b\n");
  // One event, one line, whatever the message holds.
  EXPECT_EQ(FormatLogLine(1, LogLevel::kWarn, "net", "two\nlines\r\tand a tab"),
            "1.000000 warn net: two lines  and a tab\n");
}

TEST_F(LogToFile, LinesGoToTheFileAtOrAboveTheLevel) {
  SetLogLevel(LogLevel::kInfo);
  const double before = MonotonicSeconds();
  LOG_INFO("test", "hello %d", 42);
  LOG_DEBUG("test", "not logged at info");
  LOG_ERROR("other", "bad %s", "thing");
  const double after = MonotonicSeconds();
  const std::string text = Text();
  const std::regex line(R"(^(\d+)\.(\d{6}) (\w+) ([\w-]+): (.*)$)");
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    lines.push_back(text.substr(start, nl - start));
  }
  EXPECT_EQ(start, text.size()) << "the file ends with a newline";
  ASSERT_EQ(lines.size(), 2u) << text;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(lines[0], m, line)) << lines[0];
  const double stamp = std::stod(m[1].str() + "." + m[2].str());
  EXPECT_GE(stamp, before - 1e-6);
  EXPECT_LE(stamp, after);
  EXPECT_EQ(m[3], "info");
  EXPECT_EQ(m[4], "test");
  EXPECT_EQ(m[5], "hello 42");
  ASSERT_TRUE(std::regex_match(lines[1], m, line)) << lines[1];
  EXPECT_EQ(m[3], "error");
  EXPECT_EQ(m[5], "bad thing");
}

TEST_F(LogToFile, AppendsAndKeepsLinesWholeAcrossThreads) {
  LOG_WARN("first", "run");
  ASSERT_TRUE(OpenLogFile(path_).ok());  // a second run appends
  std::vector<std::thread> threads;
  constexpr int kThreads = 4, kLines = 200;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < kLines; ++i) LOG_WARN("thread", "%d %d %s", t, i, std::string(300, 'x'));
    });
  }
  for (auto& t : threads) t.join();
  const std::string text = Text();
  EXPECT_EQ(text.find(" warn first: run\n"), text.find(' '));
  int count = 0;
  const std::regex line(R"(\d+\.\d{6} warn thread: \d \d+ x{300})");
  size_t start = text.find('\n') + 1;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    EXPECT_TRUE(std::regex_match(text.substr(start, nl - start), line));
    ++count;
  }
  EXPECT_EQ(count, kThreads * kLines);
}

TEST(OpenLogFileTest, AnUnwritablePathIsAUsageError) {
  absl::Status status = OpenLogFile("/nonexistent-dir/skiff.log");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("--log-file /nonexistent-dir/skiff.log"),
            std::string::npos);
}

TEST(LogLevelTest, ParsesTheFourNames) {
  LogLevel level = LogLevel::kError;
  for (const char* name : {"error", "warn", "info", "debug"}) {
    ASSERT_TRUE(ParseLogLevel(name, &level)) << name;
    EXPECT_STREQ(LogLevelName(level), name);
  }
  EXPECT_FALSE(ParseLogLevel("verbose", &level));
  EXPECT_FALSE(ParseLogLevel("", &level));
}

}  // namespace
}  // namespace skiff

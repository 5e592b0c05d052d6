// The boot timeline's milestones, logged at info with their intervals.
#include "vmm/boot_timeline.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/temp_dir.h"
#include "vmm/log.h"

namespace skiff {
namespace {

std::span<const uint8_t> Bytes(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

class BootTimelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(OpenLogFile(path_).ok());
    SetLogLevel(LogLevel::kInfo);
  }
  void TearDown() override {
    SetLogFd(UniqueFd());
    SetLogLevel(LogLevel::kWarn);
  }
  // The messages logged, without time stamps and levels.
  std::vector<std::string> Messages() const {
    std::vector<uint8_t> bytes = testing::ReadFile(path_);
    std::string text(bytes.begin(), bytes.end());
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string line = text.substr(start, nl - start);
      const std::string tag = " info boot: ";
      const size_t at = line.find(tag);
      EXPECT_NE(at, std::string::npos) << line;
      out.push_back(line.substr(at + tag.size()));
    }
    return out;
  }
  std::unique_ptr<BootTimeline> Make(const std::string& marker) {
    auto timeline = BootTimeline::Create(100.0, marker, [this] { return now_; });
    EXPECT_TRUE(timeline.ok()) << timeline.status();
    return *std::move(timeline);
  }

  testing::TempDir dir_;
  const std::string path_ = dir_.File("skiff.log");
  double now_ = 100.0;
};

TEST_F(BootTimelineTest, LogsEachMilestoneOnceWithIntervals) {
  auto timeline = Make("Run \\S+ as init process");
  timeline->Started();
  now_ = 100.25;
  timeline->OnFirstKvmRun();
  now_ = 101.0;
  timeline->OnFirstKvmRun();  // later vCPU entries are no milestone
  now_ = 101.5;
  timeline->OnConsoleOutput(Bytes("Linux version 6.1\nRun /i"));
  now_ = 102.0;
  timeline->OnConsoleOutput(Bytes("nit as init pro"));
  now_ = 103.0;
  timeline->OnConsoleOutput(Bytes("cess\r\nRun /sbin/init as init process\n"));
  EXPECT_EQ(Messages(), (std::vector<std::string>{
                            "VMM start",
                            "first KVM_RUN: 0.250000 s after VMM start",
                            "first guest console output: 1.250000 s after first KVM_RUN (1.500000 "
                            "s after VMM start)",
                            "guest userspace: 1.500000 s after first guest console output "
                            "(3.000000 s after VMM start); console: \"Run /init as init process\"",
                        }));
}

TEST_F(BootTimelineTest, NoMarkerNoUserspaceMilestone) {
  auto timeline = Make("");
  now_ = 100.5;
  timeline->OnConsoleOutput(Bytes("Run /init as init process\n"));
  timeline->OnConsoleOutput(Bytes("Run /init as init process\n"));
  EXPECT_EQ(Messages(),
            (std::vector<std::string>{"first guest console output: 0.500000 s after VMM start"}));
}

TEST_F(BootTimelineTest, QuietBelowInfo) {
  SetLogLevel(LogLevel::kWarn);
  auto timeline = Make("x");
  timeline->Started();
  timeline->OnFirstKvmRun();
  timeline->OnConsoleOutput(Bytes("x\n"));
  EXPECT_TRUE(Messages().empty());
}

TEST_F(BootTimelineTest, LongLinesAreQuotedShort) {
  auto timeline = Make("marker");
  timeline->OnConsoleOutput(Bytes(std::string(300, 'a') + " marker\n"));
  const std::vector<std::string> messages = Messages();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_NE(messages[1].find(std::string(120, 'a') + "...\""), std::string::npos) << messages[1];
}

TEST(BootTimelineCreateTest, AnInvalidMarkerIsAUsageError) {
  auto timeline = BootTimeline::Create(0, "((", [] { return 0.0; });
  ASSERT_FALSE(timeline.ok());
  EXPECT_EQ(timeline.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(timeline.status().message()).find("--userspace-marker"), std::string::npos);
}

}  // namespace
}  // namespace skiff

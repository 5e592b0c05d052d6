// The CI monitor over a real Console, Shutdown and EventLoop (no KVM): the
// console decides the run, the timeout fires, the report is written.
#include "vmm/run_monitor.h"

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/temp_dir.h"
#include "vmm/console.h"
#include "vmm/event_loop.h"
#include "vmm/exit_codes.h"

namespace skiff {
namespace {

using ::testing::HasSubstr;

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class RunMonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto shutdown = Shutdown::Create();
    ASSERT_TRUE(shutdown.ok());
    shutdown_ = std::move(*shutdown);
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(*loop);
    auto console = Console::Create(-1, -1, shutdown_.get());  // output dropped
    ASSERT_TRUE(console.ok());
    console_ = std::move(*console);
    config_.kernel_path = "/boot/vmlinuz-test";
    config_.cmdline = "quiet";
  }
  void TearDown() override {
    if (loop_thread_.joinable()) {
      loop_->Stop();
      loop_thread_.join();
    }
  }

  std::unique_ptr<RunMonitor> Start() {
    auto monitor = RunMonitor::Create(config_);
    EXPECT_TRUE(monitor.ok()) << monitor.status();
    if (!monitor.ok()) return nullptr;
    EXPECT_TRUE((*monitor)->Attach(*shutdown_, *console_, *loop_, "console=ttyS0 quiet").ok());
    loop_thread_ = std::thread([this] { loop_->Run(); });
    return std::move(*monitor);
  }

  void Print(std::string_view text) {
    // Byte by byte, as the UART delivers it.
    for (char c : text) {
      const uint8_t byte = static_cast<uint8_t>(c);
      console_->Output(std::span<const uint8_t>(&byte, 1));
    }
  }

  testing::TempDir dir_;
  VmConfig config_;
  std::unique_ptr<Shutdown> shutdown_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<Console> console_;
  std::thread loop_thread_;
};

TEST_F(RunMonitorTest, AllExpectedPatternsStopTheRunWithZero) {
  config_.ci.expect = {"login:", "ok [0-9]+"};
  auto monitor = Start();
  ASSERT_TRUE(monitor);
  Print("booting\nok 1 - test\n");
  EXPECT_FALSE(shutdown_->requested());
  Print("debian login: \n");
  ASSERT_TRUE(shutdown_->requested());
  EXPECT_EQ(shutdown_->status().code, kExitOk);
  EXPECT_THAT(shutdown_->status().reason, HasSubstr("every --expect pattern was seen (2)"));
  EXPECT_EQ(monitor->Finish(shutdown_->status()).code, kExitOk);
}

TEST_F(RunMonitorTest, AFailPatternStopsTheRunAtOnce) {
  config_.ci.expect = {"never"};
  config_.ci.expect_fail = {"Kernel panic", "BUG:"};
  auto monitor = Start();
  ASSERT_TRUE(monitor);
  Print("[    1.0] BUG: unable to handle page fault\n");
  ASSERT_TRUE(shutdown_->requested());
  EXPECT_EQ(shutdown_->status().code, kExitConsoleCheck);
  EXPECT_THAT(shutdown_->status().reason,
              HasSubstr("--expect-fail 'BUG:': [    1.0] BUG: unable to handle page fault"));
  EXPECT_EQ(monitor->Finish(shutdown_->status()).code, kExitConsoleCheck);
}

TEST_F(RunMonitorTest, AGuestThatEndsCleanlyBeforeTheExpectedOutputFails) {
  config_.ci.expect = {"all tests passed", "login:"};
  auto monitor = Start();
  ASSERT_TRUE(monitor);
  Print("login: \n");
  ExitStatus final_status = monitor->Finish({kExitOk, "guest powered off (ACPI S5)"});
  EXPECT_EQ(final_status.code, kExitConsoleCheck);
  EXPECT_THAT(final_status.reason,
              HasSubstr("guest powered off (ACPI S5), but --expect 'all tests passed' never "
                        "matched"));
}

TEST_F(RunMonitorTest, OtherEndingsKeepTheirCodeAndTheLastUnendedLineCounts) {
  config_.ci.expect = {"PASS"};
  auto monitor = Start();
  ASSERT_TRUE(monitor);
  Print("result: PASS");  // no newline before the power-off
  EXPECT_EQ(monitor->Finish({kExitOk, "guest powered off"}).code, kExitOk);
  EXPECT_EQ(monitor->Finish({kExitGuestPanic, "panic"}).code, kExitGuestPanic);
}

TEST_F(RunMonitorTest, FailPatternOnTheUnendedLastLineFailsACleanEnd) {
  config_.ci.expect_fail = {"FAILED"};
  auto monitor = Start();
  ASSERT_TRUE(monitor);
  Print("3 tests FAILED");
  EXPECT_EQ(monitor->Finish({kExitOk, "guest powered off"}).code, kExitConsoleCheck);
}

TEST_F(RunMonitorTest, TimeoutStopsTheRunWithItsCode) {
  config_.ci.timeout = absl::Milliseconds(50);
  const auto start = std::chrono::steady_clock::now();
  auto monitor = Start();
  ASSERT_TRUE(monitor);
  shutdown_->Wait();
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(50));
  EXPECT_LT(waited, std::chrono::seconds(5));
  EXPECT_EQ(shutdown_->status().code, kExitTimeout);
  EXPECT_THAT(shutdown_->status().reason, HasSubstr("after 50ms (--timeout)"));
}

TEST_F(RunMonitorTest, SerialLogAndJunitReport) {
  config_.ci.serial_log = dir_.File("console.log");
  config_.ci.junit = dir_.File("junit.xml");
  config_.ci.expect = {"ready"};
  auto monitor = Start();
  ASSERT_TRUE(monitor);
  Print("hello\r\nready\r\n");
  ExitStatus status = monitor->Finish(shutdown_->status());
  ASSERT_TRUE(monitor->WriteReport(status).ok());
  EXPECT_EQ(ReadText(dir_.File("console.log")), "hello\r\nready\r\n");
  const std::string xml = ReadText(dir_.File("junit.xml"));
  EXPECT_THAT(xml, HasSubstr("tests=\"2\" failures=\"0\" errors=\"0\""));
  EXPECT_THAT(xml, HasSubstr("name=\"boot vmlinuz-test\""));
  EXPECT_THAT(xml, HasSubstr("<property name=\"kernel_cmdline\" value=\"console=ttyS0 quiet\"/>"));
  EXPECT_THAT(xml, HasSubstr("<testcase classname=\"skiff.expect\" name=\"ready\""));
  EXPECT_THAT(xml, HasSubstr("<system-out>hello\nready\n</system-out>"));
}

TEST_F(RunMonitorTest, ConsoleTailKeepsTheEndFromALineStart) {
  config_.ci.junit = dir_.File("junit.xml");
  auto monitor = Start();
  ASSERT_TRUE(monitor);
  std::string line(99, 'x');
  line += '\n';
  std::string text;
  for (int i = 0; i < 1000; ++i) text += line;  // 100000 bytes
  text += "last line\n";
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  console_->Output(bytes);
  const std::string tail = monitor->ConsoleTail();
  EXPECT_LE(tail.size(), RunMonitor::kConsoleTailBytes);
  EXPECT_GT(tail.size(), RunMonitor::kConsoleTailBytes - 200);
  EXPECT_EQ(tail.substr(0, line.size()), line);  // starts at a line start
  EXPECT_TRUE(tail.ends_with("last line\n"));
}

TEST_F(RunMonitorTest, OperatorMistakesFailAtCreate) {
  config_.ci.serial_log = "/nonexistent/dir/log";
  auto bad_log = RunMonitor::Create(config_);
  ASSERT_FALSE(bad_log.ok());
  EXPECT_EQ(bad_log.status().code(), absl::StatusCode::kInvalidArgument);
  config_.ci.serial_log.reset();
  config_.ci.junit = "/nonexistent/dir/junit.xml";
  EXPECT_FALSE(RunMonitor::Create(config_).ok());
  config_.ci.junit.reset();
  config_.ci.expect = {"(bad"};
  EXPECT_FALSE(RunMonitor::Create(config_).ok());
}

}  // namespace
}  // namespace skiff

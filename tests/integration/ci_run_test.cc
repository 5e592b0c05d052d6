// The CI features end to end through the skiff binary, with tiny 64-bit
// guests on this machine's /dev/kvm (no Linux needed): the exit device and
// isa-debug-exit set Skiff's exit code, --timeout stops a guest that never
// ends, --expect / --expect-fail watch its serial output, --serial-log and
// --junit record the run, --print-cmdline shows the command line; and bad
// values for the new options are one-line usage errors.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/fake_kernel.h"
#include "tests/integration/run_skiff.h"

namespace skiff {
namespace {

using testing::RunSkiff;
using testing::SkiffResult;
using Code = std::vector<uint8_t>;

// x86-64 machine code for the tiny guests.
Code WriteExitDevice(uint32_t value) {
  Code code = {0xb8, 0x00, 0x00, 0x00, 0xd8,  // mov eax, 0xd8000000 (the exit device)
               0xc7, 0x00};                   // mov dword [rax], imm32: the value
  for (int i = 0; i < 4; ++i) code.push_back(static_cast<uint8_t>(value >> (8 * i)));
  return code;
}
Code OutIsaDebugExit(uint8_t value) {
  return {0xb0, value,  // mov al, value
          0xe6, 0xf4};  // out 0xf4, al
}
Code PrintSerial(const std::string& text) {
  Code code = {0x66, 0xba, 0xf8, 0x03};  // mov dx, 0x3f8 (COM1)
  for (char c : text) {
    code.insert(code.end(), {0xb0, static_cast<uint8_t>(c),  // mov al, c
                             0xee});                         // out dx, al
  }
  return code;
}
Code HaltForever() { return {0xf4, 0xeb, 0xfd}; }  // hlt; jmp back to the hlt

Code Then(Code first, const Code& second) {
  first.insert(first.end(), second.begin(), second.end());
  return first;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class CiRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* dir = std::getenv("TMPDIR");
    base_ = std::string(dir ? dir : "/tmp") + "/skiff-ci-test-" + std::to_string(::getpid());
    kernel_ = base_ + "-kernel";
  }
  void TearDown() override {
    for (const std::string& path :
         {kernel_, base_ + "-serial.log", base_ + "-junit.xml", base_ + "-skiff.log"}) {
      ::unlink(path.c_str());
    }
  }

  SkiffResult Boot(const Code& code, std::vector<std::string> extra = {}) {
    std::vector<uint8_t> image = testing::FakeBzImageRunning(code);
    FILE* f = std::fopen(kernel_.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    if (f == nullptr) return {};
    std::fwrite(image.data(), 1, image.size(), f);
    std::fclose(f);
    std::vector<std::string> args = {"run", "--kernel", kernel_, "--memory", "64M"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunSkiff(args);
  }

  static int Lines(const std::string& text) {
    return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  }

  std::string base_, kernel_;
};

TEST_F(CiRunTest, ExitDeviceSetsTheExitCodeExactly) {
  SkiffResult r = Boot(Then(WriteExitDevice(7), HaltForever()), {"--timeout", "20s"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_NE(r.err.find("guest chose exit code 7 (exit device)"), std::string::npos) << r.err;
  EXPECT_EQ(Lines(r.err), 1) << r.err;
}

TEST_F(CiRunTest, ExitDeviceZeroIsSuccessAndSkiffsOwnCodesAreRefused) {
  SkiffResult zero = Boot(Then(WriteExitDevice(0), HaltForever()), {"--timeout", "20s"});
  EXPECT_EQ(zero.exit_code, 0) << zero.err;
  SkiffResult three = Boot(Then(WriteExitDevice(3), HaltForever()), {"--timeout", "20s"});
  EXPECT_EQ(three.exit_code, 4) << three.err;
  EXPECT_NE(three.err.find("guest wrote 3 to the exit device"), std::string::npos) << three.err;
}

TEST_F(CiRunTest, IsaDebugExitFollowsQemu) {
  SkiffResult r = Boot(Then(OutIsaDebugExit(5), HaltForever()), {"--timeout", "20s"});
  EXPECT_EQ(r.exit_code, 11) << r.err;
  EXPECT_NE(r.err.find("isa-debug-exit"), std::string::npos) << r.err;
}

TEST_F(CiRunTest, TimeoutStopsAGuestThatNeverEnds) {
  const auto start = std::chrono::steady_clock::now();
  SkiffResult r = Boot(HaltForever(), {"--timeout", "500ms"});
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("timeout: the guest was still running after 500ms"), std::string::npos)
      << r.err;
  EXPECT_EQ(Lines(r.err), 1) << r.err;
  EXPECT_LT(took, std::chrono::seconds(10));
}

TEST_F(CiRunTest, ExpectSucceedsOnceEveryPatternWasSeen) {
  SkiffResult r = Boot(Then(PrintSerial("booting\r\nSKIFF-READY 42\r\n"), HaltForever()),
                       {"--timeout", "20s", "--expect", "booting", "--expect", R"(READY \d+)"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_NE(r.out.find("SKIFF-READY 42"), std::string::npos) << r.out;
}

TEST_F(CiRunTest, ExpectFailFailsAtOnce) {
  SkiffResult r =
      Boot(Then(PrintSerial("test 1 FAILED\r\n"), HaltForever()),
           {"--timeout", "20s", "--expect", "never printed", "--expect-fail", "FAIL(ED)?"});
  EXPECT_EQ(r.exit_code, 120) << r.err;
  EXPECT_NE(r.err.find("--expect-fail 'FAIL(ED)?': test 1 FAILED"), std::string::npos) << r.err;
}

TEST_F(CiRunTest, AGuestEndingBeforeTheExpectedOutputFails) {
  SkiffResult r = Boot(Then(PrintSerial("boot\r\n"), WriteExitDevice(0)),
                       {"--timeout", "20s", "--expect", "all tests passed"});
  EXPECT_EQ(r.exit_code, 120) << r.err;
  EXPECT_NE(r.err.find("--expect 'all tests passed' never matched"), std::string::npos) << r.err;
}

TEST_F(CiRunTest, SerialLogAndJunitRecordTheRun) {
  const std::string log = base_ + "-serial.log";
  const std::string junit = base_ + "-junit.xml";
  SkiffResult r = Boot(Then(PrintSerial("one\r\ntwo <&>\r\n"), HaltForever()),
                       {"--timeout", "1s", "--serial-log", log, "--serial-log-timestamps",
                        "--junit", junit, "--expect", "two", "--expect", "three"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  const std::string text = ReadText(log);
  EXPECT_NE(text.find("] one\r\n["), std::string::npos) << text;
  EXPECT_NE(text.find("] two <&>\r\n"), std::string::npos) << text;
  EXPECT_EQ(text.rfind("[", 0), 0u) << text;
  const std::string xml = ReadText(junit);
  EXPECT_NE(xml.find("tests=\"3\" failures=\"2\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("<property name=\"exit_code\" value=\"5\"/>"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<system-out>one\ntwo &lt;&amp;&gt;\n</system-out>"), std::string::npos)
      << xml;
  // Well-formed, and the shape JUnit readers expect.
  const std::string check =
      "python3 -c \"import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); "
      "s = r.find('testsuite'); assert r.tag == 'testsuites' and "
      "int(s.get('tests')) == len(s.findall('testcase'))\" '" +
      junit + "'";
  EXPECT_EQ(std::system(check.c_str()), 0) << xml;
}

TEST_F(CiRunTest, PrintCmdlineShowsSkiffsWordsFirstAndBootsNothing) {
  SkiffResult plain =
      Boot(WriteExitDevice(9), {"--cmdline", "console=ttyS0 -- init-arg", "--print-cmdline"});
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out, "console=ttyS0 -- init-arg\n");
  SkiffResult hvc = Boot(WriteExitDevice(9),
                         {"--cmdline", "quiet -- x", "--console", "virtio", "--print-cmdline"});
  EXPECT_EQ(hvc.exit_code, 0) << hvc.err;
  EXPECT_EQ(hvc.out, "console=hvc0 quiet -- x\n");
}

TEST_F(CiRunTest, BadCiValuesAreOneLineUsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {{"--timeout", "0"}, "--timeout: duration '0' is not positive"},
      {{"--timeout", "soon"}, "--timeout: 'soon' is not a duration"},
      {{"--timeout=-3s"}, "--timeout: duration '-3s' is not positive"},
      {{"--expect", "(unclosed"}, "--expect '(unclosed': not a valid regular expression"},
      {{"--expect-fail", "x**"}, "--expect-fail 'x**'"},
      {{"--serial-log-timestamps"}, "needs --serial-log"},
      {{"--serial-log", "/nonexistent/dir/log"}, "--serial-log /nonexistent/dir/log"},
      {{"--junit", "/nonexistent/dir/j.xml"}, "--junit /nonexistent/dir/j.xml"},
  };
  for (const Case& c : cases) {
    SkiffResult r = Boot(WriteExitDevice(9), c.args);
    EXPECT_EQ(r.exit_code, 2) << c.needle << ": " << r.err;
    EXPECT_EQ(Lines(r.err), 1) << r.err;
    EXPECT_EQ(r.err.rfind("skiff: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << "the guest must not start: " << r.out;
  }
}

// The boot timeline (docs/logging.md) at --log-level info, in --log-file:
// four milestones in order, every line "<s.us> <level> <subsystem>: ...".
TEST_F(CiRunTest, BootTimelineGoesToTheLogFile) {
  const std::string log = base_ + "-skiff.log";
  SkiffResult r = Boot(Then(PrintSerial("hello\r\nSKIFF-UP\r\nafter\r\n"),
                            Then(WriteExitDevice(0), HaltForever())),
                       {"--timeout", "20s", "--log-level", "info", "--log-file", log,
                        "--userspace-marker", "^SKIFF-UP$"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;  // the log went to the file
  const std::string text = ReadText(log);
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  const std::regex format(R"(\d+\.\d{6} (error|warn|info|debug) [a-z0-9-]+: .*)");
  for (const std::string& line : lines) EXPECT_TRUE(std::regex_match(line, format)) << line;
  size_t at = 0;
  for (const char* milestone :
       {" info boot: VMM start", " info boot: first KVM_RUN: ",
        " info boot: first guest console output: ", " info boot: guest userspace: "}) {
    auto it = std::find_if(lines.begin() + at, lines.end(), [&](const std::string& line) {
      return line.find(milestone) != std::string::npos;
    });
    ASSERT_NE(it, lines.end()) << milestone << " in order in:\n" << text;
    at = it - lines.begin() + 1;
  }
  EXPECT_NE(text.find("console: \"SKIFF-UP\""), std::string::npos) << text;
  EXPECT_NE(text.find(" info vmm: stopped: "), std::string::npos) << text;

  // Without --log-file the same lines go to stderr; at warn, none of them.
  r = Boot(Then(PrintSerial("x\r\n"), Then(WriteExitDevice(0), HaltForever())),
           {"--timeout", "20s", "--log-level", "info"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find(" info boot: first guest console output: "), std::string::npos) << r.err;
  r = Boot(Then(PrintSerial("x\r\n"), Then(WriteExitDevice(0), HaltForever())),
           {"--timeout", "20s"});
  EXPECT_TRUE(r.err.empty()) << r.err;
}

}  // namespace
}  // namespace skiff

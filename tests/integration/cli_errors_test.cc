// Bad operator input gets one clear line on stderr and the right exit code,
// and nothing runs.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/fake_kernel.h"
#include "tests/integration/run_skiff.h"

namespace skiff {
namespace {

using testing::RunSkiff;
using testing::SkiffResult;

int CountLines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/skiff-cli-test-" +
         std::to_string(::getpid()) + "-" + name;
}

void WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

void ExpectUsageError(const SkiffResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(CountLines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(r.err.rfind("skiff: ", 0), 0u) << r.err;
}

TEST(CliErrorsTest, HelpAndVersionSucceed) {
  SkiffResult help = RunSkiff({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Exit codes"), std::string::npos);
  SkiffResult run_help = RunSkiff({"run", "--help"});
  EXPECT_EQ(run_help.exit_code, 0);
  EXPECT_NE(run_help.out.find("--kernel"), std::string::npos);
  SkiffResult version = RunSkiff({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("skiff ", 0), 0u);
}

TEST(CliErrorsTest, UnknownOptionsAndCommands) {
  ExpectUsageError(RunSkiff({"run", "--kernel", "k", "--frobnicate"}), "frobnicate");
  ExpectUsageError(RunSkiff({"fly"}), "unknown command 'fly'");
  ExpectUsageError(RunSkiff({"run"}), "--kernel");
}

TEST(CliErrorsTest, BadSizesAndCpuCounts) {
  std::string kernel = TempPath("kernel");
  WriteFile(kernel, testing::FakeBzImage());
  ExpectUsageError(RunSkiff({"run", "--kernel", kernel, "--memory", "0"}), "--memory");
  ExpectUsageError(RunSkiff({"run", "--kernel", kernel, "--memory", "12Q"}), "12Q");
  ExpectUsageError(RunSkiff({"run", "--kernel", kernel, "--cpus", "0"}), "--cpus 0");
  ExpectUsageError(RunSkiff({"run", "--kernel", kernel, "--cpus", "9999"}), "--cpus 9999");
  ExpectUsageError(RunSkiff({"run", "--kernel", kernel, "--cpus", "two"}), "--cpus");
  ::unlink(kernel.c_str());
}

TEST(CliErrorsTest, MissingOrUnreadableKernel) {
  ExpectUsageError(RunSkiff({"run", "--kernel", "/nonexistent/vmlinuz"}),
                   "kernel /nonexistent/vmlinuz");
  ExpectUsageError(RunSkiff({"run", "--kernel", "/"}), "not a regular file");
}

TEST(CliErrorsTest, AKernelThatIsNotABzImage) {
  SkiffResult elf = RunSkiff({"run", "--kernel", testing::SkiffBinary()});
  ExpectUsageError(elf, "ELF");
  std::string junk = TempPath("junk");
  std::vector<uint8_t> bytes(64 * 1024);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7919 >> 3);
  WriteFile(junk, bytes);
  ExpectUsageError(RunSkiff({"run", "--kernel", junk}), "kernel " + junk);
  ::unlink(junk.c_str());
}

TEST(CliErrorsTest, AnInitramfsThatDoesNotFit) {
  std::string kernel = TempPath("kernel2");
  WriteFile(kernel, testing::FakeBzImage());
  std::string initrd = TempPath("initrd");
  int fd = ::open(initrd.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 300ll << 20), 0);  // sparse 300 MiB
  ::close(fd);
  ExpectUsageError(RunSkiff({"run", "--kernel", kernel, "--initramfs", initrd,
                             "--memory", "64M"}),
                   "initramfs " + initrd);
  ::unlink(kernel.c_str());
  ::unlink(initrd.c_str());
}

TEST(CliErrorsTest, NoKvmDevice) {
  std::string kernel = TempPath("kernel3");
  WriteFile(kernel, testing::FakeBzImage());
  SkiffResult r = RunSkiff({"run", "--kernel", kernel, "--kvm-device", "/nonexistent/kvm"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(CountLines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/kvm not found"), std::string::npos) << r.err;
  ::unlink(kernel.c_str());
}

}  // namespace
}  // namespace skiff

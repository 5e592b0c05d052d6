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

// A minimal bzImage header (boot protocol 2.15, 64-bit entry) with a small
// payload: enough for Skiff to accept the file as a kernel.
std::vector<uint8_t> FakeBzImage() {
  std::vector<uint8_t> image(0x1000 + 0x1000, 0);
  auto put16 = [&](size_t off, uint16_t v) { std::memcpy(&image[off], &v, 2); };
  auto put32 = [&](size_t off, uint32_t v) { std::memcpy(&image[off], &v, 4); };
  auto put64 = [&](size_t off, uint64_t v) { std::memcpy(&image[off], &v, 8); };
  image[0x1f1] = 7;                       // setup_sects: (7+1)*512 = 0x1000
  put16(0x1fe, 0xaa55);
  image[0x200] = 0xeb;                    // jmp
  image[0x201] = 0x6a;                    // header ends at 0x26c
  std::memcpy(&image[0x202], "HdrS", 4);
  put16(0x206, 0x020f);
  image[0x211] = 0x01;                    // LOADED_HIGH
  put32(0x22c, 0x7fffffff);               // initrd_addr_max
  put32(0x230, 0x200000);                 // kernel_alignment
  image[0x234] = 1;                       // relocatable
  put16(0x236, 0x0003);                   // XLF_KERNEL_64 | above 4G
  put32(0x238, 2048);                     // cmdline_size
  put64(0x258, 0x1000000);                // pref_address
  put32(0x260, 0x100000);                 // init_size
  return image;
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
  WriteFile(kernel, FakeBzImage());
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
  WriteFile(kernel, FakeBzImage());
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
  WriteFile(kernel, FakeBzImage());
  SkiffResult r = RunSkiff({"run", "--kernel", kernel, "--kvm-device", "/nonexistent/kvm"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(CountLines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/kvm not found"), std::string::npos) << r.err;
  ::unlink(kernel.c_str());
}

}  // namespace
}  // namespace skiff

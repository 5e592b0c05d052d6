// The seccomp filters, in forked children (a filter cannot be removed): a
// refused call ends the process with exit code 1 and a line naming the
// thread and the call; allowed calls, with their argument conditions, go on
// working; --seccomp log lets a refused call through.
#include "vmm/seccomp.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "vmm/cli.h"
#include "vmm/exit_codes.h"
#include "vmm/fatal_signal_report.h"
#include "vmm/seccomp_report.h"

namespace skiff {
namespace {

// Ends the confined child at once: not _exit(), which the sanitizers
// intercept to run LeakSanitizer (ptrace and more, refused by the filter).
[[noreturn]] void ExitNow(int code) {
  ::syscall(SYS_exit_group, code);
  __builtin_unreachable();
}

struct ChildResult {
  int exit_code = -1;  // 128 + signal if killed
  std::string err;
};

// Runs `body` on a new thread of a forked child that first installs
// `role`'s filter in `mode`; the child exits with what the body returns.
ChildResult RunConfined(ThreadRole role, SeccompMode mode, std::function<int()> body,
                        std::function<void()> before_filter = nullptr) {
  int err[2];
  if (::pipe(err) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(err[1], STDERR_FILENO);
    ::close(err[0]);
    std::thread thread([&] {
      if (before_filter) before_filter();
      absl::Status installed = InstallSeccompFilter(role, mode);
      if (!installed.ok()) {
        std::string text = std::string(installed.message()) + "\n";
        (void)!::write(STDERR_FILENO, text.data(), text.size());
        ExitNow(99);
      }
      ExitNow(body());
    });
    thread.join();
    ExitNow(98);
  }
  ::close(err[1]);
  ChildResult result;
  char buffer[512];
  ssize_t n;
  while ((n = ::read(err[0], buffer, sizeof(buffer))) > 0) result.err.append(buffer, n);
  ::close(err[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string Refusal(ThreadRole role, const char* syscall) {
  return SeccompViolationMessage(role, seccomp_syscall_resolve_name(syscall));
}

TEST(SeccompModeTest, ParsesTheThreeModes) {
  EXPECT_EQ(*ParseSeccompMode("on"), SeccompMode::kOn);
  EXPECT_EQ(*ParseSeccompMode("log"), SeccompMode::kLog);
  EXPECT_EQ(*ParseSeccompMode("off"), SeccompMode::kOff);
  absl::StatusOr<SeccompMode> bad = ParseSeccompMode("strict");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "--seccomp 'strict': use on, log or off");
}

TEST(SeccompModeTest, TheCliDefaultsToOnAndTakesEachMode) {
  absl::StatusOr<CliCommand> plain = ParseCli({"run", "--kernel", "k"});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->config.seccomp, SeccompMode::kOn);
  absl::StatusOr<CliCommand> log = ParseCli({"run", "--kernel", "k", "--seccomp=log"});
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->config.seccomp, SeccompMode::kLog);
  absl::StatusOr<CliCommand> off = ParseCli({"run", "--kernel", "k", "--seccomp", "off"});
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->config.seccomp, SeccompMode::kOff);
  absl::StatusOr<CliCommand> bad = ParseCli({"run", "--kernel", "k", "--seccomp", "strict"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SeccompReportTest, NamesTheThreadAndTheCall) {
  EXPECT_EQ(Refusal(ThreadRole::kVcpu, "socket"),
            "skiff: seccomp: the vcpu thread made a system call outside its allow-list: socket (" +
                std::to_string(seccomp_syscall_resolve_name("socket")) +
                "); Skiff stops (a Skiff bug: please report it; --seccomp log lets it run)");
}

TEST(FatalSignalReportTest, NamesTheSignalAddressAndThread) {
  EXPECT_EQ(FatalSignalLine(SIGSEGV, 0x10, "vcpu"),
            "skiff: fatal SIGSEGV at address 0x10 on the vcpu thread (a Skiff bug: please report "
            "it with this backtrace)");
}

// A crash on a confined thread is reported (line and backtrace, all within
// the filter's allow-list), then dies of its signal as before.
TEST(SeccompFilterTest, ACrashUnderTheFilterIsReportedAndStillFatal) {
  for (ThreadRole role : {ThreadRole::kVcpu, ThreadRole::kIo}) {
    ChildResult r = RunConfined(
        role, SeccompMode::kOn,
        [] {
          volatile uintptr_t address = 0x18;  // read at run time: no compiler warning
          *reinterpret_cast<volatile int*>(address) = 1;
          return 0;
        },
        [] { (void)InstallFatalSignalReport(); });
    EXPECT_EQ(r.exit_code, 128 + SIGSEGV) << r.err;
    EXPECT_THAT(r.err, ::testing::StartsWith(FatalSignalLine(SIGSEGV, 0x18, ThreadRoleName(role))))
        << r.err;
    EXPECT_THAT(r.err, ::testing::HasSubstr("[0x")) << "no backtrace: " << r.err;
  }
}

TEST(SeccompFilterTest, EveryRoleInstallsAndKeepsItsCommonCalls) {
  for (ThreadRole role : {ThreadRole::kMain, ThreadRole::kVcpu, ThreadRole::kIo}) {
    ChildResult r = RunConfined(role, SeccompMode::kOn, [] {
      // A large block is an mmap, its release a munmap; a log line a write.
      auto big = std::make_unique<std::string>(4 << 20, 'x');
      big.reset();
      std::mutex mutex;
      std::lock_guard lock(mutex);
      (void)!::write(STDERR_FILENO, "ok", 2);
      return 0;
    });
    EXPECT_EQ(r.exit_code, 0) << ThreadRoleName(role) << ": " << r.err;
    EXPECT_EQ(r.err, "ok");
  }
}

TEST(SeccompFilterTest, EventfdsAreMadeOnVcpuAndIoThreadsOnly) {
  for (ThreadRole role : {ThreadRole::kMain, ThreadRole::kVcpu, ThreadRole::kIo}) {
    ChildResult r =
        RunConfined(role, SeccompMode::kOn, [] { return ::eventfd(0, EFD_CLOEXEC) >= 0 ? 0 : 3; });
    if (role == ThreadRole::kMain) {
      EXPECT_EQ(r.exit_code, kExitVmmError);
      EXPECT_EQ(r.err, Refusal(role, "eventfd2") + "\n");
    } else {
      EXPECT_EQ(r.exit_code, 0) << ThreadRoleName(role) << ": " << r.err;
    }
  }
}

TEST(SeccompFilterTest, AVcpuThreadCannotOpenASocket) {
  ChildResult r = RunConfined(ThreadRole::kVcpu, SeccompMode::kOn, [] {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    return fd >= 0 ? 0 : 4;  // only reached if the call was let through
  });
  EXPECT_EQ(r.exit_code, kExitVmmError);
  EXPECT_EQ(r.err, Refusal(ThreadRole::kVcpu, "socket") + "\n");
}

TEST(SeccompFilterTest, AVcpuThreadCannotExecAProgram) {
  ChildResult r = RunConfined(ThreadRole::kVcpu, SeccompMode::kOn, [] {
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    ::execv("/bin/true", argv);
    return 5;
  });
  EXPECT_EQ(r.exit_code, kExitVmmError);
  EXPECT_EQ(r.err, Refusal(ThreadRole::kVcpu, "execve") + "\n");
}

TEST(SeccompFilterTest, IoctlsAreFilteredByRequest) {
  // KVM_RUN is a vCPU's: on a bad fd the kernel answers EBADF.
  ChildResult allowed = RunConfined(ThreadRole::kVcpu, SeccompMode::kOn, [] {
    return ::ioctl(-1, KVM_RUN, 0) < 0 && errno == EBADF ? 0 : 6;
  });
  EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
  // Creating a VM is not, whatever the fd.
  ChildResult refused = RunConfined(ThreadRole::kVcpu, SeccompMode::kOn, [] {
    (void)::ioctl(-1, KVM_CREATE_VM, 0);
    return 7;
  });
  EXPECT_EQ(refused.exit_code, kExitVmmError);
  EXPECT_EQ(refused.err, Refusal(ThreadRole::kVcpu, "ioctl") + "\n");
  // Nor is KVM_RUN on the I/O thread.
  ChildResult io = RunConfined(ThreadRole::kIo, SeccompMode::kOn, [] {
    (void)::ioctl(-1, KVM_RUN, 0);
    return 8;
  });
  EXPECT_EQ(io.exit_code, kExitVmmError);
}

// glibc's malloc opens a /proc file on its own (the first shrink of a
// thread's heap); opening files fails with EACCES instead of stopping Skiff.
TEST(SeccompFilterTest, OpeningAFileFailsWithEaccesOnEveryThread) {
  for (ThreadRole role : {ThreadRole::kMain, ThreadRole::kVcpu, ThreadRole::kIo}) {
    ChildResult r = RunConfined(role, SeccompMode::kOn, [] {
      const int fd = ::open("/proc/sys/vm/overcommit_memory", O_RDONLY | O_CLOEXEC);
      return fd < 0 && errno == EACCES ? 0 : 13;
    });
    EXPECT_EQ(r.exit_code, 0) << ThreadRoleName(role) << ": " << r.err;
    EXPECT_EQ(r.err, "");
  }
}

TEST(SeccompFilterTest, NoThreadMapsExecutableMemory) {
  for (ThreadRole role : {ThreadRole::kMain, ThreadRole::kVcpu, ThreadRole::kIo}) {
    ChildResult r = RunConfined(role, SeccompMode::kOn, [] {
      void* rw = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (rw == MAP_FAILED) return 9;
      (void)::mprotect(rw, 4096, PROT_READ | PROT_EXEC);
      return 10;
    });
    EXPECT_EQ(r.exit_code, kExitVmmError) << ThreadRoleName(role);
    EXPECT_EQ(r.err, Refusal(role, "mprotect") + "\n");
  }
}

TEST(SeccompFilterTest, LogModeLetsARefusedCallThrough) {
  ChildResult r = RunConfined(ThreadRole::kVcpu, SeccompMode::kLog, [] {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    return fd >= 0 ? 0 : 11;
  });
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
}

TEST(SeccompFilterTest, OffInstallsNothing) {
  ChildResult r = RunConfined(ThreadRole::kVcpu, SeccompMode::kOff, [] {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    return fd >= 0 ? 0 : 12;
  });
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(SeccompFilterTest, EveryListedCallExistsForLibseccomp) {
  for (ThreadRole role : {ThreadRole::kMain, ThreadRole::kVcpu, ThreadRole::kIo}) {
    for (const seccomp::Rule& rule : SeccompAllowList(role)) {
      EXPECT_NE(seccomp_syscall_resolve_name(rule.syscall), __NR_SCMP_ERROR) << rule.syscall;
    }
  }
}

// docs/security.md carries the lists between two markers; they must be
// what the code installs.
TEST(SeccompDocTest, SecurityMdListsWhatTheCodeAllows) {
  const char* root = std::getenv("SKIFF_SOURCE_ROOT");
  ASSERT_NE(root, nullptr) << "SKIFF_SOURCE_ROOT is set by meson test";
  std::ifstream file(std::string(root) + "/docs/security.md");
  ASSERT_TRUE(file) << "docs/security.md not found under " << root;
  std::stringstream buffer;
  buffer << file.rdbuf();
  const std::string doc = buffer.str();
  const std::string begin =
      "<!-- seccomp-lists:begin (generated: tests/unit/seccomp_test.cc) -->\n";
  const std::string end = "<!-- seccomp-lists:end -->";
  const size_t from = doc.find(begin);
  const size_t to = doc.find(end);
  ASSERT_NE(from, std::string::npos) << "marker missing: " << begin;
  ASSERT_NE(to, std::string::npos) << "marker missing: " << end;
  const std::string listed = doc.substr(from + begin.size(), to - from - begin.size());
  EXPECT_EQ(listed, "\n" + SeccompAllowListsMarkdown() + "\n")
      << "docs/security.md is out of date; put this between the markers:\n\n"
      << SeccompAllowListsMarkdown();
}

}  // namespace
}  // namespace skiff

#include "vmm/seccomp_report.h"

#include <seccomp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "absl/strings/str_format.h"
#include "vmm/exit_codes.h"
#include "vmm/seccomp.h"
#include "vmm/signal_safe_text.h"

namespace skiff {
namespace {

// Names of system calls 0..kNames-1 on this architecture (x86-64 and arm64
// number theirs below 512).
constexpr int kNames = 512;
constexpr size_t kNameLength = 32;
char g_names[kNames][kNameLength];
std::once_flag g_names_filled;
std::once_flag g_handler_installed;

thread_local ThreadRole t_role = ThreadRole::kMain;

std::atomic<int> g_terminal_fd{-1};
termios g_terminal{};

void BuildMessage(SignalSafeText& line, ThreadRole role, int nr) {
  line.Add("skiff: seccomp: the ");
  line.Add(ThreadRoleName(role));
  line.Add(" thread made a system call outside its allow-list: ");
  line.Add(nr >= 0 && nr < kNames && g_names[nr][0] != '\0' ? g_names[nr] : "unknown");
  line.Add(" (");
  line.AddNumber(nr);
  line.Add("); Skiff stops (a Skiff bug: please report it; --seccomp log lets it run)");
}

void OnSigsys(int, siginfo_t* info, void*) {
  const int saved_errno = errno;
  SignalSafeText line;
  BuildMessage(line, t_role, info->si_syscall);
  line.Add("\n");
  RestoreTerminalForFatalExit();
  (void)!::write(STDERR_FILENO, line.data(), line.size());
  errno = saved_errno;
  // The system call itself, not _exit(): under the sanitizers _exit is
  // intercepted and first runs LeakSanitizer, whose ptrace-based check the
  // filter would refuse in turn.
  ::syscall(SYS_exit_group, kExitVmmError);
}

void FillNames() {
  for (int nr = 0; nr < kNames; ++nr) {
    char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    if (name == nullptr) continue;
    std::strncpy(g_names[nr], name, kNameLength - 1);
    std::free(name);
  }
}

}  // namespace

void PrepareSeccompNames() { std::call_once(g_names_filled, FillNames); }

absl::Status PrepareSeccompReport(ThreadRole role) {
  t_role = role;
  std::call_once(g_names_filled, FillNames);
  absl::Status status;
  std::call_once(g_handler_installed, [&status] {
    struct sigaction action {};
    action.sa_sigaction = OnSigsys;
    action.sa_flags = SA_SIGINFO;
    sigfillset(&action.sa_mask);
    if (::sigaction(SIGSYS, &action, nullptr) != 0) {
      status = absl::InternalError(
          absl::StrFormat("seccomp: installing the SIGSYS handler: %s", std::strerror(errno)));
    }
  });
  return status;
}

void SetTerminalToRestoreOnFatalExit(int fd, const termios& settings) {
  g_terminal_fd.store(-1);
  g_terminal = settings;
  g_terminal_fd.store(fd);
}

void ClearTerminalToRestoreOnFatalExit() { g_terminal_fd.store(-1); }

const char* CurrentThreadRoleName() { return ThreadRoleName(t_role); }

void RestoreTerminalForFatalExit() {
  const int fd = g_terminal_fd.load();
  if (fd >= 0) (void)::tcsetattr(fd, TCSANOW, &g_terminal);
}

std::string SeccompViolationMessage(ThreadRole role, int syscall_nr) {
  std::call_once(g_names_filled, FillNames);
  SignalSafeText line;
  BuildMessage(line, role, syscall_nr);
  return std::string(line.data(), line.size());
}

}  // namespace skiff

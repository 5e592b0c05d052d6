#include "vmm/fatal_signal_report.h"

#include <execinfo.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/strings/str_format.h"
#include "vmm/seccomp_report.h"
#include "vmm/signal_safe_text.h"

// Linker-defined: where the executable's image starts and its code ends.
extern "C" const char __executable_start;
extern "C" const char etext;

namespace skiff {
namespace {

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
constexpr int kMaxFrames = 64;
// The main thread's alternate signal stack (a stack overflow there still
// gets its report).
alignas(16) char g_alt_stack[64 * 1024];
std::once_flag g_installed;

const char* SignalName(int signal) {
  switch (signal) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    default: return "signal";
  }
}

void BuildLine(SignalSafeText& text, int signal, uintptr_t address, const char* role_name) {
  text.Add("skiff: fatal ");
  text.Add(SignalName(signal));
  text.Add(" at address ");
  text.AddHex(address);
  text.Add(" on the ");
  text.Add(role_name);
  text.Add(" thread (a Skiff bug: please report it with this backtrace)");
}

void OnFatalSignal(int signal, siginfo_t* info, void*) {
  const int saved_errno = errno;
  RestoreTerminalForFatalExit();
  SignalSafeText text;
  BuildLine(text, signal, reinterpret_cast<uintptr_t>(info->si_addr), CurrentThreadRoleName());
  text.Add("\n");
  (void)!::write(STDERR_FILENO, text.data(), text.size());
  // One write per frame (backtrace_symbols_fd would use writev, which the
  // filters refuse); offsets into the binary are what addr2line takes.
  void* frames[kMaxFrames];
  const int n = ::backtrace(frames, kMaxFrames);
  const auto start = reinterpret_cast<uintptr_t>(&__executable_start);
  const auto end = reinterpret_cast<uintptr_t>(&etext);
  for (int i = 0; i < n; ++i) {
    const auto pc = reinterpret_cast<uintptr_t>(frames[i]);
    SignalSafeText frame;
    frame.Add("  [");
    frame.AddHex(pc);
    frame.Add("]");
    if (pc >= start && pc < end) {
      frame.Add(" skiff+");
      frame.AddHex(pc - start);
    }
    frame.Add("\n");
    (void)!::write(STDERR_FILENO, frame.data(), frame.size());
  }
  errno = saved_errno;
  // SA_RESETHAND put the default action back. A fault re-executes its
  // instruction and dies of it, and abort() raises again itself; a signal
  // sent from outside would not come back, so end the process with the
  // status its default action gives.
  if (info->si_code <= 0 && signal != SIGABRT) ::syscall(SYS_exit_group, 128 + signal);
}

}  // namespace

absl::Status InstallFatalSignalReport() {
  absl::Status status;
  std::call_once(g_installed, [&status] {
    // Loads the unwinder (libgcc_s in a dynamic build) now.
    void* warm[2];
    (void)::backtrace(warm, 2);
    stack_t alt{};
    alt.ss_sp = g_alt_stack;
    alt.ss_size = sizeof(g_alt_stack);
    if (::sigaltstack(&alt, nullptr) != 0) {
      status = absl::InternalError(absl::StrFormat("sigaltstack: %s", std::strerror(errno)));
      return;
    }
    struct sigaction action {};
    action.sa_sigaction = OnFatalSignal;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    for (int signal : kSignals) {
      if (::sigaction(signal, &action, nullptr) != 0) {
        status = absl::InternalError(
            absl::StrFormat("installing the %s handler: %s", SignalName(signal),
                            std::strerror(errno)));
        return;
      }
    }
  });
  return status;
}

std::string FatalSignalLine(int signal, uintptr_t address, const char* role_name) {
  SignalSafeText text;
  BuildLine(text, signal, address, role_name);
  return std::string(text.data(), text.size());
}

}  // namespace skiff

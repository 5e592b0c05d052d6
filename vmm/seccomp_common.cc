// System calls every Skiff thread may make once confined: memory
// allocation, locks, logging, signals and leaving. No thread may map or
// protect memory executable.
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>

#include "vmm/seccomp_rules.h"

namespace skiff::seccomp {

std::vector<Rule> CommonRules() {
  constexpr uint64_t kExec = PROT_EXEC;
  return {
      // malloc (glibc: brk for the main arena, mmap'd arenas and large
      // blocks for threads) and glibc freeing a finished thread's stack.
      Allow("brk", "malloc (main arena)"),
      Rule{"mmap", {ArgMatch{2, kExec, 0}}, "no PROT_EXEC", "malloc: thread arenas, large blocks"},
      Rule{"mprotect", {ArgMatch{2, kExec, 0}}, "no PROT_EXEC", "malloc: growing a thread arena"},
      Allow("munmap", "free"),
      Allow("mremap", "realloc of large blocks"),
      Allow("madvise", "free; glibc releasing a finished thread's stack"),
      Allow("futex", "std::mutex, std::condition_variable, thread joins"),
      // Log lines (stderr) and every eventfd poke between threads.
      Allow("write", "log lines; eventfd signals between threads"),
      Allow("clock_gettime", "log timestamps when the vDSO cannot answer"),
      Allow("close", "closing eventfds and files of a reset device"),
      // Signals: the vCPU kick returns through rt_sigreturn; glibc blocks
      // signals while a thread exits.
      Allow("rt_sigreturn", "return from a signal handler (vCPU kick, SIGSYS report)"),
      Allow("rt_sigprocmask", "glibc blocks signals around thread exit"),
      Allow("restart_syscall", "a call interrupted by a signal is resumed"),
      Allow("gettid", "a vCPU thread records its ID for the kick signal"),
      // The terminal (left in raw mode by the console) is restored at
      // teardown, and by the report of a refused call before it exits.
      SKIFF_SECCOMP_IOCTL(TCSETS, "put the terminal back in cooked mode"),
      // glibc's malloc opens /proc/sys/vm/overcommit_memory the first time
      // it shrinks a thread's heap (found by the e2e-virtio-multi run, at
      // teardown); without it, it shrinks with madvise. Every other open
      // fails the same way: the filters are installed after every file
      // Skiff needs is open.
      FailWith("openat", EACCES, "EACCES", "glibc malloc's first heap shrink; no file opens"),
      FailWith("open", EACCES, "EACCES", "as openat (x86-64)"),
      Allow("exit", "a thread ends"),
      Allow("exit_group", "the process ends"),
  };
}

std::vector<Rule> SanitizerRules() {
#if defined(__SANITIZE_ADDRESS__)
  // ASan's runtime looks at the thread's alternate signal stack around
  // intercepted calls and at exit. Not in normal builds, and not in
  // docs/security.md's tables.
  return {Allow("sigaltstack", "sanitizer builds: ASan's signal stack checks")};
#else
  return {};
#endif
}

}  // namespace skiff::seccomp

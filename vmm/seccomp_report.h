// What the user sees when a confined thread makes a system call outside its
// allow-list (--seccomp on): a SIGSYS handler writes one line naming the
// thread role and the call, restores the terminal, and exits 1.
//
// A signal handler can only reach process-wide state, so this keeps a table
// of system call names (filled before the first filter is loaded, read-only
// afterwards), the calling thread's role (thread_local) and the terminal
// settings to restore.
#pragma once

#include <termios.h>

#include <string>

#include "absl/status/status.h"

namespace skiff {

enum class ThreadRole;

// Fills the table of system call names the report uses (once per process).
void PrepareSeccompNames();

// Records the calling thread's role and installs the SIGSYS handler (once
// per process). Called by InstallSeccompFilter before it loads a filter.
absl::Status PrepareSeccompReport(ThreadRole role);

// The console's terminal, to put back in cooked mode if Skiff dies of a
// refused call (the normal exit path restores it itself). fd < 0: none.
void SetTerminalToRestoreOnFatalExit(int fd, const termios& settings);
void ClearTerminalToRestoreOnFatalExit();

// For the fatal-signal report (vmm/fatal_signal_report.h); both are
// async-signal-safe. The calling thread's role as its seccomp filter knows
// it ("main" before any filter), and the terminal put back in cooked mode.
const char* CurrentThreadRoleName();
void RestoreTerminalForFatalExit();

// The line the handler writes for `syscall_nr` on a `role` thread (without
// the newline); for tests.
std::string SeccompViolationMessage(ThreadRole role, int syscall_nr);

}  // namespace skiff

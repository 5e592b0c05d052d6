// Skiff's process exit codes: part of its interface to scripts and CI.
// Documented in `skiff --help` and docs/exit-codes.md; never renumber.
//
// Skiff's own codes are 0-6 and 120-124; a guest chooses among 0 and
// 7-119 through the exit device (vmm/guest_exit.h), so a CI script can
// always tell the two apart. Everything stays below 125, which shells
// and `git bisect run` give meanings of their own.
#pragma once

namespace skiff {

enum ExitCode : int {
  kExitOk = 0,            // the guest powered off or rebooted
  kExitVmmError = 1,      // Skiff itself failed at run time
  kExitUsage = 2,         // bad command line or configuration
  kExitGuestPanic = 3,    // the guest kernel panicked (pvpanic)
  kExitGuestCrash = 4,    // triple fault, KVM emulation/entry failure
  kExitTimeout = 5,       // --timeout expired
  kExitSignal = 6,        // stopped by SIGINT/SIGTERM or the console escape
  // An --expect-fail pattern was seen on the console, or the guest ended
  // with 0 before every --expect pattern was seen.
  kExitConsoleCheck = 120,
};

// The exit codes a guest may choose through the exit device, besides 0.
inline constexpr int kGuestExitCodeMin = 7;
inline constexpr int kGuestExitCodeMax = 119;

}  // namespace skiff

// Skiff's process exit codes: part of its interface to scripts and CI.
// Documented in `skiff --help` and docs/exit-codes.md; never renumber.
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
};

}  // namespace skiff

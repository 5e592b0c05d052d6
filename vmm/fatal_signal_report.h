// What the user sees when Skiff itself crashes (SIGSEGV, SIGBUS, SIGILL,
// SIGFPE, SIGABRT): one line on stderr naming the signal, the faulting
// address and the role of the thread it hit, then a raw backtrace
// (addresses, with their offset into the binary for addr2line), with the terminal put
// back in cooked mode. Then the signal's default action runs as before
// (exit status 128+N, a core dump where enabled). Without it a crash in a
// test host leaves only the shell's "Segmentation fault".
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace skiff {

// Installs the handlers (once per process), with an alternate stack for
// the calling thread so a stack overflow there is reported too. Call early,
// before any thread starts and before the seccomp filters load: the
// unwinder is loaded now, since loading it inside the handler would need
// system calls the filters refuse.
absl::Status InstallFatalSignalReport();

// The first line the handler writes (without the newline); for tests.
std::string FatalSignalLine(int signal, uintptr_t address, const char* role_name);

}  // namespace skiff

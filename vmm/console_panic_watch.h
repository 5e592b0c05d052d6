// Ends the run as a guest panic (kExitGuestPanic) when the kernel's panic
// line, "Kernel panic - not syncing", reaches the console: for guests whose
// kernel has no pvpanic driver (Debian's arm64 cloud kernel), where a panic
// with panic=-1 would otherwise look like an ordinary PSCI reboot (exit 0).
//
// Only a line that starts with the message (after an optional printk
// timestamp "[   12.345678] ") counts, so a program printing it mid-line
// does not end the run. The line is seen on the vCPU thread that writes it,
// before the kernel goes on to reboot, so the panic wins that race.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "vmm/line_splitter.h"
#include "vmm/shutdown.h"

namespace skiff {

class ConsolePanicWatch {
 public:
  // `shutdown` must outlive the watch.
  explicit ConsolePanicWatch(Shutdown* shutdown) : shutdown_(shutdown) {}

  // Console output, in order (a Console output observer).
  void OnOutput(std::span<const uint8_t> bytes);

  static bool IsPanicLine(std::string_view line);

 private:
  Shutdown* shutdown_;
  LineSplitter lines_;
  bool fired_ = false;
};

}  // namespace skiff

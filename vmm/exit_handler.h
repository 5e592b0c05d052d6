// Turns one decoded KVM exit into bus accesses or a stop decision.
// A free function over `kvm_run`, so it is unit-testable without KVM.
#pragma once

#include <linux/kvm.h>

#include <string>

#include "vmm/bus.h"

namespace skiff {

struct ExitBuses {
  const Bus* pio = nullptr;   // x86 only
  const Bus* mmio = nullptr;
};

struct ExitOutcome {
  enum class Kind { kContinue, kStop };
  Kind kind = Kind::kContinue;
  int exit_code = 0;
  std::string reason;
  // True when the reason should be completed with the vCPU's registers and
  // instruction bytes (internal errors, entry failures).
  bool describe_cpu = false;

  static ExitOutcome Continue() { return {}; }
  static ExitOutcome Stop(int code, std::string reason, bool describe = false) {
    return {Kind::kStop, code, std::move(reason), describe};
  }
};

// `run` must be the vCPU's whole kvm_run mapping: port I/O data lives at
// run.io.data_offset inside it.
ExitOutcome HandleExit(kvm_run& run, const ExitBuses& buses);

}  // namespace skiff

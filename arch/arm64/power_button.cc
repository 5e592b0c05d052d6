// ARM64's part of arch::PressPowerButton (arch/arch.h), to be filled in with
// the ARM64 platform: a gpio-keys KEY_POWER (or an equivalent event the
// guest's PSCI-aware userspace acts on) described in the device tree.
#include "absl/status/status.h"
#include "arch/arch.h"

namespace skiff::arch {

absl::Status PressPowerButton(Machine& /*machine*/) {
  return absl::UnimplementedError(
      "shutdown over the control socket is not implemented on ARM64 yet (the guest has no "
      "power button); use shutdown --force, or power off from inside the guest");
}

}  // namespace skiff::arch

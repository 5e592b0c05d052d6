// How a guest's request to exit (devices/legacy/exit_device.h,
// devices/legacy/isa_debug_exit.h) becomes Skiff's exit status. Shared by
// both architectures' device wiring.
#pragma once

#include <cstdint>

#include "vmm/shutdown.h"

namespace skiff {

// The exit device: the value written is the exit code, exactly, when it is
// 0 or in kGuestExitCodeMin..kGuestExitCodeMax. Any other value would be
// mistaken for one of Skiff's own codes (or is no exit code at all), so it
// ends the run as a guest error (kExitGuestCrash) whose reason names it.
ExitStatus ExitDeviceStatus(uint32_t value);

// isa-debug-exit: exit status (value << 1) | 1, as QEMU. A process exit
// status has 8 bits, so only the value's low 7 bits count (as with QEMU);
// the result is odd and can coincide with Skiff's codes 1, 3 and 5 - the
// price of the convention.
ExitStatus IsaDebugExitStatus(uint32_t value);

}  // namespace skiff

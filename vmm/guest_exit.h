// How a guest's request to exit (devices/legacy/exit_device.h) becomes Skiff's exit status. Shared by
// both architectures' device wiring.
#pragma once

#include <cstdint>
#include <memory>

#include "devices/legacy/exit_device.h"
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

// The devices, wired to end the run through `shutdown` (which must outlive
// them) with the statuses above. An architecture only places them: on its
// MMIO bus and in its platform description (ACPI _HID "SKIF0001" on x86,
// a device-tree node on ARM64), and isa-debug-exit on x86's port bus.
std::shared_ptr<ExitDevice> MakeExitDevice(Shutdown& shutdown);
std::shared_ptr<ExitDevice> MakeIsaDebugExit(Shutdown& shutdown);

}  // namespace skiff

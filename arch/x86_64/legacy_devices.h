// The PC legacy devices Skiff gives an x86 guest, wired to the machine:
// COM1, the i8042 reset line, ACPI power management, pvpanic, and the two
// ways a guest picks Skiff's exit code (the exit device, isa-debug-exit).
#pragma once

#include "absl/status/status.h"

namespace skiff {
class Machine;
}

namespace skiff::x86 {

// `uart_takes_input`: COM1 receives what the user types (it is the
// console); otherwise another console device (virtio-console) does.
absl::Status AddLegacyDevices(Machine& machine, bool uart_takes_input);

// The exit device at kExitDeviceAddress and isa-debug-exit at
// kIsaDebugExitPort; part of AddLegacyDevices.
absl::Status AddGuestExitDevices(Machine& machine);

}  // namespace skiff::x86

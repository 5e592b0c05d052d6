// The PC legacy devices Skiff gives an x86 guest, wired to the machine:
// COM1, the i8042 reset line, ACPI power management and pvpanic.
#pragma once

#include "absl/status/status.h"

namespace skiff {
class Machine;
}

namespace skiff::x86 {

// `uart_takes_input`: COM1 receives what the user types (it is the
// console); otherwise another console device (virtio-console) does.
absl::Status AddLegacyDevices(Machine& machine, bool uart_takes_input);

}  // namespace skiff::x86

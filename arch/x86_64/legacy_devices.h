// The PC legacy devices Skiff gives an x86 guest, wired to the machine:
// COM1, the i8042 reset line, ACPI power management and pvpanic.
#pragma once

#include "absl/status/status.h"

namespace skiff {
class Machine;
}

namespace skiff::x86 {

absl::Status AddLegacyDevices(Machine& machine);

}  // namespace skiff::x86

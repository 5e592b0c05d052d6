// The small devices every arm64 guest gets on the MMIO bus, at the
// addresses layout.h gives and the device tree describes: the 16550A UART,
// the PL031 RTC, Skiff's exit device, pvpanic and the PL061 GPIO of the
// power key - and a watch for the kernel's panic line on the console, for
// kernels without pvpanic.
#pragma once

#include "absl/status/status.h"

namespace skiff {
class Machine;
}

namespace skiff::arm64 {

// `uart_takes_input`: the UART receives what the user types (it is the
// console); otherwise another console device (virtio-console) does.
absl::Status AddPlatformDevices(Machine& machine, bool uart_takes_input);

}  // namespace skiff::arm64

// The arm64 power button: a PL061 GPIO controller whose line
// kPowerKeyGpioLine the device tree calls a gpio-keys KEY_POWER. A press
// holds the line high for kPowerKeyPressTime, like a finger on a button:
// gpio-keys debounces and reads the line after the edge interrupt, so an
// instant pulse would be lost; the edge alone is latched in GPIORIS.
#pragma once

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace skiff {
class Machine;
}

namespace skiff::arm64 {

inline constexpr absl::Duration kPowerKeyPressTime = absl::Milliseconds(100);

// Puts the PL061 on the MMIO bus (interrupt: kGpioSpi, level) and gives the
// machine its power button (Machine::set_power_button).
absl::Status AddPowerKey(Machine& machine);

}  // namespace skiff::arm64

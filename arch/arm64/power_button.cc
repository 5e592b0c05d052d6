// The arm64 power button (power_button.h) and arm64's part of
// arch::PressPowerButton (arch/arch.h).
#include "arch/arm64/power_button.h"

#include <memory>

#include "arch/arch.h"
#include "arch/arm64/layout.h"
#include "devices/legacy/pl061.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/one_shot_timer.h"
#include "vmm/status_macros.h"

namespace skiff::arm64 {

absl::Status AddPowerKey(Machine& machine) {
  static_assert(Pl061::kLines == kGpioLines && Pl061::kRegisterSize <= kGpioSize);
  ASSIGN_OR_RETURN(std::shared_ptr<IrqLine> irq, machine.MakeLevelIrqLine(kGpioSpi));
  auto gpio = std::make_shared<Pl061>(std::move(irq));
  RETURN_IF_ERROR(
      machine.mmio_bus().Register(kGpioBase, Pl061::kRegisterSize, gpio, "GPIO (PL061)"));
  ASSIGN_OR_RETURN(
      std::unique_ptr<OneShotTimer> release,
      OneShotTimer::Create(
          machine.event_loop(), [gpio] { gpio->SetInput(kPowerKeyGpioLine, false); }, "power key"));
  std::shared_ptr<OneShotTimer> timer = std::move(release);
  // Runs on the thread that serves the control socket (the I/O thread).
  machine.set_power_button([gpio, timer] {
    gpio->SetInput(kPowerKeyGpioLine, true);
    absl::Status armed = timer->Arm(kPowerKeyPressTime);
    if (!armed.ok()) {
      // The rising edge is latched already; let go at once rather than
      // hold the key down for ever.
      LOG_WARN("control", "%s; releasing the power key at once", armed.message());
      gpio->SetInput(kPowerKeyGpioLine, false);
    }
  });
  return absl::OkStatus();
}

}  // namespace skiff::arm64

namespace skiff::arch {

absl::StatusOr<std::string> PressPowerButton(Machine& machine) {
  if (!machine.power_button()) {
    return absl::FailedPreconditionError("the machine has no power button");
  }
  machine.power_button()();
  return std::string("gpio power key");
}

}  // namespace skiff::arch

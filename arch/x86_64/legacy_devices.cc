#include "arch/x86_64/legacy_devices.h"

#include <atomic>
#include <memory>

#include "arch/x86_64/acpi.h"
#include "arch/x86_64/layout.h"
#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/pvpanic.h"
#include "devices/legacy/serial_16550.h"
#include "vmm/log.h"
#include "vmm/exit_codes.h"
#include "vmm/guest_exit.h"
#include "vmm/machine.h"
#include "vmm/status_macros.h"

namespace skiff::x86 {

absl::Status AddLegacyDevices(Machine& machine, bool uart_takes_input) {
  Console* console = &machine.console();
  auto serial = std::make_shared<Serial16550>(
      machine.vm().MakeIrqLine(kCom1Irq),
      [console](std::span<const uint8_t> bytes) { console->Output(bytes); });
  RETURN_IF_ERROR(machine.pio_bus().Register(kCom1Port, Serial16550::kRegisterCount,
                                             serial, "COM1 (16550A)"));
  // Input the UART refuses stays in the console until the guest drains the
  // receive buffer; the UART's input-ready callback then retries delivery.
  if (uart_takes_input) {
    serial->SetInputReadyCallback([console] { console->InputReady(); });
    console->SetInputSink([serial](std::span<const uint8_t> bytes) {
      return serial->EnqueueInput(bytes);
    });
  }

  Shutdown* shutdown = &machine.shutdown();
  auto kbc = std::make_shared<I8042>([shutdown] {
    shutdown->Request(kExitOk, "guest rebooted (i8042 reset)");
  });
  RETURN_IF_ERROR(machine.pio_bus().Register(kI8042DataPort, 1, I8042::DataPort(kbc),
                                             "i8042 data"));
  RETURN_IF_ERROR(machine.pio_bus().Register(kI8042CommandPort, 1,
                                             I8042::CommandPort(kbc), "i8042 command"));

  AcpiPm::Options pm;
  pm.s5_sleep_type = kAcpiS5SleepType;
  pm.reset_value = kAcpiResetValue;
  pm.on_poweroff = [shutdown] { shutdown->Request(kExitOk, "guest powered off (ACPI S5)"); };
  pm.on_reset = [shutdown] { shutdown->Request(kExitOk, "guest rebooted (ACPI reset)"); };
  // Guest-triggered, on a vCPU thread: said once, or a looping guest would
  // fill the log.
  pm.on_unsupported_sleep = [said = std::make_shared<std::atomic<bool>>(false)](uint8_t type) {
    if (!said->exchange(true)) {
      LOG_WARN("acpi", "guest asked for unsupported sleep type %u; ignored", type);
    }
  };
  RETURN_IF_ERROR(machine.pio_bus().Register(kAcpiSleepControlPort, AcpiPm::kRegisterCount,
                                             std::make_shared<AcpiPm>(std::move(pm)),
                                             "ACPI PM"));

  // The control socket's `shutdown`: one edge on the Generic Event Device's
  // line; the DSDT's _EVT turns it into a power button press.
  std::shared_ptr<IrqLine> ged = machine.vm().MakeIrqLine(kAcpiGedIrq);
  machine.set_power_button([ged] { ged->Pulse(); });

  auto pvpanic = std::make_shared<Pvpanic>(
      [shutdown] { shutdown->Request(kExitGuestPanic, "guest kernel panic (pvpanic)"); },
      [said = std::make_shared<std::atomic<bool>>(false)] {
        if (!said->exchange(true)) LOG_INFO("pvpanic", "guest loaded a crash kernel");
      });
  RETURN_IF_ERROR(machine.pio_bus().Register(kPvpanicPort, Pvpanic::kRegisterCount, pvpanic,
                                             "pvpanic"));
  return AddGuestExitDevices(machine);
}

absl::Status AddGuestExitDevices(Machine& machine) {
  static_assert(ExitDevice::kRegisterSize == kExitDeviceRegisterSize,
                "the DSDT must describe the register the bus decodes");
  RETURN_IF_ERROR(machine.mmio_bus().Register(kExitDeviceAddress, ExitDevice::kRegisterSize,
                                              MakeExitDevice(machine.shutdown()),
                                              "exit device"));
  return machine.pio_bus().Register(kIsaDebugExitPort, ExitDevice::kIsaDebugExitPorts,
                                    MakeIsaDebugExit(machine.shutdown()), "isa-debug-exit");
}

}  // namespace skiff::x86

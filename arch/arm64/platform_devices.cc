#include "arch/arm64/platform_devices.h"

#include <memory>

#include "arch/arm64/layout.h"
#include "arch/arm64/power_button.h"
#include "devices/legacy/pl031.h"
#include "devices/legacy/pvpanic.h"
#include "devices/legacy/serial_16550.h"
#include "vmm/console_panic_watch.h"
#include "vmm/exit_codes.h"
#include "vmm/guest_exit.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/status_macros.h"

namespace skiff::arm64 {

absl::Status AddPlatformDevices(Machine& machine, bool uart_takes_input) {
  Bus& mmio = machine.mmio_bus();
  Console* console = &machine.console();
  ASSIGN_OR_RETURN(std::shared_ptr<IrqLine> uart_irq, machine.MakeLevelIrqLine(kUartSpi));
  auto serial = std::make_shared<Serial16550>(
      std::move(uart_irq), [console](std::span<const uint8_t> bytes) { console->Output(bytes); });
  RETURN_IF_ERROR(mmio.Register(kUartBase, Serial16550::kRegisterCount, serial, "UART (16550A)"));
  if (uart_takes_input) {
    serial->SetInputReadyCallback([console] { console->InputReady(); });
    console->SetInputSink(
        [serial](std::span<const uint8_t> bytes) { return serial->EnqueueInput(bytes); });
  }

  RETURN_IF_ERROR(mmio.Register(kRtcBase, Pl031::kRegisterSize, std::make_shared<Pl031>(),
                                "RTC (PL031)"));

  static_assert(ExitDevice::kRegisterSize <= kExitDeviceSize);
  RETURN_IF_ERROR(mmio.Register(kExitDeviceBase, ExitDevice::kRegisterSize,
                                MakeExitDevice(machine.shutdown()), "exit device"));

  Shutdown* shutdown = &machine.shutdown();
  // Debian's arm64 cloud kernel has no pvpanic driver: its panic line on
  // the console is then the only sign (panic=-1 reboots through PSCI).
  auto panic_watch = std::make_shared<ConsolePanicWatch>(shutdown);
  console->AddOutputObserver(
      [panic_watch](std::span<const uint8_t> bytes) { panic_watch->OnOutput(bytes); });
  auto pvpanic = std::make_shared<Pvpanic>(
      [shutdown] { shutdown->Request(kExitGuestPanic, "guest kernel panic (pvpanic)"); },
      [] { LOG_INFO("pvpanic", "guest loaded a crash kernel"); });
  RETURN_IF_ERROR(mmio.Register(kPvpanicBase, Pvpanic::kRegisterCount, pvpanic, "pvpanic"));
  return AddPowerKey(machine);
}

}  // namespace skiff::arm64

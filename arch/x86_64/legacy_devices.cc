#include "arch/x86_64/legacy_devices.h"

#include <memory>

#include "arch/x86_64/layout.h"
#include "devices/legacy/serial_16550.h"
#include "vmm/exit_codes.h"
#include "vmm/machine.h"
#include "vmm/status_macros.h"

namespace skiff::x86 {

absl::Status AddLegacyDevices(Machine& machine) {
  Console* console = &machine.console();
  auto serial = std::make_shared<Serial16550>(
      machine.vm().MakeIrqLine(kCom1Irq),
      [console](std::span<const uint8_t> bytes) { console->Output(bytes); });
  RETURN_IF_ERROR(machine.pio_bus().Register(kCom1Port, Serial16550::kRegisterCount,
                                             serial, "COM1 (16550A)"));
  console->SetInputSink([serial](std::span<const uint8_t> bytes) {
    return serial->EnqueueInput(bytes);
  });
  return absl::OkStatus();
}

}  // namespace skiff::x86

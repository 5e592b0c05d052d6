// Legacy INTx wiring of the root bus: four interrupt lines (the root's
// INTA-D, i.e. four GSIs) shared by up to 32 slots with the conventional
// swizzle, slot s pin p -> line (s + p - 1) mod 4 (p = 1 for INTA), the
// same mapping the ACPI _PRT / device-tree interrupt-map describes.
//
// PCI INTx is level-triggered and wired-OR: a shared line stays asserted
// until the last device deasserts. Skiff drives every GSI from one KVM irq
// source, so that OR has to happen here, not in KVM.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "vmm/irq_line.h"

namespace skiff::pci {

inline constexpr int kIntxLines = 4;

// Which of the four root lines slot `slot`'s pin `pin` (1-4) drives.
constexpr int IntxSwizzle(uint8_t slot, uint8_t pin) { return (slot + pin - 1) % kIntxLines; }

class IntxRouter {
 public:
  // `lines[i]` is the root's INTA+i; any may be null (that line unwired).
  explicit IntxRouter(std::array<std::shared_ptr<IrqLine>, kIntxLines> lines);

  // A new input for the device in `slot` using `pin` (1-4); nullptr when
  // the pin is invalid or its line is unwired.
  std::shared_ptr<IrqLine> LineFor(uint8_t slot, uint8_t pin);

 private:
  class SharedLine;
  class Input;
  std::array<std::shared_ptr<SharedLine>, kIntxLines> lines_;
};

}  // namespace skiff::pci

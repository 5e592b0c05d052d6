// An interrupt line as a device sees it. Devices never issue KVM ioctls:
// the VM hands them an IrqLine wired to KVM_IRQ_LINE, an irqfd, or (in
// tests) a fake that records what happened.
#pragma once

namespace skiff {

class IrqLine {
 public:
  virtual ~IrqLine() = default;
  // Level-triggered lines (ISA devices on the IOAPIC, GIC SPIs).
  virtual void SetLevel(bool asserted) = 0;
  // Edge: one pulse (irqfd, MSI).
  virtual void Pulse() = 0;
};

}  // namespace skiff

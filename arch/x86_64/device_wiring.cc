// x86-64 device wiring: the in-kernel irqchip's default routes, the GSIs
// given to virtio-mmio devices and where the PCI root sits.
#include "absl/strings/str_format.h"
#include "arch/arch.h"
#include "arch/x86_64/layout.h"

namespace skiff::arch {

IrqRoutingBase DefaultIrqRouting() {
  // What KVM_CREATE_IRQCHIP installs on x86: ISA IRQs 0-15 reach both the
  // PICs and the IOAPIC, GSIs 16-23 only the IOAPIC.
  IrqRoutingBase base;
  for (uint32_t gsi = 0; gsi < x86::kIoapicPins; ++gsi) {
    kvm_irq_routing_entry ioapic{};
    ioapic.gsi = gsi;
    ioapic.type = KVM_IRQ_ROUTING_IRQCHIP;
    ioapic.u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
    ioapic.u.irqchip.pin = gsi;
    if (gsi < 16) {
      kvm_irq_routing_entry pic = ioapic;
      pic.u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
      pic.u.irqchip.pin = gsi % 8;
      base.routes.push_back(pic);
    }
    base.routes.push_back(ioapic);
  }
  base.first_msi_gsi = x86::kIoapicPins;
  return base;
}

absl::StatusOr<MmioSlot> VirtioMmioSlot(uint32_t index) {
  if (index >= std::size(x86::kVirtioMmioGsis)) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "too many virtio-mmio devices: x86 has room for %zu (use transport=pci for more)",
        std::size(x86::kVirtioMmioGsis)));
  }
  MmioSlot slot;
  slot.base = x86::kVirtioMmioBase + index * x86::kVirtioMmioSlotSize;
  slot.size = x86::kVirtioMmioSlotSize;
  slot.gsi = x86::kVirtioMmioGsis[index];
  slot.on_cmdline = true;
  return slot;
}

PciLayout PlatformPciLayout() {
  PciLayout layout;
  layout.ecam_base = x86::kPciEcamBase;
  layout.ecam_size = x86::kPciEcamSize;
  layout.mmio32_base = x86::kPciMmio32Base;
  layout.mmio32_size = x86::kPciMmio32Size;
  layout.intx_gsi_base = x86::kPciIntxGsiBase;
  layout.config_port = x86::kPciConfigIoPort;
  layout.config_port_size = x86::kPciConfigIoSize;
  layout.io_base = x86::kPciIoBase;
  layout.io_size = x86::kPciIoSize;
  return layout;
}

uint32_t IrqLineNumber(uint32_t gsi) { return gsi; }

}  // namespace skiff::arch

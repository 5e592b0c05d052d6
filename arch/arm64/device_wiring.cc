// arm64 device wiring: the routing table's SPI routes, the virtio-mmio
// slots and the PCI root's place in the memory map.
#include <linux/kvm.h>

#include "absl/strings/str_format.h"
#include "arch/arch.h"
#include "arch/arm64/layout.h"

namespace skiff::arch {

IrqRoutingBase DefaultIrqRouting() {
  // What the vGIC installs at init (GSI n -> SPI n), for the wired SPIs:
  // every KVM_SET_GSI_ROUTING must repeat them or irqfds on them go dead.
  IrqRoutingBase base;
  for (uint32_t spi = 0; spi < arm64::kWiredSpis; ++spi) {
    kvm_irq_routing_entry e{};
    e.gsi = spi;
    e.type = KVM_IRQ_ROUTING_IRQCHIP;
    e.u.irqchip.irqchip = 0;
    e.u.irqchip.pin = spi;
    base.routes.push_back(e);
  }
  base.first_msi_gsi = arm64::kWiredSpis;
  return base;
}

absl::StatusOr<MmioSlot> VirtioMmioSlot(uint32_t index) {
  if (index >= arm64::kVirtioMmioSlots) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "too many virtio-mmio devices: arm64 has room for %u (use transport=pci for more)",
        arm64::kVirtioMmioSlots));
  }
  MmioSlot slot;
  slot.base = arm64::kVirtioMmioBase + index * arm64::kVirtioMmioSlotSize;
  slot.size = arm64::kVirtioMmioSlotSize;
  slot.gsi = arm64::kVirtioMmioSpiBase + index;
  slot.on_cmdline = false;  // the device tree describes it
  return slot;
}

PciLayout PlatformPciLayout() {
  PciLayout layout;
  layout.ecam_base = arm64::kPciEcamBase;
  layout.ecam_size = arm64::kPciEcamSize;
  layout.mmio32_base = arm64::kPciMmio32Base;
  layout.mmio32_size = arm64::kPciMmio32Size;
  layout.mmio64_base = arm64::kPciMmio64Base;
  layout.mmio64_size = arm64::kPciMmio64Size;
  layout.intx_gsi_base = arm64::kPciIntxSpiBase;
  // ECAM only: no 0xCF8 ports on arm64.
  return layout;
}

uint32_t IrqLineNumber(uint32_t gsi) {
  // KVM_IRQ_LINE on arm64: type in bits 24-27, the GIC interrupt ID below.
  return (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | (arm64::kGicSpiBase + gsi);
}

}  // namespace skiff::arch

// Builds the devices passed through with VFIO (--device vfio=...): opened
// and checked before any KVM set-up (so a device not bound to vfio-pci, a
// group that is not viable or a missing /dev/vfio is one clear line), then
// placed on the PCI root once the VM exists. fsl-mc containers (--device
// fsl-mc=..., ARM64) are opened here too, in the same VFIO container; the
// arm64 platform code places them (arch/arm64/fsl_mc_wiring.h).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "arch/arch.h"
#include "devices/pci/pci_root.h"
#include "devices/vfio/fsl_mc/fsl_mc_container.h"
#include "devices/vfio/vfio_container.h"
#include "devices/vfio/vfio_kernel.h"

namespace skiff {

class Machine;
struct VmConfig;

struct OpenedVfioDevices {
  std::shared_ptr<vfio::VfioContainer> container;  // null: no device asked for
  std::vector<vfio::VfioDevice> devices;
  std::vector<bool> expose_rom;  // per device, in order: rom=on
  // Per device, in order: the rom=FILE image, read at start-up; null: the
  // device's own ROM (or none).
  std::vector<std::shared_ptr<const std::vector<uint8_t>>> rom_images;
  std::vector<std::unique_ptr<vfio::fsl_mc::FslMcContainer>> fsl_mc;
};

// Checks each device in sysfs (config.sysfs_root), opens the container,
// the groups and the devices through `kernel`, then checks that guest RAM
// (config.memory_bytes, laid out as the platform will) can be DMA-mapped:
// VfioContainer::CheckGuestRam.
absl::StatusOr<OpenedVfioDevices> OpenVfioDevices(const VmConfig& config,
                                                  std::shared_ptr<vfio::VfioKernel> kernel);

// How a passed-through function in `slot` of the platform's PCI root reaches
// the guest's interrupt controller: its requester ID, which every MSI route
// carries as the DeviceID (what a GICv3 ITS matches; the arm64 device
// tree's identity msi-map has the guest's ITS driver use the same), and the
// GSI of its INTA, the root's swizzle onto its four lines (what the arm64
// interrupt-map and the x86 ACPI tables describe).
struct PassthroughWiring {
  uint16_t devid = 0;
  uint32_t intx_gsi = 0;
};
PassthroughWiring WiringForSlot(const arch::PciLayout& layout, const pci::PciRoot::Slot& slot);

// Maps guest RAM for DMA, registers the groups with the KVM-VFIO device,
// attaches one VfioPciDevice per device to the machine's PCI root and hands
// the fsl-mc containers to the machine. An exposed expansion ROM gets an
// address as firmware would give it (decoding off), from the top of the
// 32-bit PCI window down (the root fills it from the bottom).
absl::Status AttachVfioDevices(Machine& machine, OpenedVfioDevices opened);

}  // namespace skiff

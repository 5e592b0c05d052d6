// The arm64 side of fsl-mc (DPAA2) container passthrough (--device
// fsl-mc=dprc.N, docs/fsl-mc.md): where the container's portals sit in the
// memory map (layout.h kFslMcBase), which IDs its interrupts carry, and its
// device-tree node. The container itself is opened before any KVM set-up
// through the machine's one VFIO container (vmm/vfio_setup.h), so it shares
// the IOMMU domain and the guest-RAM DMA map with vfio-pci devices.
//
// AttachFslMc makes no KVM call of its own (memory slots, MSI routes and
// the MMIO bus come through interfaces), so it is built on every host and
// unit-tested against the vfio-fsl-mc test double; AttachFslMcContainers is
// its arm64-only caller with the machine's real ones.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "devices/vfio/fsl_mc/fsl_mc_container.h"
#include "devices/vfio/fsl_mc/fsl_mc_fdt.h"
#include "vmm/bus.h"
#include "vmm/memory_slot_registrar.h"
#include "vmm/msi_vector.h"

namespace skiff {
class Machine;
}

namespace skiff::arm64 {

// The ICID the guest reads from DPRC GET_ATTR, and the ITS DeviceID the
// node's msi-map turns it into. KVM's vITS has 16 DeviceID bits; the PCI
// host bridge's msi-map is the identity on requester IDs, and Skiff's one
// PCI bus only uses 0x00-0xff, so 0x1000 meets no PCI function.
inline constexpr vfio::fsl_mc::FslMcGuestIds kFslMcGuestIds{1, 0x1000};

struct FslMcWiring {
  MsiAllocator* msi = nullptr;           // one route + irqfd per MC interrupt
  MemorySlotRegistrar* slots = nullptr;  // the QBMan portals
  Bus* mmio = nullptr;                   // the trapped MC portals
  uint64_t page_size = 4096;             // the host's
  bool has_its = false;                  // the vGIC is a GICv3 with an ITS
};

// Places `mc` in the fsl-mc window (QBMan portals become memory slots, MC
// portals trapped devices on the bus) and returns its device-tree node,
// whose msi-map points at the ITS (platform_fdt.h kMsiPhandle). Fails,
// naming the container, without an ITS: the guest's fsl-mc bus takes its
// MSI domain from one only.
absl::StatusOr<vfio::fsl_mc::FslMcNodeParams> AttachFslMc(vfio::fsl_mc::FslMcContainer& mc,
                                                          const FslMcWiring& wiring);

// arm64 only: AttachFslMc for each of machine.fsl_mc_containers() with the
// machine's MSI allocator, VM and MMIO bus; once the vGIC is initialised.
absl::StatusOr<std::vector<vfio::fsl_mc::FslMcNodeParams>> AttachFslMcContainers(Machine& machine);

}  // namespace skiff::arm64

// The guest device-tree node of an assigned fsl-mc container, written with
// libfdt's sequential-write calls into the tree the ARM64 code is building
// (between its fdt_begin_node/fdt_end_node of the root).
//
// Binding: Documentation/devicetree/bindings/misc/fsl,qoriq-mc.yaml (Linux).
//   compatible = "fsl,qoriq-mc"; #address-cells = <3>; #size-cells = <1>;
//   reg = the command portal of the guest's root container (the assigned
//         DPRC's trapped portal). The second reg entry, the MC control
//         registers, "may not be present ... in the device tree presented to
//         a virtual machine": left out, so the guest cannot pause the real MC.
//   ranges = <0 0 0  parent-hi parent-lo size> for MC portals (type 0) and
//            <1 0 0  parent-hi parent-lo size> for QBMan portals (type 1).
//   msi-map = <icid its-phandle device-id 1>: the guest's MSIs for the
//         container carry the ITS DeviceID the VMM routes them with.
//   dma-coherent (DPAA2 DMA is coherent on LS/LX parts).
// No iommu-map (no vIOMMU: the guest programs guest-physical addresses,
// which the host IOMMU maps 1:1) and no dpmacs (board PHYs stay the host's).
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "devices/vfio/fsl_mc/fsl_mc_layout.h"

namespace skiff::vfio::fsl_mc {

struct FslMcNodeParams {
  uint64_t root_portal_gpa = 0;
  uint64_t root_portal_size = 0;
  uint64_t mc_base = 0, mc_size = 0;        // ranges type 0
  uint64_t qbman_base = 0, qbman_size = 0;  // ranges type 1 (size 0: no entry)
  uint16_t icid = 0;
  uint32_t its_phandle = 0;
  uint32_t its_device_id = 0;
};

// Writes "fsl-mc@<reg address>" as a child of the node being written.
// The parent must have #address-cells = <2> and #size-cells = <2> (the
// ARM64 root). `fdt` is a tree under construction (fdt_create ...).
absl::Status WriteFslMcNode(void* fdt, const FslMcNodeParams& params);

}  // namespace skiff::vfio::fsl_mc

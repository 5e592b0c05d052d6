// The in-kernel interrupt controller for arm64 guests: a GICv3 with an ITS
// (MSIs from PCI devices, DeviceID = requester ID) where the host can, else
// an emulated GICv2 without MSIs (PCI devices then use INTx). Addresses and
// the SPI count come from layout.h.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "arch/arm64/platform_fdt.h"

namespace skiff {
class Vm;
}

namespace skiff::arm64 {

// Before the vCPUs exist: creates the vGIC (and ITS) and places them.
// Fails naming what the host lacks when neither GIC version can be made.
absl::Status CreateGic(Vm& vm);

// What CreateGic made, for the device tree.
struct GicSetup {
  GicKind kind = GicKind::kV3;
  bool msi_controller = false;
};
GicSetup DescribeGic(const Vm& vm);

// After every vCPU exists: KVM_DEV_ARM_VGIC_CTRL_INIT on the GIC, then the
// ITS. Fails for more vCPUs than the GIC version can address.
absl::Status InitGic(Vm& vm, uint32_t num_cpus);

// The vCPU limit of the GIC CreateGic made.
uint32_t MaxVcpus(const Vm& vm);

}  // namespace skiff::arm64

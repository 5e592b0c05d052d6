// Builds the virtio devices the user asked for (--disk, --net, --console
// virtio) and puts each behind its transport: a virtio-mmio slot from the
// architecture's memory map, or a function on the PCI root bus.
#pragma once

#include "absl/status/status.h"

namespace skiff {

class Machine;
struct VmConfig;

// Called before the platform is described, so ACPI / the device tree and
// the kernel command line can name every device placed here.
absl::Status AttachVirtioDevices(Machine& machine, const VmConfig& config);

}  // namespace skiff

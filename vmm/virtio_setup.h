// Builds the virtio devices the user asked for (--disk, --net, --console
// virtio) and puts each behind its transport: a virtio-mmio slot from the
// architecture's memory map, or a function on the PCI root bus.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "devices/virtio/virtio_device.h"
#include "vmm/device_config.h"

namespace skiff {

class Machine;
struct VmConfig;

// The operator's devices, opened (image files locked, taps created) but not
// yet placed: everything that can fail because of a typo fails here, before
// any KVM set-up.
struct OpenedVirtioDevices {
  struct Entry {
    std::shared_ptr<virtio::VirtioDevice> device;
    VirtioTransport transport;
  };
  std::vector<Entry> devices;
  bool virtio_console = false;
  VirtioTransport console_transport = VirtioTransport::kPci;
};
absl::StatusOr<OpenedVirtioDevices> OpenVirtioDevices(const VmConfig& config);

// Places every device behind its transport (and makes the virtio console).
// Called before the platform is described, so ACPI / the device tree and
// the kernel command line can name every device placed here.
absl::Status AttachVirtioDevices(Machine& machine, OpenedVirtioDevices devices);

}  // namespace skiff

// What sysfs says about a host PCI device before Skiff opens it for VFIO:
// that it exists, sits in an IOMMU group, is bound to vfio-pci, and that
// every other device of its group leaves the group viable. Each failure is
// one line naming the device and the fix, so the operator learns it before
// any KVM set-up.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace skiff::vfio {

// "/sys/bus/pci/devices/0000:00:01.0", "0000:00:01.0" or "00:01.0" ->
// "0000:00:01.0" (lower case). Syntax only; nothing is looked up.
absl::StatusOr<std::string> ParsePciAddress(std::string_view text);

struct GroupMember {
  std::string name;    // "0000:00:1f.2"
  std::string driver;  // bound driver's name; empty when unbound
};

struct HostPciDevice {
  std::string name;  // "0000:00:01.0"
  uint32_t group = 0;
  std::vector<GroupMember> group_members;  // including the device itself
};

// Reads <sysfs_root>/bus/pci/devices/<name> and its IOMMU group.
absl::StatusOr<HostPciDevice> InspectHostPciDevice(const std::string& sysfs_root,
                                                   const std::string& name);

// A group is viable when no device in it is driven by a host driver that
// does DMA on its own: each is bound to vfio-pci, unbound, or held by a
// driver that does not (pci-stub, pcieport for bridges). Pure.
absl::Status CheckGroupViable(const HostPciDevice& device);

}  // namespace skiff::vfio

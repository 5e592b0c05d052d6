// What sysfs says about a host PCI device before Skiff opens it for VFIO:
// that it exists, sits in an IOMMU group, is bound to vfio-pci, and that
// every other device of its group leaves the group viable. Each failure is
// one line naming the device and the fix, so the operator learns it before
// any KVM set-up.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace skiff::vfio {

// "/sys/bus/pci/devices/0000:00:01.0", "0000:00:01.0" or "00:01.0" ->
// "0000:00:01.0" (lower case). Syntax only; nothing is looked up.
absl::StatusOr<std::string> ParsePciAddress(std::string_view text);

// The last component of a sysfs symlink's target ("../../bus/pci/drivers/
// e1000e" -> "e1000e"); empty when there is no such link. Shared by the
// PCI and fsl-mc checks (a device's driver and iommu_group links).
std::string SysfsLinkName(const std::string& link);

// The IOMMU group number a device directory's iommu_group link names, or
// nothing when it has none (no IOMMU, or not behind one).
std::optional<uint32_t> IommuGroupOf(const std::string& device_dir);

struct GroupMember {
  std::string name;    // "0000:00:1f.2"
  std::string driver;  // bound driver's name; empty when unbound
};

// One line of /sys/kernel/iommu_groups/N/reserved_regions: an IOVA range
// the IOMMU keeps for itself ("msi": the interrupt window or doorbell;
// "direct": a firmware-mandated identity map; "reserved"), or that VFIO may
// still map ("direct-relaxable").
struct ReservedRegion {
  uint64_t start = 0;
  uint64_t last = 0;  // inclusive
  std::string type;
  bool operator==(const ReservedRegion&) const = default;
};

struct HostPciDevice {
  std::string name;  // "0000:00:01.0"
  uint32_t group = 0;
  std::vector<GroupMember> group_members;  // including the device itself
  std::vector<ReservedRegion> reserved_regions;  // of the group
  // The host's resets for it ("flr pm", "pm", ...; its reset_method file),
  // empty when the kernel predates the file. Said at start-up
  // (devices/vfio/reset_report.h).
  std::string reset_method = {};
};

// <sysfs_root>/kernel/iommu_groups/<group>/reserved_regions; empty when the
// file is missing or unreadable. Lines that do not parse are skipped: the
// file only sharpens error messages (the kernel's VFIO_IOMMU_GET_INFO is
// what the checks rely on).
std::vector<ReservedRegion> ReadReservedRegions(const std::string& sysfs_root, uint32_t group);

// Reads <sysfs_root>/bus/pci/devices/<name> and its IOMMU group.
absl::StatusOr<HostPciDevice> InspectHostPciDevice(const std::string& sysfs_root,
                                                   const std::string& name);

// A group is viable when no device in it is driven by a host driver that
// does DMA on its own: each is bound to vfio-pci, unbound, or held by a
// driver that does not (pci-stub, pcieport for bridges). Pure.
absl::Status CheckGroupViable(const HostPciDevice& device);

}  // namespace skiff::vfio

// What sysfs says about an fsl-mc container (DPRC) before Skiff opens it
// through vfio-fsl-mc: that it exists, is bound to vfio-fsl-mc, sits in an
// IOMMU group, and which objects it holds. Each failure is one line naming
// the container and the fix.
//
// Facts (Linux): a DPRC and its non-DPRC children form one IOMMU group
// (drivers/iommu/iommu.c fsl_mc_device_group()); children appear as
// "<type>.<id>" directories under the container's device directory
// (drivers/bus/fsl-mc/fsl-mc-bus.c names them so); a nested DPRC is its own
// container with its own group and ICID; vfio-fsl-mc sets the children's
// driver_override when they are added (drivers/vfio/fsl-mc/vfio_fsl_mc.c
// bus notifier).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace skiff::vfio::fsl_mc {

inline constexpr char kVfioFslMcDriver[] = "vfio-fsl-mc";

struct HostMcObject {
  std::string name;    // "dpio.7"
  std::string type;    // "dpio"
  uint32_t id = 0;     // 7
  std::string driver;  // empty: unbound
};

struct HostDprc {
  std::string name;  // "dprc.2"
  uint32_t id = 0;
  uint32_t group = 0;
  std::vector<HostMcObject> children;  // sorted by name
};

// "dprc.N" or "/sys/bus/fsl-mc/devices/dprc.N" -> "dprc.N". Syntax only.
absl::StatusOr<std::string> ParseDprcName(std::string_view text);
// "dpni.3" -> {type "dpni", id 3}; false for anything else.
bool SplitObjectName(std::string_view name, std::string* type, uint32_t* id);

// Reads <sysfs_root>/bus/fsl-mc/devices/<name>: its driver, IOMMU group
// and child objects (each bound to vfio-fsl-mc or unbound, none a DPRC).
absl::StatusOr<HostDprc> InspectHostDprc(const std::string& sysfs_root, const std::string& name);

}  // namespace skiff::vfio::fsl_mc

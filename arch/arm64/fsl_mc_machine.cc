// AttachFslMcContainers (fsl_mc_wiring.h): the machine's real MSI
// allocator, VM memory slots and MMIO bus for its fsl-mc containers.
#include <unistd.h>

#include "arch/arm64/fsl_mc_wiring.h"
#include "arch/arm64/gic.h"
#include "vmm/machine.h"
#include "vmm/status_macros.h"

namespace skiff::arm64 {

absl::StatusOr<std::vector<vfio::fsl_mc::FslMcNodeParams>> AttachFslMcContainers(Machine& machine) {
  std::vector<vfio::fsl_mc::FslMcNodeParams> nodes;
  if (machine.fsl_mc_containers().empty()) return nodes;
  const GicSetup gic = DescribeGic(machine.vm());
  FslMcWiring wiring;
  wiring.msi = &machine.msi_allocator();
  wiring.slots = &machine.vm();
  wiring.mmio = &machine.mmio_bus();
  const long page = ::sysconf(_SC_PAGESIZE);
  wiring.page_size = page > 0 ? static_cast<uint64_t>(page) : 4096;
  wiring.has_its = gic.kind == GicKind::kV3 && gic.msi_controller;
  for (const auto& mc : machine.fsl_mc_containers()) {
    ASSIGN_OR_RETURN(vfio::fsl_mc::FslMcNodeParams node, AttachFslMc(*mc, wiring));
    nodes.push_back(node);
  }
  return nodes;
}

}  // namespace skiff::arm64

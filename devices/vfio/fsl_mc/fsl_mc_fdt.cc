#include "devices/vfio/fsl_mc/fsl_mc_fdt.h"

extern "C" {
#include <libfdt.h>
}

#include <string>
#include <vector>

#include "absl/strings/str_format.h"

namespace skiff::vfio::fsl_mc {
namespace {

absl::Status FdtError(const char* what, int err) {
  return absl::InternalError(
      absl::StrFormat("fsl-mc device tree: %s: %s", what, fdt_strerror(err)));
}

void PushU64(std::vector<fdt32_t>& cells, uint64_t v) {
  cells.push_back(cpu_to_fdt32(static_cast<uint32_t>(v >> 32)));
  cells.push_back(cpu_to_fdt32(static_cast<uint32_t>(v)));
}

void PushRange(std::vector<fdt32_t>& cells, uint32_t type, uint64_t base, uint64_t size) {
  cells.push_back(cpu_to_fdt32(type));
  cells.push_back(cpu_to_fdt32(0));
  cells.push_back(cpu_to_fdt32(0));
  PushU64(cells, base);
  cells.push_back(cpu_to_fdt32(static_cast<uint32_t>(size)));
}

}  // namespace

absl::Status WriteFslMcNode(void* fdt, const FslMcNodeParams& p) {
  if (p.root_portal_size == 0 || p.mc_size == 0 || p.mc_size > UINT32_MAX ||
      p.qbman_size > UINT32_MAX || p.its_phandle == 0 || p.its_phandle == UINT32_MAX) {
    return absl::InvalidArgumentError(
        "fsl-mc device tree: needs a root portal, sub-windows below 4 GiB and an ITS phandle");
  }
  const std::string name = absl::StrFormat("fsl-mc@%x", p.root_portal_gpa);
  int err = fdt_begin_node(fdt, name.c_str());
  if (err) return FdtError("begin node", err);
  if ((err = fdt_property_string(fdt, "compatible", "fsl,qoriq-mc"))) {
    return FdtError("compatible", err);
  }
  std::vector<fdt32_t> reg;
  PushU64(reg, p.root_portal_gpa);
  PushU64(reg, p.root_portal_size);
  if ((err = fdt_property(fdt, "reg", reg.data(), static_cast<int>(reg.size() * 4)))) {
    return FdtError("reg", err);
  }
  std::vector<fdt32_t> ranges;
  PushRange(ranges, 0, p.mc_base, p.mc_size);
  if (p.qbman_size != 0) PushRange(ranges, 1, p.qbman_base, p.qbman_size);
  if ((err = fdt_property(fdt, "ranges", ranges.data(), static_cast<int>(ranges.size() * 4)))) {
    return FdtError("ranges", err);
  }
  if ((err = fdt_property_u32(fdt, "#address-cells", 3))) return FdtError("#address-cells", err);
  if ((err = fdt_property_u32(fdt, "#size-cells", 1))) return FdtError("#size-cells", err);
  const fdt32_t msi_map[4] = {cpu_to_fdt32(p.icid), cpu_to_fdt32(p.its_phandle),
                              cpu_to_fdt32(p.its_device_id), cpu_to_fdt32(1)};
  if ((err = fdt_property(fdt, "msi-map", msi_map, sizeof(msi_map)))) {
    return FdtError("msi-map", err);
  }
  if ((err = fdt_property(fdt, "dma-coherent", nullptr, 0))) return FdtError("dma-coherent", err);
  if ((err = fdt_end_node(fdt))) return FdtError("end node", err);
  return absl::OkStatus();
}

}  // namespace skiff::vfio::fsl_mc

// Where each region of an assigned fsl-mc container appears in the guest,
// and how the guest reaches it. Pure: objects and a window in, placements
// out, so the decisions are unit-tested without a kernel.
//
// Decisions (facts from drivers/vfio/fsl-mc/vfio_fsl_mc.c and the research
// notes in docs/fsl-mc.md):
//   * MC command portals (region 0 of the DPRC and of every DPMCP) are
//     trapped: the guest's commands must be seen, because the ones that
//     program interrupts (SET_IRQ, SET_OBJ_IRQ) and the answers that carry
//     host addresses or the ICID (GET_OBJ_REG, GET_ATTR) are virtual in the
//     guest. vfio-fsl-mc never offers mmap for a DPRC anyway. Each gets a
//     64 KiB slot in the MC-portal sub-window (type 0 of the node's ranges).
//   * QBMan software portals (every region of a DPIO) are mapped straight
//     into the guest from the VFIO mmap: they are the data path. They must
//     be mmap-able (page-aligned start and size): vfio-fsl-mc's read/write
//     treat every access as an MC command, so a DPIO region can never be
//     trapped and forwarded. They go in the QBMan sub-window (type 1).
//   * Other objects (dpni, dpbp, dpcon, dpmac, ...) have no region; the
//     kernel refuses to add one that does (fsl_mc_device_get_mmio_regions).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace skiff::vfio::fsl_mc {

// The guest-physical window the machine gives the container (ARM64 memory
// map; the lead's layout code picks it).
struct FslMcWindow {
  uint64_t base = 0;
  uint64_t size = 0;
};

enum class McObjectKind { kDprc, kDpmcp, kDpio, kOther };
McObjectKind KindOfType(const std::string& type);

struct McRegionShape {
  uint64_t size = 0;
  uint32_t flags = 0;  // VFIO_REGION_INFO_FLAG_*
};

struct McObjectShape {
  std::string name;  // "dpio.7", for errors
  McObjectKind kind = McObjectKind::kOther;
  std::vector<McRegionShape> regions;
};

enum class RegionUse { kTrappedMcPortal, kMappedQbman };

struct PlacedRegion {
  size_t object = 0;  // index into the objects given to PlanFslMcLayout
  uint32_t index = 0;
  RegionUse use = RegionUse::kTrappedMcPortal;
  uint64_t gpa = 0;
  uint64_t size = 0;  // as the host reports it
};

struct FslMcLayout {
  // Sub-windows behind the node's ranges: type 0 (MC portals), type 1
  // (QBMan portals). Each fits 32 bits of size (#size-cells = 1 and the
  // u32 base_offset the guest keeps).
  uint64_t mc_base = 0;
  uint64_t mc_size = 0;
  uint64_t qbman_base = 0;
  uint64_t qbman_size = 0;
  std::vector<PlacedRegion> regions;

  const PlacedRegion* Find(size_t object, uint32_t index) const;
};

inline constexpr uint64_t kMcPortalSlot = 0x10000;  // 64 KiB, MC API >= 6.6 portal size
inline constexpr uint64_t kMcPortalMinSize = 64;    // one command

// objects[0] must be the DPRC. `page_size` is the host's.
absl::StatusOr<FslMcLayout> PlanFslMcLayout(std::span<const McObjectShape> objects,
                                            FslMcWindow window, uint64_t page_size);

}  // namespace skiff::vfio::fsl_mc

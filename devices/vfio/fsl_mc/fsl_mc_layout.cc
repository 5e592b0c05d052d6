#include "devices/vfio/fsl_mc/fsl_mc_layout.h"

#include <linux/vfio.h>

#include <algorithm>

#include "absl/strings/str_format.h"

namespace skiff::vfio::fsl_mc {
namespace {

// Rounds `v` up to `align` (a power of two); false on overflow.
bool AlignUp(uint64_t v, uint64_t align, uint64_t* out) {
  if (v > UINT64_MAX - (align - 1)) return false;
  *out = (v + align - 1) & ~(align - 1);
  return true;
}

bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

McObjectKind KindOfType(const std::string& type) {
  if (type == "dprc") return McObjectKind::kDprc;
  if (type == "dpmcp") return McObjectKind::kDpmcp;
  if (type == "dpio") return McObjectKind::kDpio;
  return McObjectKind::kOther;
}

const PlacedRegion* FslMcLayout::Find(size_t object, uint32_t index) const {
  for (const PlacedRegion& r : regions) {
    if (r.object == object && r.index == index) return &r;
  }
  return nullptr;
}

absl::StatusOr<FslMcLayout> PlanFslMcLayout(std::span<const McObjectShape> objects,
                                            FslMcWindow window, uint64_t page_size) {
  if (!IsPowerOfTwo(page_size)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("page size %u is not a power of two", page_size));
  }
  if (objects.empty() || objects[0].kind != McObjectKind::kDprc) {
    return absl::InvalidArgumentError("fsl-mc layout: the first object must be the DPRC");
  }
  const uint64_t align = std::max(kMcPortalSlot, page_size);
  if (window.base % align != 0 || window.size == 0 || window.base > UINT64_MAX - window.size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("fsl-mc window [0x%x, +0x%x) is empty, overflows or is not %u-aligned",
                        window.base, window.size, align));
  }
  FslMcLayout layout;
  std::vector<PlacedRegion> portals;
  std::vector<PlacedRegion> qbman;
  for (size_t i = 0; i < objects.size(); ++i) {
    const McObjectShape& o = objects[i];
    switch (o.kind) {
      case McObjectKind::kDprc:
      case McObjectKind::kDpmcp: {
        if (i != 0 && o.kind == McObjectKind::kDprc) {
          return absl::InvalidArgumentError(
              absl::StrFormat("fsl-mc: nested container %s is not supported", o.name));
        }
        if (o.regions.size() != 1) {
          return absl::FailedPreconditionError(absl::StrFormat(
              "fsl-mc object %s has %u regions; an MC portal object has exactly one", o.name,
              o.regions.size()));
        }
        const McRegionShape& r = o.regions[0];
        if (r.size < kMcPortalMinSize || r.size > kMcPortalSlot ||
            !(r.flags & VFIO_REGION_INFO_FLAG_READ) || !(r.flags & VFIO_REGION_INFO_FLAG_WRITE)) {
          return absl::FailedPreconditionError(absl::StrFormat(
              "fsl-mc object %s: MC portal of 0x%x bytes (flags 0x%x) is not a readable and "
              "writable 64 B..64 KiB portal",
              o.name, r.size, r.flags));
        }
        portals.push_back({i, 0, RegionUse::kTrappedMcPortal, 0, r.size});
        break;
      }
      case McObjectKind::kDpio:
        for (uint32_t idx = 0; idx < o.regions.size(); ++idx) {
          const McRegionShape& r = o.regions[idx];
          if (!(r.flags & VFIO_REGION_INFO_FLAG_MMAP) || r.size == 0 || r.size % page_size != 0) {
            return absl::FailedPreconditionError(absl::StrFormat(
                "fsl-mc object %s: QBMan portal region %u (0x%x bytes, flags 0x%x) cannot be "
                "mapped into the guest (vfio-fsl-mc offers mmap only for page-aligned regions; "
                "a %u-byte page host needs MC firmware with API >= 6.6 portal sizes), and a QBMan "
                "portal cannot be trapped",
                o.name, idx, r.size, r.flags, page_size));
          }
          qbman.push_back({i, idx, RegionUse::kMappedQbman, 0, r.size});
        }
        break;
      case McObjectKind::kOther:
        if (!o.regions.empty()) {
          return absl::FailedPreconditionError(absl::StrFormat(
              "fsl-mc object %s has %u MMIO regions; only dprc, dpmcp and dpio objects may have "
              "any",
              o.name, o.regions.size()));
        }
        break;
    }
  }
  // MC portals first, one slot each; then QBMan regions, each aligned to
  // the slot size (CENA/CINH pages never share a host page).
  const uint64_t end = window.base + window.size;
  uint64_t cursor = window.base;
  layout.mc_base = cursor;
  for (PlacedRegion& p : portals) {
    if (end - cursor < align) break;
    p.gpa = cursor;
    cursor += align;
    layout.regions.push_back(p);
  }
  if (layout.regions.size() != portals.size()) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("fsl-mc window [0x%x, +0x%x) cannot hold %u MC portals", window.base,
                        window.size, portals.size()));
  }
  layout.mc_size = cursor - layout.mc_base;
  layout.qbman_base = cursor;
  for (PlacedRegion& q : qbman) {
    uint64_t stride = 0;
    if (!AlignUp(q.size, align, &stride) || stride > end - cursor) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("fsl-mc window [0x%x, +0x%x) cannot hold the QBMan portals of %s",
                          window.base, window.size, objects[q.object].name));
    }
    q.gpa = cursor;
    cursor += stride;
    layout.regions.push_back(q);
  }
  layout.qbman_size = cursor - layout.qbman_base;
  if (layout.mc_size > UINT32_MAX || layout.qbman_size > UINT32_MAX) {
    return absl::ResourceExhaustedError(
        "fsl-mc: a portal sub-window exceeds 4 GiB (the guest keeps 32-bit region offsets)");
  }
  return layout;
}

}  // namespace skiff::vfio::fsl_mc

#include "devices/vfio/bar_layout.h"

#include <linux/vfio.h>

#include <algorithm>

namespace skiff::vfio {
namespace {

uint64_t RoundDown(uint64_t v, uint64_t page) { return v & ~(page - 1); }
// Saturates instead of wrapping, so an end near 2^64 stays "past the BAR".
uint64_t RoundUp(uint64_t v, uint64_t page) {
  uint64_t out;
  if (__builtin_add_overflow(v, page - 1, &out)) return ~uint64_t{0} & ~(page - 1);
  return out & ~(page - 1);
}
uint64_t SaturatingEnd(uint64_t offset, uint64_t size) {
  uint64_t end;
  return __builtin_add_overflow(offset, size, &end) ? ~uint64_t{0} : end;
}

}  // namespace

std::vector<BarPiece> DirectPieces(uint64_t bar_size, const std::vector<VfioSparseArea>& mmap_areas,
                                   const std::vector<BarPiece>& trapped, uint64_t page_size) {
  // Start from the mmap-able areas, clipped to the BAR and shrunk to pages.
  std::vector<BarPiece> pieces;
  for (const VfioSparseArea& area : mmap_areas) {
    const uint64_t begin = RoundUp(area.offset, page_size);
    const uint64_t end =
        RoundDown(std::min(SaturatingEnd(area.offset, area.size), bar_size), page_size);
    if (begin < end) pieces.push_back({begin, end - begin});
  }
  // Cut every trapped range (grown to whole pages) out of every piece.
  for (const BarPiece& trap : trapped) {
    if (trap.size == 0) continue;
    const uint64_t cut_begin = RoundDown(trap.offset, page_size);
    const uint64_t cut_end = RoundUp(SaturatingEnd(trap.offset, trap.size), page_size);
    std::vector<BarPiece> next;
    for (const BarPiece& p : pieces) {
      const uint64_t p_end = p.offset + p.size;
      if (cut_end <= p.offset || cut_begin >= p_end) {
        next.push_back(p);
        continue;
      }
      if (cut_begin > p.offset) next.push_back({p.offset, cut_begin - p.offset});
      if (cut_end < p_end) next.push_back({cut_end, p_end - cut_end});
    }
    pieces = std::move(next);
  }
  std::sort(pieces.begin(), pieces.end(),
            [](const BarPiece& a, const BarPiece& b) { return a.offset < b.offset; });
  // Overlapping sparse areas (a confused driver) must not map a page twice.
  std::vector<BarPiece> merged;
  for (const BarPiece& p : pieces) {
    if (!merged.empty() && p.offset < merged.back().offset + merged.back().size) {
      const uint64_t end = std::max(merged.back().offset + merged.back().size, p.offset + p.size);
      merged.back().size = end - merged.back().offset;
    } else {
      merged.push_back(p);
    }
  }
  return merged;
}

std::vector<VfioSparseArea> MmapAreas(const VfioRegionInfo& region) {
  if (!(region.flags & VFIO_REGION_INFO_FLAG_MMAP) || region.size == 0) return {};
  if (region.sparse_areas) return *region.sparse_areas;
  return {{0, region.size}};
}

}  // namespace skiff::vfio

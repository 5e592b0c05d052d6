// Which parts of a passed-through BAR go straight to the guest as KVM
// memory slots, and which stay trapped (every access a VM exit that Skiff
// emulates or forwards with pread/pwrite).
//
// A part is mapped directly when VFIO lets Skiff mmap it (the whole region
// with VFIO_REGION_INFO_FLAG_MMAP, or only the sparse-mmap areas when the
// region has that capability) and it holds none of the trapped ranges —
// the MSI-X table and PBA, which Skiff emulates. KVM maps whole pages, so
// each trapped range takes its whole pages with it and every direct piece
// is page-aligned. Pure functions; the device applies the result.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "devices/vfio/vfio_kernel.h"

namespace skiff::vfio {

struct BarPiece {
  uint64_t offset = 0;  // from the start of the BAR
  uint64_t size = 0;
  bool operator==(const BarPiece&) const = default;
};

// The page-aligned pieces of [0, bar_size) inside `mmap_areas` and outside
// every `trapped` range (widened to whole pages), in ascending order.
// Areas or ranges that overflow or lie outside the BAR are clipped.
// `page_size` must be a power of two.
std::vector<BarPiece> DirectPieces(uint64_t bar_size, const std::vector<VfioSparseArea>& mmap_areas,
                                   const std::vector<BarPiece>& trapped, uint64_t page_size);

// The areas VFIO lets Skiff mmap in `region`: none without FLAG_MMAP, the
// sparse areas when given, otherwise the whole region.
std::vector<VfioSparseArea> MmapAreas(const VfioRegionInfo& region);

}  // namespace skiff::vfio

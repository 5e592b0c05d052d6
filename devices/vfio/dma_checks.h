// Guest RAM against the limits VFIO type1 puts on DMA-mapping it, checked
// before any of it is mapped (and before KVM is set up): a guest that
// cannot work stops with one line naming the limit and the fix, instead of
// the kernel's bare errno from VFIO_IOMMU_MAP_DMA half-way through.
//
// * IOVA ranges: guest RAM is mapped at IOVA = guest-physical address, so
//   every RAM range must lie inside the IOMMU's usable IOVA ranges (its
//   aperture minus the reserved regions of every group in the container:
//   x86's MSI window 0xfee00000-0xfeefffff, an ARM SMMU's MSI doorbell,
//   firmware RMRRs). The kernel refuses maps outside them (EINVAL).
// * DMA mappings: type1 allows a bounded number per container
//   (vfio_iommu_type1.dma_entry_limit, 65535 by default; ENOSPC past it);
//   guest RAM takes one per kDmaChunk piece.
// * Locked memory: type1 pins every mapped page and charges it to the
//   process's RLIMIT_MEMLOCK unless it has CAP_IPC_LOCK (ENOMEM past it).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "devices/vfio/vfio_kernel.h"
#include "devices/vfio/vfio_sysfs.h"
#include "vmm/guest_ram.h"

namespace skiff::vfio {

// One VFIO_IOMMU_MAP_DMA of guest RAM.
struct DmaPiece {
  uint64_t iova = 0;
  uint64_t size = 0;
  bool operator==(const DmaPiece&) const = default;
};

// [gpa, gpa + size) in pieces of at most `chunk` bytes that end on `chunk`
// boundaries of the IOVA (so 2 MiB-aligned RAM keeps 2 MiB IOMMU pages).
std::vector<DmaPiece> DmaPieces(uint64_t gpa, uint64_t size, uint64_t chunk);

// A group of the container as messages name it: /dev/vfio/N, and what
// /sys/kernel/iommu_groups/N/reserved_regions listed (may be empty).
struct GroupReservations {
  uint32_t group = 0;
  std::vector<ReservedRegion> regions;
};

// Every RAM range inside `usable` (sorted, as DecodeIommuInfo returns it).
// The first RAM range that is not gets an error naming it, the hole it
// falls in and the group(s) whose reserved regions make that hole (from
// sysfs when it says; otherwise every group of the container).
absl::Status CheckIovaRanges(std::span<const RamRegion> ram, std::span<const VfioIovaRange> usable,
                             std::span<const GroupReservations> groups);

// The pieces guest RAM is mapped in (DmaPieces with `chunk`) fit in the
// `avail` mappings the container still allows.
absl::Status CheckDmaAvail(std::span<const RamRegion> ram, uint64_t chunk, uint32_t avail,
                           std::span<const GroupReservations> groups);

// `ram_bytes` more locked memory fits the process's budget.
absl::Status CheckLockedMemory(uint64_t ram_bytes, const LockedMemoryBudget& budget);

// "RLIMIT_MEMLOCK is 8 MiB and Skiff lacks CAP_IPC_LOCK: raise it (ulimit
// -l ...) ...": what a VFIO_IOMMU_MAP_DMA ENOMEM most likely means, for the
// kernel layer's error.
std::string LockedMemoryExplanation(const LockedMemoryBudget& budget);

// "256 MiB", "1.5 GiB", "4096 bytes".
std::string FormatBytes(uint64_t bytes);

}  // namespace skiff::vfio

// Allocates guest RAM as anonymous host memory and keeps it alive.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "vmm/guest_memory.h"
#include "vmm/mapping.h"

namespace skiff {

// One guest-physical range of RAM, i.e. one KVM memory slot.
struct RamRegion {
  uint64_t gpa;
  uint64_t size;
  bool operator==(const RamRegion&) const = default;
};

struct GuestRamOptions {
  bool hugepages = false;   // back RAM with hugetlbfs pages
  uint64_t hugepage_size = 2ull << 20;  // of this size (2 MiB, 1 GiB...)
  bool prefault = false;    // touch every page now (MAP_POPULATE)
  // Without hugetlbfs: start each region on a 2 MiB boundary, between two
  // inaccessible guard pages, and ask for transparent huge pages
  // (MADV_HUGEPAGE). Loading the kernel then faults a few 2 MiB pages instead
  // of thousands of 4 KiB ones, and KVM can map the guest with 2 MiB stage-2
  // pages. The host may still refuse (THP "never"); that works too.
  bool transparent_hugepages = true;
};

class GuestRam {
 public:
  static absl::StatusOr<GuestRam> Allocate(const std::vector<RamRegion>& layout,
                                           const GuestRamOptions& options);
  const GuestMemory& memory() const { return memory_; }

 private:
  std::vector<Mapping> mappings_;
  GuestMemory memory_;
};

}  // namespace skiff

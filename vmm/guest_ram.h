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
  bool hugepages = false;   // back RAM with 2 MiB hugetlbfs pages
  bool prefault = false;    // touch every page now (MAP_POPULATE)
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

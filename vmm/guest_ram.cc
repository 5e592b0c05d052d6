#include "vmm/guest_ram.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/status_macros.h"

namespace skiff {
namespace {
constexpr uint64_t kHugePageSize = 2ull << 20;
}

absl::StatusOr<GuestRam> GuestRam::Allocate(
    const std::vector<RamRegion>& layout, const GuestRamOptions& options) {
  GuestRam ram;
  std::vector<GuestMemory::Region> regions;
  for (const RamRegion& r : layout) {
    if (options.hugepages && r.size % kHugePageSize != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "memory region at 0x%x (%u MiB) is not a multiple of the 2 MiB "
          "hugepage size",
          r.gpa, r.size >> 20));
    }
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    if (options.hugepages) flags = (flags & ~MAP_NORESERVE) | MAP_HUGETLB;
    if (options.prefault) flags |= MAP_POPULATE;
    void* addr = ::mmap(nullptr, r.size, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (addr == MAP_FAILED) {
      int err = errno;
      if (options.hugepages) {
        return absl::ResourceExhaustedError(absl::StrFormat(
            "cannot allocate %u MiB of guest memory from hugepages (%s); "
            "reserve them first, e.g. echo %u > "
            "/proc/sys/vm/nr_hugepages",
            r.size >> 20, std::strerror(err), r.size / kHugePageSize));
      }
      return absl::ResourceExhaustedError(
          absl::StrFormat("cannot allocate %u MiB of guest memory: %s",
                          r.size >> 20, std::strerror(err)));
    }
    // Guest RAM never belongs in a core dump of the VMM, and merging guest
    // pages (KSM) is an explicit operator choice, not ours.
    ::madvise(addr, r.size, MADV_DONTDUMP);
    ram.mappings_.emplace_back(addr, r.size);
    regions.push_back({r.gpa, r.size, static_cast<uint8_t*>(addr)});
  }
  ASSIGN_OR_RETURN(ram.memory_, GuestMemory::Create(std::move(regions)));
  return ram;
}

}  // namespace skiff

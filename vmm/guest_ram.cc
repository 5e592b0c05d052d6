#include "vmm/guest_ram.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/log.h"
#include "vmm/status_macros.h"

namespace skiff {
namespace {
constexpr uint64_t kHugePageSize = 2ull << 20;

// Guest RAM in host memory: the mapping (guards included) and where RAM starts.
struct GuardedRam {
  Mapping mapping;
  uint8_t* ram = nullptr;
};

// Maps `size` bytes of anonymous memory that start on a 2 MiB boundary, with
// one inaccessible page just below and just above.
// - Alignment: only a 2 MiB-aligned range can be backed by transparent huge
//   pages end to end.
// - Guards: a host-side overrun out of guest RAM faults instead of silently
//   writing into a neighbour. The page below also keeps the next mapping
//   (a thread stack, which the top-down allocator puts right under RAM) from
//   ending on a 2 MiB boundary: on a host with THP "always", that stack's
//   few used KiB would otherwise be backed by a whole 2 MiB page.
absl::StatusOr<GuardedRam> MapAlignedWithGuards(uint64_t size, int flags) {
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t padded = size + kHugePageSize + 2 * page;
  void* raw = ::mmap(nullptr, padded, PROT_NONE, flags, -1, 0);
  if (raw == MAP_FAILED) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot allocate %u MiB of guest memory: %s", size >> 20, std::strerror(errno)));
  }
  const uint64_t start = reinterpret_cast<uint64_t>(raw);
  const uint64_t ram = (start + page + kHugePageSize - 1) & ~(kHugePageSize - 1);
  const uint64_t low_guard = ram - page;
  const uint64_t end = ram + size + page;  // <= start + padded
  if (low_guard > start) ::munmap(raw, low_guard - start);
  if (start + padded > end) ::munmap(reinterpret_cast<void*>(end), start + padded - end);
  GuardedRam result;
  result.mapping = Mapping(reinterpret_cast<void*>(low_guard), end - low_guard);
  result.ram = reinterpret_cast<uint8_t*>(ram);
  if (::mprotect(result.ram, size, PROT_READ | PROT_WRITE) < 0) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot allocate %u MiB of guest memory: %s", size >> 20, std::strerror(errno)));
  }
  return result;
}

}  // namespace

absl::StatusOr<GuestRam> GuestRam::Allocate(
    const std::vector<RamRegion>& layout, const GuestRamOptions& options) {
  GuestRam ram;
  std::vector<GuestMemory::Region> regions;
  for (const RamRegion& r : layout) {
    const uint64_t page = options.hugepage_size;
    if (options.hugepages && (page == 0 || (page & (page - 1)) != 0 || r.size % page != 0)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "memory region at 0x%x (%u MiB) is not a multiple of the %u MiB "
          "hugepage size",
          r.gpa, r.size >> 20, page >> 20));
    }
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    uint8_t* host = nullptr;
    if (!options.hugepages && options.transparent_hugepages) {
      ASSIGN_OR_RETURN(GuardedRam guarded, MapAlignedWithGuards(r.size, flags));
      host = guarded.ram;
      ram.mappings_.push_back(std::move(guarded.mapping));
      // Advice only: a host with THP disabled keeps 4 KiB pages, which work.
      ::madvise(host, r.size, MADV_HUGEPAGE);
      if (options.prefault && ::madvise(host, r.size, MADV_POPULATE_WRITE) < 0) {
        return absl::ResourceExhaustedError(absl::StrFormat(
            "cannot prefault %u MiB of guest memory: %s", r.size >> 20, std::strerror(errno)));
      }
    } else {
      if (options.hugepages) {
        // The page size goes in the flags as its log2 (mmap(2), MAP_HUGE_SHIFT).
        flags = (flags & ~MAP_NORESERVE) | MAP_HUGETLB |
                (__builtin_ctzll(options.hugepage_size) << MAP_HUGE_SHIFT);
      }
      if (options.prefault) flags |= MAP_POPULATE;
      void* addr = ::mmap(nullptr, r.size, PROT_READ | PROT_WRITE, flags, -1, 0);
      if (addr == MAP_FAILED) {
        int err = errno;
        if (options.hugepages) {
          return absl::ResourceExhaustedError(absl::StrFormat(
              "cannot allocate %u MiB of guest memory from %u MiB hugepages (%s); "
              "reserve them first, e.g. echo %u > "
              "/sys/kernel/mm/hugepages/hugepages-%ukB/nr_hugepages",
              r.size >> 20, page >> 20, std::strerror(err), r.size / page, page >> 10));
        }
        return absl::ResourceExhaustedError(
            absl::StrFormat("cannot allocate %u MiB of guest memory: %s",
                            r.size >> 20, std::strerror(err)));
      }
      host = static_cast<uint8_t*>(addr);
      ram.mappings_.emplace_back(addr, r.size);
    }
    // Guest RAM never belongs in a core dump of the VMM, and merging guest
    // pages (KSM) is an explicit operator choice, not ours.
    ::madvise(host, r.size, MADV_DONTDUMP);
    LOG_DEBUG("vmm", "guest RAM 0x%x-0x%x at host %p-%p", r.gpa, r.gpa + r.size - 1,
              static_cast<void*>(host), static_cast<void*>(host + r.size - 1));
    regions.push_back({r.gpa, r.size, host});
  }
  ASSIGN_OR_RETURN(ram.memory_, GuestMemory::Create(std::move(regions)));
  return ram;
}

}  // namespace skiff

#include "vmm/guest_ram.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/log.h"
#include "vmm/status_macros.h"

namespace skiff {
namespace {
constexpr uint64_t kHugePageSize = 2ull << 20;

// Maps `size` bytes of anonymous memory starting on a 2 MiB boundary: map
// 2 MiB more than needed, then unmap the unaligned head and the tail. Only a
// 2 MiB-aligned range can be backed by transparent huge pages end to end.
void* MapHugeAligned(uint64_t size, int flags) {
  const uint64_t padded = size + kHugePageSize;
  void* raw = ::mmap(nullptr, padded, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (raw == MAP_FAILED) return MAP_FAILED;
  const uint64_t start = reinterpret_cast<uint64_t>(raw);
  const uint64_t aligned = (start + kHugePageSize - 1) & ~(kHugePageSize - 1);
  if (aligned > start) ::munmap(raw, aligned - start);
  const uint64_t tail = start + padded - (aligned + size);
  if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + size), tail);
  return reinterpret_cast<void*>(aligned);
}

}  // namespace

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
    const bool thp = !options.hugepages && options.transparent_hugepages;
    // MAP_POPULATE would also touch the padding MapHugeAligned trims off.
    if (options.prefault && !thp) flags |= MAP_POPULATE;
    void* addr = thp ? MapHugeAligned(r.size, flags)
                     : ::mmap(nullptr, r.size, PROT_READ | PROT_WRITE, flags, -1, 0);
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
    ram.mappings_.emplace_back(addr, r.size);
    // Guest RAM never belongs in a core dump of the VMM, and merging guest
    // pages (KSM) is an explicit operator choice, not ours.
    ::madvise(addr, r.size, MADV_DONTDUMP);
    // Advice only: a host with THP disabled keeps 4 KiB pages, which work.
    if (thp) ::madvise(addr, r.size, MADV_HUGEPAGE);
    if (options.prefault && thp && ::madvise(addr, r.size, MADV_POPULATE_WRITE) < 0) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "cannot prefault %u MiB of guest memory: %s", r.size >> 20, std::strerror(errno)));
    }
    LOG_DEBUG("vmm", "guest RAM 0x%x-0x%x at host %p-%p", r.gpa, r.gpa + r.size - 1, addr,
              static_cast<uint8_t*>(addr) + r.size - 1);
    regions.push_back({r.gpa, r.size, static_cast<uint8_t*>(addr)});
  }
  ASSIGN_OR_RETURN(ram.memory_, GuestMemory::Create(std::move(regions)));
  return ram;
}

}  // namespace skiff

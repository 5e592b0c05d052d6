// The kernel's VFIO_IOMMU_GET_INFO reply is read like untrusted input:
// DecodeIommuInfo on arbitrary bytes (the whole input is the reply, its
// argsz the input's size), and the result checked against the reply it
// came from, then against guest RAM and the checks built on it.
//
// Invariants beyond "no crash, no out-of-bounds read" (ASan in the libFuzzer
// build): a decoded reply has no capabilities unless it sets
// VFIO_IOMMU_INFO_CAPS with a non-zero cap_offset; its IOVA ranges are
// sorted with start <= last, and fit the reply (16 bytes each); RAM found
// inside them by CheckIovaRanges really is inside one of them or a run of
// adjacent ones.
#include <linux/vfio.h>

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "devices/vfio/dma_checks.h"
#include "devices/vfio/iommu_info.h"
#include "tests/fuzz/fuzz_support.h"

namespace skiff {
namespace {

// Whether [first, last] is covered by the sorted ranges.
bool Covered(const std::vector<vfio::VfioIovaRange>& ranges, uint64_t first, uint64_t last) {
  uint64_t cursor = first;
  for (const vfio::VfioIovaRange& r : ranges) {
    if (r.last < cursor) continue;
    if (r.start > cursor) return false;
    if (r.last >= last) return true;
    cursor = r.last + 1;
  }
  return false;
}

}  // namespace
}  // namespace skiff

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace skiff;
  fuzz::QuietLogs();
  const std::span<const uint8_t> reply(data, size);
  auto info = vfio::DecodeIommuInfo(reply);
  if (!info.ok()) return 0;
  vfio_iommu_type1_info header;
  std::memcpy(&header, data, sizeof(header));  // decoding checked the size
  const bool caps = (header.flags & VFIO_IOMMU_INFO_CAPS) && header.cap_offset != 0;
  FUZZ_CHECK(caps || (!info->has_iova_ranges && !info->dma_avail), "capabilities from nowhere");
  FUZZ_CHECK(info->has_iova_ranges || info->iova_ranges.empty(), "ranges not reported but kept");
  if (!info->has_iova_ranges) return 0;
  const std::vector<vfio::VfioIovaRange>& ranges = info->iova_ranges;
  FUZZ_CHECK(ranges.size() * 16 <= size, "%zu ranges from a %zu-byte reply", ranges.size(), size);
  for (size_t i = 0; i < ranges.size(); ++i) {
    FUZZ_CHECK(ranges[i].start <= ranges[i].last, "range %zu ends before it starts", i);
    FUZZ_CHECK(i == 0 || ranges[i - 1].start <= ranges[i].start, "ranges not sorted at %zu", i);
  }
  // Guest RAM from the two values that follow the fixed part (or fixed ones).
  uint64_t gpa = 0x40000000, len = 0x10000000;
  if (size >= 40) {
    std::memcpy(&gpa, data + 24, 8);
    std::memcpy(&len, data + 32, 8);
    len = len % (uint64_t{1} << 40) + 1;
    if (gpa > UINT64_MAX - (len - 1)) gpa = 0;
  }
  const std::vector<RamRegion> ram = {{gpa, len}};
  const bool fits = vfio::CheckIovaRanges(ram, ranges, {}).ok();
  FUZZ_CHECK(fits == Covered(ranges, gpa, gpa + (len - 1)),
             "CheckIovaRanges says %d for RAM 0x%x+0x%x", fits ? 1 : 0, gpa, len);
  return 0;
}

#include "arch/x86_64/e820.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "arch/x86_64/layout.h"
#include "vmm/status_macros.h"

namespace skiff::x86 {
namespace {

constexpr uint64_t kPageSize = 0x1000;
// KVM's identity-map page plus its three TSS pages, contiguous.
constexpr uint64_t kKvmPrivateEnd = kKvmTssAddress + 3 * kPageSize;
static_assert(kKvmIdentityMapAddress + kPageSize == kKvmTssAddress);

}  // namespace

absl::Status ValidateRamSize(uint64_t ram_size) {
  if (ram_size < kMinRamSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "guest memory %d MiB is too small: x86 guests need at least %d MiB",
        ram_size >> 20, kMinRamSize >> 20));
  }
  if (ram_size > kMaxRamSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "guest memory %d GiB is too large: Skiff supports at most %d GiB",
        ram_size >> 30, kMaxRamSize >> 30));
  }
  if (ram_size % kPageSize != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "guest memory size %d bytes is not a multiple of 4 KiB", ram_size));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RamRegion>> GuestRamRegions(uint64_t ram_size) {
  RETURN_IF_ERROR(ValidateRamSize(ram_size));
  const uint64_t low = std::min(ram_size, kMmioHoleStart);
  std::vector<RamRegion> regions = {{0, low}};
  if (ram_size > low) regions.push_back({kFourGiB, ram_size - low});
  return regions;
}

absl::StatusOr<std::vector<E820Entry>> BuildE820Map(uint64_t ram_size) {
  ASSIGN_OR_RETURN(std::vector<RamRegion> regions, GuestRamRegions(ram_size));
  const uint64_t low_end = regions[0].size;  // >= kMinRamSize > 1 MiB
  std::vector<E820Entry> map = {
      {0, kEbdaStart, kE820Ram},
      {kEbdaStart, kHighMemoryStart - kEbdaStart, kE820Reserved},
      {kHighMemoryStart, low_end - kHighMemoryStart, kE820Ram},
      {kPciEcamBase, kPciEcamSize, kE820Reserved},
      {kKvmIdentityMapAddress, kKvmPrivateEnd - kKvmIdentityMapAddress,
       kE820Reserved},
  };
  if (regions.size() > 1) {
    map.push_back({regions[1].gpa, regions[1].size, kE820Ram});
  }
  return map;
}

}  // namespace skiff::x86

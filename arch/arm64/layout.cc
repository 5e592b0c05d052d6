#include "arch/arm64/layout.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_format.h"

namespace skiff::arm64 {

std::vector<MemoryRegion> MemoryMap(uint64_t ram_size) {
  return {
      {"GIC distributor", kGicDistBase, kGicDistSize},
      {"GICv2 CPU interface", kGicCpuBase, kGicCpuSize},
      {"GICv2m MSI frame", kGicV2mBase, kGicV2mSize},
      {"GICv3 ITS", kGicItsBase, kGicItsSize},
      {"GICv3 redistributors", kGicRedistBase, kGicRedistSize},
      {"UART", kUartBase, kUartSize},
      {"RTC", kRtcBase, kRtcSize},
      {"exit device", kExitDeviceBase, kExitDeviceSize},
      {"pvpanic", kPvpanicBase, kPvpanicSize},
      {"GPIO (PL061)", kGpioBase, kGpioSize},
      {"virtio-mmio slots", kVirtioMmioBase, kVirtioMmioSlotSize * kVirtioMmioSlots},
      {"fsl-mc portal window", kFslMcBase, kFslMcSize},
      {"PCI MMIO32 window", kPciMmio32Base, kPciMmio32Size},
      {"PCIe ECAM", kPciEcamBase, kPciEcamSize},
      {"RAM", kRamBase, ram_size},
      {"PCI MMIO64 window", kPciMmio64Base, kPciMmio64Size},
  };
}

absl::Status CheckNoOverlap(const std::vector<MemoryRegion>& regions) {
  std::vector<const MemoryRegion*> sorted;
  for (const MemoryRegion& r : regions) {
    if (r.size == 0 || r.base + r.size < r.base) {
      return absl::InternalError(absl::StrFormat(
          "arm64 memory map: %s at 0x%x (size 0x%x) is empty or wraps", r.name, r.base, r.size));
    }
    sorted.push_back(&r);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const MemoryRegion* a, const MemoryRegion* b) { return a->base < b->base; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    const MemoryRegion& prev = *sorted[i - 1];
    const MemoryRegion& next = *sorted[i];
    if (prev.base + prev.size > next.base) {
      return absl::InternalError(absl::StrFormat(
          "arm64 memory map: %s [0x%x-0x%x] overlaps %s [0x%x-0x%x]", prev.name, prev.base,
          prev.base + prev.size - 1, next.name, next.base, next.base + next.size - 1));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateRamSize(uint64_t ram_size) {
  constexpr uint64_t kMinRam = 16ull << 20;
  if (ram_size < kMinRam) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%d bytes is too little; an arm64 guest needs at least 16M", ram_size));
  }
  if (ram_size > kMaxRamSize) {
    // In the largest unit that is exact, so 511.5 GiB does not read as
    // "511 GiB is too large ... at most 511 GiB".
    const std::string size = ram_size % (1ull << 30) == 0
                                 ? absl::StrFormat("%d GiB", ram_size >> 30)
                             : ram_size % (1ull << 20) == 0
                                 ? absl::StrFormat("%d MiB", ram_size >> 20)
                                 : absl::StrFormat("%d bytes", ram_size);
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s is too large for the arm64 memory map: RAM starts at 0x%x and must end at the "
        "64-bit PCI window (0x%x), so at most %d GiB",
        size, kRamBase, kPciMmio64Base, kMaxRamSize >> 30));
  }
  return absl::OkStatus();
}

}  // namespace skiff::arm64

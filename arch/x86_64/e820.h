// The x86 guest RAM layout: the e820 map the kernel is told about and the
// KVM memory slots that back it. Both derive from one RAM size and the
// constants in layout.h, so they cannot disagree.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "vmm/guest_ram.h"

namespace skiff::x86 {

// e820 entry types (ACPI "Address Range Types").
inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;

// Bounds on guest RAM. Below 16 MiB no stock kernel fits (it decompresses at
// 16 MiB); above 1 TiB is far more than Skiff is built or tested for.
inline constexpr uint64_t kMinRamSize = 16ull << 20;
inline constexpr uint64_t kMaxRamSize = 1ull << 40;

// Layout of one e820 entry as the kernel reads it (boot_params.e820_table).
struct E820Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  bool operator==(const E820Entry&) const = default;
};

// One guest-physical range of RAM, i.e. one KVM memory slot.
using ::skiff::RamRegion;

// OK when `ram_size` bytes of guest RAM can be laid out: a multiple of 4 KiB
// between kMinRamSize and kMaxRamSize.
absl::Status ValidateRamSize(uint64_t ram_size);

// The e820 map for `ram_size` bytes of RAM, sorted by address:
//   RAM [0, kEbdaStart), reserved [kEbdaStart, 1 MiB) (BIOS area holding the
//   ACPI tables), RAM [1 MiB, min(ram_size, kMmioHoleStart)), RAM from 4 GiB
//   for whatever did not fit below the hole, plus reserved ranges in the hole
//   the guest must not hand out as MMIO space: the PCI ECAM window (Linux
//   only trusts an MCFG region that e820 or ACPI marks reserved) and the
//   pages KVM uses for the TSS and the EPT identity map.
absl::StatusOr<std::vector<E820Entry>> BuildE820Map(uint64_t ram_size);

// The KVM memory slots backing `ram_size` bytes of RAM: [0, min(ram_size,
// kMmioHoleStart)) and, if RAM remains, [4 GiB, 4 GiB + rest).
absl::StatusOr<std::vector<RamRegion>> GuestRamRegions(uint64_t ram_size);

}  // namespace skiff::x86

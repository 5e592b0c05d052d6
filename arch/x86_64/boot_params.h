// The x86 "zero page" (struct boot_params, Documentation/arch/x86/
// zero-page.rst and boot.rst) and the placement decisions that feed it:
// where the initramfs goes and whether the command line fits.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "arch/x86_64/e820.h"
#include "boot/bzimage.h"

namespace skiff::x86 {

inline constexpr uint64_t kBootParamsSize = 4096;
inline constexpr uint64_t kE820MaxEntries = 128;  // boot_params.e820_table

// Offsets inside boot_params that Skiff writes (zero-page.rst / boot.rst).
namespace bp {
inline constexpr uint64_t kAcpiRsdpAddr = 0x070;     // u64, protocol 2.14+
inline constexpr uint64_t kExtRamdiskImage = 0x0c0;  // u32, high half
inline constexpr uint64_t kExtRamdiskSize = 0x0c4;   // u32, high half
inline constexpr uint64_t kExtCmdLinePtr = 0x0c8;    // u32, high half
inline constexpr uint64_t kE820Entries = 0x1e8;      // u8
inline constexpr uint64_t kTypeOfLoader = 0x210;     // u8
inline constexpr uint64_t kRamdiskImage = 0x218;     // u32
inline constexpr uint64_t kRamdiskSize = 0x21c;      // u32
inline constexpr uint64_t kCmdLinePtr = 0x228;       // u32
inline constexpr uint64_t kE820Table = 0x2d0;        // 128 x 20 bytes
inline constexpr uint64_t kE820EntrySize = 20;
}  // namespace bp

// "Undefined" boot loader ID: Skiff has no ID assigned in boot.rst.
inline constexpr uint8_t kTypeOfLoaderUndefined = 0xff;

struct BootParamsInput {
  uint64_t cmdline_addr = 0;  // guest address of the NUL-terminated line
  uint64_t initrd_addr = 0;   // ignored when initrd_size is 0
  uint64_t initrd_size = 0;   // 0: no initramfs
  std::span<const E820Entry> e820;
  uint64_t acpi_rsdp_addr = 0;  // 0: let the kernel scan the BIOS area
};

// Builds the zero page to copy to kBootParamsAddress: the image's setup
// header at 0x1F1, then Skiff's fields on top. acpi_rsdp_addr is written
// only for protocol 2.14+; older kernels find the RSDP by scanning
// 0xE0000-0xFFFFF, which is why the tables live there.
absl::StatusOr<std::array<uint8_t, kBootParamsSize>> BuildBootParams(
    const boot::BzImage& image, const BootParamsInput& input);

// OK when `cmdline` (without its NUL) fits both the kernel's cmdline_size
// and Skiff's command-line area (kCmdlineMaxSize incl. NUL), and has no NUL.
absl::Status ValidateCmdline(std::string_view cmdline,
                             const boot::BzImage& image);

// First byte past the memory the kernel uses before it reads the e820 map,
// page-aligned: the payload copied to kKernelLoadAddress, and init_size
// bytes from its runtime start, which for a relocatable kernel is
// max(kKernelLoadAddress aligned up to kernel_alignment, pref_address)
// (arch/x86/boot/compressed/head_64.S) and pref_address otherwise. For a
// stock kernel that is 16 MiB + init_size, not 1 MiB + init_size.
absl::StatusOr<uint64_t> KernelEnd(const boot::BzImage& image);

// OK when KernelEnd(image) lies inside the low RAM of a `ram_size` guest.
absl::Status CheckKernelFits(const boot::BzImage& image, uint64_t ram_size);

// Guest address for an initramfs of `initrd_size` bytes: the highest page-
// aligned address whose range ends at or below min(initrd_addr_max + 1, low
// RAM end) and starts at or above KernelEnd(image).
absl::StatusOr<uint64_t> PlaceInitrd(const boot::BzImage& image,
                                     uint64_t initrd_size, uint64_t ram_size);

}  // namespace skiff::x86

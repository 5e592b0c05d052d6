// Parsing of the x86 Linux bzImage format (Documentation/arch/x86/boot.rst).
//
// A bzImage is a real-mode setup part (boot sector + setup code, carrying the
// "setup header" at 0x1F1) followed by the protected-mode kernel. Skiff enters
// the kernel through its 64-bit entry point, so it needs boot protocol 2.12+
// and XLF_KERNEL_64; the real-mode setup code itself is never run.
//
// The file is untrusted input: every offset and size read from it is checked.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace skiff::boot {

// Setup-header offsets, as absolute offsets in the file (and, identically, in
// struct boot_params, whose `hdr` member starts at the same 0x1F1).
inline constexpr uint64_t kSetupHeaderOffset = 0x1f1;
// struct boot_params reserves [0x1F1, 0x290) for the setup header; a header
// that claims to run past that cannot be copied into the zero page.
inline constexpr uint64_t kSetupHeaderMaxEnd = 0x290;

// loadflags bits.
inline constexpr uint8_t kLoadedHigh = 0x01;  // protected-mode code at 1 MiB
// xloadflags bits.
inline constexpr uint16_t kXlfKernel64 = 0x01;  // has 64-bit entry
inline constexpr uint16_t kXlfCanBeLoadedAbove4G = 0x02;

// Oldest boot protocol Skiff accepts: 2.12 introduced xloadflags, whose
// XLF_KERNEL_64 bit is the only way a kernel announces its 64-bit entry.
inline constexpr uint16_t kMinProtocolVersion = 0x020c;

struct BzImage {
  uint16_t protocol_version = 0;  // e.g. 0x020f for 2.15
  // Bytes of real-mode setup ((setup_sects or 4) + 1) * 512; the protected-
  // mode kernel starts at this file offset.
  uint64_t setup_size = 0;
  // The protected-mode kernel, to be copied to kKernelLoadAddress. A view into
  // the parsed file: the file must outlive this BzImage.
  std::span<const uint8_t> payload;
  // Raw setup header bytes, file offsets [0x1F1, 0x202 + file[0x201]), to be
  // copied verbatim to the same offsets of boot_params.
  std::vector<uint8_t> setup_header;

  uint8_t loadflags = 0;
  uint16_t xloadflags = 0;
  uint32_t initrd_addr_max = 0;  // highest address an initrd byte may occupy
  uint32_t kernel_alignment = 0;
  bool relocatable_kernel = false;
  uint32_t cmdline_size = 0;  // max command line length without the NUL
  uint64_t pref_address = 0;  // preferred load (runtime start) address
  uint32_t init_size = 0;     // memory needed from the runtime start
};

// Parses and validates a bzImage held entirely in memory.
absl::StatusOr<BzImage> ParseBzImage(std::span<const uint8_t> file);

}  // namespace skiff::boot

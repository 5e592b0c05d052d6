// The arm64 Linux kernel Image format and where a bootloader puts things
// (Documentation/arch/arm64/booting.rst).
//
// An Image starts with a 64-byte header: code0/code1, text_offset,
// image_size, flags, three reserved words, the magic "ARM\x64" at byte 56
// and a PE offset. The kernel is placed text_offset bytes above a 2 MiB
// aligned base and entered at its first byte with x0 = the DTB. Image.gz
// (gzip) is decompressed first: the kernel has no decompressor of its own.
//
// The file is untrusted input: every field read from it is checked.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace skiff::boot {

inline constexpr uint64_t kArm64HeaderSize = 64;
inline constexpr uint64_t kArm64MagicOffset = 56;
inline constexpr char kArm64Magic[] = "ARM\x64";  // 4 bytes + NUL
// "The Image must be placed text_offset bytes from a 2MB aligned base".
inline constexpr uint64_t kArm64ImageAlignment = 2ull << 20;
// "Where image_size is zero, text_offset can be assumed to be 0x80000."
inline constexpr uint64_t kArm64LegacyTextOffset = 0x80000;
// The DTB: 8-byte aligned, at most 2 MiB, mapped by the kernel with blocks
// of up to 2 MiB, so it gets a 2 MiB region of its own.
inline constexpr uint64_t kArm64DtbMaxSize = 2ull << 20;
inline constexpr uint64_t kArm64DtbAlignment = 8;
// The initrd must lie in a 1 GiB aligned window of at most 32 GiB that also
// covers the kernel.
inline constexpr uint64_t kArm64InitrdWindowAlignment = 1ull << 30;
inline constexpr uint64_t kArm64InitrdWindowSize = 32ull << 30;
// Decompressed Image.gz bound: Debian's arm64 kernels are ~30-40 MiB.
inline constexpr uint64_t kArm64MaxImageSize = 512ull << 20;

// flags bits.
inline constexpr uint64_t kArm64FlagBigEndian = 1u << 0;
inline constexpr uint64_t kArm64FlagPageSizeShift = 1;  // bits 1-2
inline constexpr uint64_t kArm64FlagPlacementAnywhere = 1u << 3;

struct Arm64Image {
  uint64_t text_offset = 0;
  // Memory the kernel needs from its first byte (including BSS); never less
  // than the file's size.
  uint64_t image_size = 0;
  uint64_t flags = 0;
  uint32_t page_size = 0;  // 4096, 16384, 65536; 0 = unspecified
  // The bytes to copy to the load address. A view into the parsed buffer,
  // which must outlive this struct.
  std::span<const uint8_t> payload;
};

// Parses and validates an (uncompressed) Image. A bzImage, an ELF vmlinux
// or a gzip file get messages saying what they are.
absl::StatusOr<Arm64Image> ParseArm64Image(std::span<const uint8_t> file);

// The most an Image.gz may inflate to in a guest of `ram_size` bytes: what
// that RAM could hold, and never more than kArm64MaxImageSize.
uint64_t Arm64MaxInflatedSize(uint64_t ram_size);

// The kernel file as Skiff loads it: an Image.gz is inflated into `storage`
// (at most `max_inflated_size` bytes; Skiff passes Arm64MaxInflatedSize, a
// fuzz harness something smaller) and then parsed; a plain Image is parsed
// in place. The payload views `file` or `storage`, which must outlive it.
absl::StatusOr<Arm64Image> ReadArm64Kernel(std::span<const uint8_t> file,
                                           uint64_t max_inflated_size,
                                           std::vector<uint8_t>& storage);

// Where the kernel, the DTB and the initrd go in one RAM region.
struct Arm64BootLayout {
  uint64_t kernel = 0;  // load address = entry point
  uint64_t dtb = 0;     // 2 MiB aligned, a 2 MiB region of its own
  std::optional<uint64_t> initrd;
};

// Kernel at the first 2 MiB boundary of RAM (+ text_offset, as close to the
// base of RAM as possible, which older kernels need), the DTB in the 2 MiB
// region after the kernel's image_size (so within the 512 MiB pre-4.2
// kernels look in), the initrd right after the DTB. Fails with a message
// naming what does not fit.
absl::StatusOr<Arm64BootLayout> PlaceArm64Boot(const Arm64Image& image, uint64_t ram_base,
                                               uint64_t ram_size,
                                               std::optional<uint64_t> initrd_size);

}  // namespace skiff::boot

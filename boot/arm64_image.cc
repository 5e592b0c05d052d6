#include "boot/arm64_image.h"

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "boot/gunzip.h"
#include "boot/kernel_format.h"

namespace skiff::boot {
namespace {

constexpr uint64_t kTextOffsetOffset = 8;
constexpr uint64_t kImageSizeOffset = 16;
constexpr uint64_t kFlagsOffset = 24;
constexpr uint64_t k1MiB = 1ull << 20;

uint64_t ReadLe64(std::span<const uint8_t> file, uint64_t offset) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | file[offset + i];
  return value;
}

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) & ~(alignment - 1);
}

}  // namespace

absl::StatusOr<Arm64Image> ParseArm64Image(std::span<const uint8_t> file) {
  const KernelFormat format = DetectKernelFormat(file);
  switch (format) {
    case KernelFormat::kArm64Image:
      break;
    case KernelFormat::kBzImage:
      return absl::InvalidArgumentError(
          "kernel is an x86 bzImage; this skiff runs arm64 guests (give it an arm64 Image "
          "or Image.gz, e.g. Debian's linux-image-cloud-arm64 /boot/vmlinuz-*)");
    case KernelFormat::kElf:
      return absl::InvalidArgumentError(
          "kernel is an ELF file (a vmlinux); Skiff needs an arm64 Image "
          "(arch/arm64/boot/Image or Image.gz, or /boot/vmlinuz-* on Debian)");
    case KernelFormat::kArm64ImageGz:
      return absl::InvalidArgumentError(
          "kernel is gzip-compressed; decompress it first (Skiff's loader does this itself)");
    default:
      if (file.size() < kArm64HeaderSize) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "kernel file too small to be an arm64 Image: %d bytes, the header alone is %d",
            file.size(), kArm64HeaderSize));
      }
      return absl::InvalidArgumentError(absl::StrFormat(
          "kernel is not an arm64 Image: no \"ARM\\x64\" magic at offset %d (%s)",
          kArm64MagicOffset, DescribeKernelFormat(format)));
  }
  if (file.size() < kArm64HeaderSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "arm64 Image truncated: %d bytes, the header alone is %d", file.size(),
        kArm64HeaderSize));
  }
  Arm64Image image;
  image.text_offset = ReadLe64(file, kTextOffsetOffset);
  image.image_size = ReadLe64(file, kImageSizeOffset);
  image.flags = ReadLe64(file, kFlagsOffset);
  if (image.image_size == 0) {
    // Pre-3.17 kernel: the header's fields are not reliable.
    image.text_offset = kArm64LegacyTextOffset;
    image.flags = 0;
  }
  if (image.flags & kArm64FlagBigEndian) {
    return absl::InvalidArgumentError(
        "arm64 Image is a big-endian kernel (flags bit 0); Skiff runs little-endian guests");
  }
  static constexpr uint32_t kPageSizes[] = {0, 4096, 16384, 65536};
  image.page_size = kPageSizes[(image.flags >> kArm64FlagPageSizeShift) & 3];
  // text_offset is below 2 MiB in every kernel ever built (0x80000 or 0);
  // a larger value is a damaged header, not a placement request.
  if (image.text_offset >= kArm64ImageAlignment || image.text_offset % 4096 != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "arm64 Image text_offset 0x%x is not a page-aligned offset below 2 MiB",
        image.text_offset));
  }
  if (image.image_size > kArm64MaxImageSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "arm64 Image image_size %d MiB is beyond the %d MiB Skiff accepts", image.image_size >> 20,
        kArm64MaxImageSize >> 20));
  }
  if (image.image_size != 0 && image.image_size < file.size()) {
    // image_size covers the file plus BSS; a file larger than it carries
    // trailing data (e.g. a signature) that the kernel does not need.
    file = file.first(image.image_size);
  }
  image.payload = file;
  if (image.image_size == 0) {
    // booting.rst: keep "as much memory as possible free"; reserve the file
    // and as much again for BSS and early allocations.
    image.image_size = AlignUp(file.size() * 2, k1MiB);
  }
  return image;
}

uint64_t Arm64MaxInflatedSize(uint64_t ram_size) {
  return std::min(kArm64MaxImageSize, ram_size);
}

absl::StatusOr<Arm64Image> ReadArm64Kernel(std::span<const uint8_t> file,
                                           uint64_t max_inflated_size,
                                           std::vector<uint8_t>& storage) {
  if (IsGzip(file)) {
    absl::StatusOr<std::vector<uint8_t>> inflated = Gunzip(file, max_inflated_size);
    if (!inflated.ok()) return inflated.status();
    storage = *std::move(inflated);
    file = storage;
  }
  return ParseArm64Image(file);
}

absl::StatusOr<Arm64BootLayout> PlaceArm64Boot(const Arm64Image& image, uint64_t ram_base,
                                               uint64_t ram_size,
                                               std::optional<uint64_t> initrd_size) {
  if (ram_base % kArm64ImageAlignment != 0 || ram_size == 0 ||
      ram_base + ram_size < ram_base) {
    return absl::InternalError("arm64 RAM region is not 2 MiB aligned");
  }
  const uint64_t ram_end = ram_base + ram_size;
  Arm64BootLayout layout;
  layout.kernel = ram_base + image.text_offset;
  // image_size is bounded by kArm64MaxImageSize, so no overflow here.
  const uint64_t kernel_end = layout.kernel + std::max<uint64_t>(image.image_size,
                                                                 image.payload.size());
  layout.dtb = AlignUp(kernel_end, kArm64ImageAlignment);
  const uint64_t dtb_end = layout.dtb + kArm64DtbMaxSize;
  if (dtb_end > ram_end) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the kernel needs %d MiB (image_size) plus 2 MiB for the device tree, more than the "
        "%d MiB of guest RAM; raise --memory",
        (kernel_end - ram_base + k1MiB - 1) >> 20, ram_size >> 20));
  }
  if (initrd_size) {
    const uint64_t start = dtb_end;
    const uint64_t window_end =
        (layout.kernel & ~(kArm64InitrdWindowAlignment - 1)) + kArm64InitrdWindowSize;
    const uint64_t limit = std::min(ram_end, window_end);
    if (*initrd_size > limit - start) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "initramfs of %d MiB does not fit in guest RAM after the kernel and device tree "
          "(%d MiB left below 0x%x); raise --memory",
          *initrd_size >> 20, (limit - start) >> 20, limit));
    }
    layout.initrd = start;
  }
  return layout;
}

}  // namespace skiff::boot

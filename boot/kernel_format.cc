#include "boot/kernel_format.h"

#include <cstring>

#include "boot/arm64_image.h"
#include "boot/gunzip.h"

namespace skiff::boot {
namespace {

bool HasBytes(std::span<const uint8_t> file, size_t offset, const char* bytes, size_t n) {
  return file.size() >= offset + n && std::memcmp(file.data() + offset, bytes, n) == 0;
}

}  // namespace

KernelFormat DetectKernelFormat(std::span<const uint8_t> file) {
  if (HasBytes(file, 0, "\x7f" "ELF", 4)) return KernelFormat::kElf;
  if (HasBytes(file, 0x1fe, "\x55\xaa", 2) && HasBytes(file, 0x202, "HdrS", 4)) {
    return KernelFormat::kBzImage;
  }
  if (HasBytes(file, kArm64MagicOffset, kArm64Magic, 4)) return KernelFormat::kArm64Image;
  if (IsGzip(file)) {
    // Only the header is needed: inflate just enough bytes to see it.
    absl::StatusOr<std::vector<uint8_t>> head = GunzipPrefix(file, kArm64HeaderSize);
    if (head.ok() && HasBytes(*head, kArm64MagicOffset, kArm64Magic, 4)) {
      return KernelFormat::kArm64ImageGz;
    }
    return KernelFormat::kGzip;
  }
  return KernelFormat::kUnknown;
}

std::string DescribeKernelFormat(KernelFormat format) {
  switch (format) {
    case KernelFormat::kBzImage:
      return "an x86 bzImage";
    case KernelFormat::kArm64Image:
      return "an arm64 Image";
    case KernelFormat::kArm64ImageGz:
      return "a gzip-compressed arm64 Image";
    case KernelFormat::kGzip:
      return "a gzip file without an arm64 Image header";
    case KernelFormat::kElf:
      return "an ELF file (a vmlinux)";
    case KernelFormat::kUnknown:
      break;
  }
  return "not a kernel format Skiff knows";
}

}  // namespace skiff::boot

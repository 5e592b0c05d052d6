#include "boot/bzimage.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "boot/kernel_format.h"

namespace skiff::boot {
namespace {

// Setup-header field offsets (boot.rst, "The Real-Mode Kernel Header").
constexpr uint64_t kSetupSectsOffset = 0x1f1;
constexpr uint64_t kSysSizeOffset = 0x1f4;
constexpr uint64_t kBootFlagOffset = 0x1fe;
constexpr uint64_t kJumpOffsetByte = 0x201;  // header ends at 0x202 + this
constexpr uint64_t kHeaderMagicOffset = 0x202;
constexpr uint64_t kVersionOffset = 0x206;
constexpr uint64_t kLoadflagsOffset = 0x211;
constexpr uint64_t kInitrdAddrMaxOffset = 0x22c;
constexpr uint64_t kKernelAlignmentOffset = 0x230;
constexpr uint64_t kRelocatableOffset = 0x234;
constexpr uint64_t kXloadflagsOffset = 0x236;
constexpr uint64_t kCmdlineSizeOffset = 0x238;
constexpr uint64_t kPrefAddressOffset = 0x258;
constexpr uint64_t kInitSizeOffset = 0x260;
// Every field above must lie inside both the file and the declared header.
constexpr uint64_t kMinHeaderEnd = kInitSizeOffset + 4;

constexpr uint16_t kBootFlag = 0xaa55;
constexpr uint64_t kSectorSize = 512;

uint64_t ReadLe(std::span<const uint8_t> file, uint64_t offset, int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | file[offset + i];
  return value;
}

}  // namespace

absl::StatusOr<BzImage> ParseBzImage(std::span<const uint8_t> file) {
  // The other architecture's kernel is an easy mistake with two builds of
  // Skiff around; name it rather than report a missing magic.
  const KernelFormat format = DetectKernelFormat(file);
  if (format == KernelFormat::kArm64Image || format == KernelFormat::kArm64ImageGz) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "kernel is %s; this skiff runs x86-64 guests (give it an x86-64 bzImage)",
        DescribeKernelFormat(format)));
  }
  // A vmlinux is the most common wrong file to hand over; say so plainly.
  if (file.size() >= 4 && std::memcmp(file.data(),
                                      "\x7f"
                                      "ELF",
                                      4) == 0) {
    return absl::InvalidArgumentError(
        "kernel is an ELF file (a vmlinux); Skiff needs a bzImage "
        "(arch/x86/boot/bzImage, or /boot/vmlinuz-* on Debian)");
  }
  if (file.size() < kMinHeaderEnd) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "kernel file too small to be a bzImage: %d bytes, need at least %d "
        "for the setup header",
        file.size(), kMinHeaderEnd));
  }
  if (ReadLe(file, kBootFlagOffset, 2) != kBootFlag) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "kernel is not a bzImage: no boot signature 0xAA55 at offset 0x%X",
        kBootFlagOffset));
  }
  if (std::memcmp(file.data() + kHeaderMagicOffset, "HdrS", 4) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "kernel is not a bzImage: no \"HdrS\" setup-header magic at offset "
        "0x%X",
        kHeaderMagicOffset));
  }

  BzImage image;
  image.protocol_version =
      static_cast<uint16_t>(ReadLe(file, kVersionOffset, 2));
  if (image.protocol_version < kMinProtocolVersion) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bzImage boot protocol %d.%02d is too old: Skiff uses the 64-bit "
        "entry point, which needs protocol 2.12 or newer (Linux 3.8+)",
        image.protocol_version >> 8, image.protocol_version & 0xff));
  }

  const uint64_t header_end = 0x202 + uint64_t{file[kJumpOffsetByte]};
  if (header_end < kMinHeaderEnd || header_end > kSetupHeaderMaxEnd) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bzImage setup header ends at 0x%X (0x202 + byte at 0x201); expected "
        "between 0x%X and 0x%X",
        header_end, kMinHeaderEnd, kSetupHeaderMaxEnd));
  }
  if (header_end > file.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bzImage truncated: setup header ends at 0x%X but the file has only "
        "%d bytes",
        header_end, file.size()));
  }
  image.setup_header.assign(file.begin() + kSetupHeaderOffset,
                            file.begin() + header_end);

  image.loadflags = file[kLoadflagsOffset];
  image.xloadflags = static_cast<uint16_t>(ReadLe(file, kXloadflagsOffset, 2));
  image.initrd_addr_max =
      static_cast<uint32_t>(ReadLe(file, kInitrdAddrMaxOffset, 4));
  image.kernel_alignment =
      static_cast<uint32_t>(ReadLe(file, kKernelAlignmentOffset, 4));
  image.relocatable_kernel = file[kRelocatableOffset] != 0;
  image.cmdline_size =
      static_cast<uint32_t>(ReadLe(file, kCmdlineSizeOffset, 4));
  image.pref_address = ReadLe(file, kPrefAddressOffset, 8);
  image.init_size = static_cast<uint32_t>(ReadLe(file, kInitSizeOffset, 4));

  if ((image.loadflags & kLoadedHigh) == 0) {
    return absl::InvalidArgumentError(
        "kernel is a zImage (LOADED_HIGH clear in loadflags); Skiff needs a "
        "bzImage, whose protected-mode part loads at 1 MiB");
  }
  if ((image.xloadflags & kXlfKernel64) == 0) {
    return absl::InvalidArgumentError(
        "bzImage has no 64-bit entry point (XLF_KERNEL_64 clear in "
        "xloadflags); Skiff boots 64-bit x86 kernels only");
  }
  // The kernel aligns its runtime address with this mask; anything but a
  // power of two would make that arithmetic meaningless.
  if (image.relocatable_kernel &&
      (image.kernel_alignment == 0 ||
       (image.kernel_alignment & (image.kernel_alignment - 1)) != 0)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bzImage kernel_alignment 0x%X is not a power of two",
                        image.kernel_alignment));
  }

  // setup_sects == 0 means 4 for historical reasons; +1 for the boot sector.
  uint64_t setup_sects = file[kSetupSectsOffset];
  if (setup_sects == 0) setup_sects = 4;
  image.setup_size = (setup_sects + 1) * kSectorSize;
  if (image.setup_size > file.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bzImage truncated: setup code is %d bytes (setup_sects %d) but the "
        "file has only %d bytes",
        image.setup_size, setup_sects, file.size()));
  }
  image.payload = file.subspan(image.setup_size);
  if (image.payload.empty()) {
    return absl::InvalidArgumentError(
        "bzImage has no protected-mode kernel after its setup code");
  }
  // syssize counts 16-byte paragraphs of protected-mode code; fewer bytes
  // than that means the file was cut short.
  const uint64_t declared = ReadLe(file, kSysSizeOffset, 4) * 16;
  if (declared > image.payload.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bzImage truncated: header declares %d bytes of protected-mode "
        "kernel (syssize) but the file holds %d",
        declared, image.payload.size()));
  }
  return image;
}

}  // namespace skiff::boot

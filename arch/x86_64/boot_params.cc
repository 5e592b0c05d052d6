#include "arch/x86_64/boot_params.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_format.h"
#include "arch/x86_64/layout.h"
#include "vmm/status_macros.h"

namespace skiff::x86 {
namespace {

constexpr uint64_t kPageSize = 0x1000;
constexpr uint16_t kProtocolWithRsdpAddr = 0x020e;  // 2.14

void PutLe(std::span<uint8_t> out, uint64_t offset, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out[offset + i] = (value >> (8 * i)) & 0xff;
}

// "300 MiB", or "300.5 MiB" when not a whole number of MiB.
std::string FormatMiB(uint64_t bytes) {
  if (bytes % (1 << 20) == 0) return absl::StrFormat("%d MiB", bytes >> 20);
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

uint64_t LowRamEnd(uint64_t ram_size) {
  return std::min(ram_size, kMmioHoleStart);
}

}  // namespace

absl::StatusOr<std::array<uint8_t, kBootParamsSize>> BuildBootParams(
    const boot::BzImage& image, const BootParamsInput& input) {
  std::array<uint8_t, kBootParamsSize> page{};  // zeroed, incl. sentinel
  const uint64_t header_size = image.setup_header.size();
  if (header_size > boot::kSetupHeaderMaxEnd - boot::kSetupHeaderOffset) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bzImage setup header of %d bytes does not fit in boot_params",
        header_size));
  }
  std::memcpy(page.data() + boot::kSetupHeaderOffset, image.setup_header.data(),
              header_size);

  if (input.e820.size() > kE820MaxEntries) {
    return absl::InvalidArgumentError(
        absl::StrFormat("e820 map has %d entries; boot_params holds at most %d",
                        input.e820.size(), kE820MaxEntries));
  }
  if (input.initrd_size != 0 &&
      input.initrd_addr > UINT64_MAX - input.initrd_size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "initramfs at 0x%X of %d bytes overflows the address space",
        input.initrd_addr, input.initrd_size));
  }

  std::span<uint8_t> out(page);
  out[bp::kTypeOfLoader] = kTypeOfLoaderUndefined;
  // 64-bit values are split across the legacy u32 field and its ext_ half.
  // The kernel trusts the ext_ halves only while the sentinel byte at 0x1EF
  // is 0 (it wipes them otherwise), and the zeroed page guarantees that.
  PutLe(out, bp::kCmdLinePtr, input.cmdline_addr & 0xffffffff, 4);
  PutLe(out, bp::kExtCmdLinePtr, input.cmdline_addr >> 32, 4);
  if (input.initrd_size != 0) {
    PutLe(out, bp::kRamdiskImage, input.initrd_addr & 0xffffffff, 4);
    PutLe(out, bp::kExtRamdiskImage, input.initrd_addr >> 32, 4);
    PutLe(out, bp::kRamdiskSize, input.initrd_size & 0xffffffff, 4);
    PutLe(out, bp::kExtRamdiskSize, input.initrd_size >> 32, 4);
  }
  out[bp::kE820Entries] = static_cast<uint8_t>(input.e820.size());
  for (size_t i = 0; i < input.e820.size(); ++i) {
    const uint64_t at = bp::kE820Table + i * bp::kE820EntrySize;
    PutLe(out, at, input.e820[i].addr, 8);
    PutLe(out, at + 8, input.e820[i].size, 8);
    PutLe(out, at + 16, input.e820[i].type, 4);
  }
  if (image.protocol_version >= kProtocolWithRsdpAddr) {
    PutLe(out, bp::kAcpiRsdpAddr, input.acpi_rsdp_addr, 8);
  }
  return page;
}

absl::Status ValidateCmdline(std::string_view cmdline,
                             const boot::BzImage& image) {
  if (cmdline.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        "kernel command line contains a NUL byte");
  }
  if (cmdline.size() > image.cmdline_size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "kernel command line is %d bytes; this kernel accepts at most %d "
        "(cmdline_size in its setup header)",
        cmdline.size(), image.cmdline_size));
  }
  if (cmdline.size() + 1 > kCmdlineMaxSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "kernel command line is %d bytes; Skiff passes at most %d",
        cmdline.size(), kCmdlineMaxSize - 1));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> KernelEnd(const boot::BzImage& image) {
  uint64_t runtime_start = image.pref_address;
  if (image.relocatable_kernel) {
    // kernel_alignment is a non-zero power of two (ParseBzImage checks).
    const uint64_t mask = uint64_t{image.kernel_alignment} - 1;
    const uint64_t aligned_load = (kKernelLoadAddress + mask) & ~mask;
    runtime_start = std::max(aligned_load, image.pref_address);
  }
  uint64_t decompressed_end = 0;
  uint64_t end = 0;
  if (__builtin_add_overflow(runtime_start, uint64_t{image.init_size},
                             &decompressed_end) ||
      __builtin_add_overflow(
          std::max<uint64_t>(decompressed_end,
                             kKernelLoadAddress + image.payload.size()),
          kPageSize - 1, &end)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bzImage pref_address 0x%X with init_size 0x%X overflows",
        image.pref_address, image.init_size));
  }
  return end & ~(kPageSize - 1);
}

absl::Status CheckKernelFits(const boot::BzImage& image, uint64_t ram_size) {
  ASSIGN_OR_RETURN(uint64_t kernel_end, KernelEnd(image));
  if (kernel_end > LowRamEnd(ram_size)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "kernel needs guest memory up to %s (runtime start + init_size) but "
        "the guest has %s",
        FormatMiB(kernel_end), FormatMiB(ram_size)));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> PlaceInitrd(const boot::BzImage& image,
                                     uint64_t initrd_size, uint64_t ram_size) {
  if (initrd_size == 0) {
    return absl::InvalidArgumentError("initramfs is empty");
  }
  ASSIGN_OR_RETURN(uint64_t kernel_end, KernelEnd(image));
  // initrd_addr_max names the last byte the initrd may occupy.
  const uint64_t addr_limit = uint64_t{image.initrd_addr_max} + 1;
  const uint64_t ram_limit = LowRamEnd(ram_size);
  const uint64_t top = std::min(addr_limit, ram_limit);
  if (initrd_size > top ||
      ((top - initrd_size) & ~(kPageSize - 1)) < kernel_end) {
    if (addr_limit < ram_limit) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "initramfs (%s) does not fit between the end of the kernel (0x%X) "
          "and the kernel's initrd limit (initrd_addr_max 0x%X)",
          FormatMiB(initrd_size), kernel_end, image.initrd_addr_max));
    }
    return absl::InvalidArgumentError(absl::StrFormat(
        "initramfs (%s) does not fit in guest memory (%s) above the kernel "
        "(which needs memory up to %s); give the guest more memory",
        FormatMiB(initrd_size), FormatMiB(ram_size), FormatMiB(kernel_end)));
  }
  return (top - initrd_size) & ~(kPageSize - 1);
}

}  // namespace skiff::x86

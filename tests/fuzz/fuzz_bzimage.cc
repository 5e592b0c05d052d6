// The kernel file is untrusted input: boot::ParseBzImage on fuzzed files,
// and on x86-64 everything Skiff then computes from a parsed image (the
// zero page, the command-line check, the kernel's end, initramfs placement)
// for a guest RAM size, initramfs size and command-line length taken from
// the input.
//
// Input: [ram selector u8] [initrd size u32] [cmdline length u16 + u8&1]
// [file...].
//
// Invariants beyond "no crash": a parsed image's payload is the file after
// its setup code, its setup header is the file's [0x1F1, 0x202 + file[0x201])
// and its flags are the ones Skiff requires; the zero page carries the
// header's magic and boot flag; the kernel end is page-aligned and past the
// payload; an initramfs is placed page-aligned, past the kernel, below
// initrd_addr_max and inside RAM.
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "boot/bzimage.h"
#include "tests/fuzz/fuzz_support.h"

#if defined(__x86_64__)
#include "arch/x86_64/boot_params.h"
#include "arch/x86_64/e820.h"
#include "arch/x86_64/layout.h"
#endif

namespace skiff {
namespace {

using fuzz::FuzzInput;

void CheckImage(std::span<const uint8_t> file, const boot::BzImage& image) {
  FUZZ_CHECK(image.protocol_version >= boot::kMinProtocolVersion, "protocol 0x%x accepted",
             image.protocol_version);
  FUZZ_CHECK((image.loadflags & boot::kLoadedHigh) && (image.xloadflags & boot::kXlfKernel64),
             "loadflags 0x%x xloadflags 0x%x accepted", image.loadflags, image.xloadflags);
  FUZZ_CHECK(image.setup_size < file.size() &&
                 image.payload.data() == file.data() + image.setup_size &&
                 image.payload.size() == file.size() - image.setup_size,
             "payload is not the file after its %u-byte setup", image.setup_size);
  const uint64_t header_end = 0x202 + uint64_t{file[0x201]};
  FUZZ_CHECK(header_end <= boot::kSetupHeaderMaxEnd &&
                 image.setup_header.size() == header_end - boot::kSetupHeaderOffset &&
                 std::memcmp(image.setup_header.data(), file.data() + boot::kSetupHeaderOffset,
                             image.setup_header.size()) == 0,
             "setup header is not the file's bytes [0x1f1, 0x%x)", header_end);
}

#if defined(__x86_64__)
void CheckPlacement(const boot::BzImage& image, FuzzInput& in) {
  // RAM sizes around the interesting edges: tiny, the kernel's own needs,
  // the 3 GiB hole, and large.
  static constexpr uint64_t kRamSizes[] = {2ull << 20, 16ull << 20, 64ull << 20, 256ull << 20,
                                           3ull << 30, 4ull << 30,  64ull << 30};
  const uint64_t ram = kRamSizes[in.Below(std::size(kRamSizes))];
  const uint64_t initrd_size = in.Take<uint32_t>();
  // Up to one past the 64 KiB command-line area.
  const std::string cmdline(in.Take<uint16_t>() + in.Below(2), 'x');

  (void)x86::ValidateCmdline(cmdline, image);
  auto end = x86::KernelEnd(image);
  if (end.ok()) {
    FUZZ_CHECK(*end % 4096 == 0, "kernel end 0x%x not page-aligned", *end);
    FUZZ_CHECK(*end >= x86::kKernelLoadAddress + image.payload.size(),
               "kernel end 0x%x before the payload's end", *end);
  }
  const absl::Status fits = x86::CheckKernelFits(image, ram);
  if (fits.ok()) FUZZ_CHECK(end.ok(), "CheckKernelFits passed without a kernel end");
  if (initrd_size > 0) {
    auto at = x86::PlaceInitrd(image, initrd_size, ram);
    if (at.ok()) {
      FUZZ_CHECK(end.ok() && *at >= *end, "initrd at 0x%x before the kernel end", *at);
      FUZZ_CHECK(*at % 4096 == 0, "initrd at 0x%x not page-aligned", *at);
      FUZZ_CHECK(*at + initrd_size <= uint64_t{image.initrd_addr_max} + 1,
                 "initrd 0x%x+0x%x past initrd_addr_max 0x%x", *at, initrd_size,
                 image.initrd_addr_max);
      FUZZ_CHECK(*at + initrd_size <= ram, "initrd 0x%x+0x%x past RAM 0x%x", *at, initrd_size, ram);
    }
  }

  auto e820 = x86::BuildE820Map(ram);
  if (!e820.ok()) return;  // RAM sizes Skiff refuses anyway
  x86::BootParamsInput input;
  input.cmdline_addr = x86::kCmdlineAddress;
  input.initrd_addr = 0x1000000;
  input.initrd_size = initrd_size;
  input.e820 = *e820;
  auto params = x86::BuildBootParams(image, input);
  if (params.ok()) {
    FUZZ_CHECK(std::memcmp(params->data() + 0x202, "HdrS", 4) == 0, "zero page lost HdrS");
    FUZZ_CHECK((*params)[0x1fe] == 0x55 && (*params)[0x1ff] == 0xaa, "zero page lost 0xAA55");
  }
}
#endif

}  // namespace
}  // namespace skiff

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  skiff::fuzz::QuietLogs();
  skiff::fuzz::FuzzInput in(data, size);
  // The first 8 bytes steer placement; the rest is the kernel file.
  const std::span<const uint8_t> params = in.TakeBytes(8);
  const std::span<const uint8_t> file = in.TakeRest();
  auto image = skiff::boot::ParseBzImage(file);
  if (!image.ok()) return 0;
  skiff::CheckImage(file, *image);
#if defined(__x86_64__)
  skiff::fuzz::FuzzInput steer(params.data(), params.size());
  skiff::CheckPlacement(*image, steer);
#else
  (void)params;
#endif
  return 0;
}

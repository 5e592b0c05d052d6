// The arm64 kernel file is untrusted input: boot::ReadArm64Kernel (Image
// or Image.gz, inflated under a bound) on fuzzed files, then what Skiff's
// arm64 SetupPlatform does with a parsed image: PlaceArm64Boot for a guest
// RAM size and initramfs size taken from the input, and the kernel copied
// into guest RAM (a fake one, sparse anonymous memory at the real RAM base).
//
// Input: [ram selector u8] [inflate bound selector u8] [initrd: u8&1 present,
// u32 size] [pad to 8 bytes] [file...].
//
// The harness lowers the inflate bound (64 KiB to 8 MiB instead of up to
// 512 MiB) through ReadArm64Kernel's parameter, so that a gzip bomb is
// refused quickly and the fuzzer's memory stays small; Skiff itself passes
// Arm64MaxInflatedSize(ram).
//
// Invariants beyond "no crash": an inflated kernel is at most the bound and
// its buffer never grew past it; a parsed image's payload is the (inflated)
// file's first bytes, cut at image_size, with a page-aligned text_offset
// below 2 MiB; an accepted layout puts the kernel at RAM base + text_offset,
// then its image_size, then the DTB's own 2 MiB-aligned 2 MiB, then the
// initramfs, all inside RAM (the initramfs also inside the 32 GiB window
// above the kernel's 1 GiB boundary), and the kernel's bytes land there.
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "arch/arm64/layout.h"
#include "boot/arm64_image.h"
#include "boot/gunzip.h"
#include "tests/fuzz/fuzz_support.h"
#include "vmm/guest_memory.h"
#include "vmm/mapping.h"

namespace skiff {
namespace {

using fuzz::FuzzInput;

constexpr uint64_t k1MiB = 1ull << 20;
constexpr uint64_t k1GiB = 1ull << 30;

uint64_t ReadLe64(std::span<const uint8_t> bytes, size_t offset) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[offset + i];
  return value;
}

void CheckImage(std::span<const uint8_t> loaded, const boot::Arm64Image& image) {
  FUZZ_CHECK(loaded.size() >= boot::kArm64HeaderSize, "a %d-byte image accepted", loaded.size());
  FUZZ_CHECK(image.text_offset < boot::kArm64ImageAlignment && image.text_offset % 4096 == 0,
             "text_offset 0x%x accepted", image.text_offset);
  FUZZ_CHECK((image.flags & boot::kArm64FlagBigEndian) == 0, "a big-endian kernel accepted");
  const uint64_t header_size = ReadLe64(loaded, 16);
  FUZZ_CHECK(header_size <= boot::kArm64MaxImageSize, "image_size 0x%x accepted", header_size);
  const uint64_t expected_payload =
      header_size == 0 ? loaded.size() : std::min<uint64_t>(loaded.size(), header_size);
  FUZZ_CHECK(image.payload.data() == loaded.data() && image.payload.size() == expected_payload,
             "payload of %d bytes is not the first %d bytes of the image", image.payload.size(),
             expected_payload);
  FUZZ_CHECK(image.image_size >= image.payload.size(), "image_size 0x%x below the payload's 0x%x",
             image.image_size, image.payload.size());
}

// Sparse guest RAM at the arm64 RAM base: untouched pages cost nothing, so
// RAM sizes up to tens of GiB are as cheap as the kernel is large.
class SparseRam {
 public:
  static std::optional<SparseRam> Create(uint64_t size) {
    void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (addr == MAP_FAILED) return std::nullopt;
    Mapping mapping(addr, size);
    auto memory = GuestMemory::Create({{arm64::kRamBase, size, mapping.data()}});
    FUZZ_CHECK(memory.ok(), "fake RAM: %s", memory.status().ToString());
    return SparseRam(std::move(mapping), *std::move(memory));
  }
  const GuestMemory& memory() const { return memory_; }

 private:
  SparseRam(Mapping mapping, GuestMemory memory)
      : mapping_(std::move(mapping)), memory_(std::move(memory)) {}
  Mapping mapping_;
  GuestMemory memory_;
};

void CheckPlacement(const boot::Arm64Image& image, uint64_t ram, std::optional<uint64_t> initrd) {
  const uint64_t base = arm64::kRamBase;
  auto layout = boot::PlaceArm64Boot(image, base, ram, initrd);
  if (!layout.ok()) return;
  FUZZ_CHECK(layout->kernel == base + image.text_offset, "kernel at 0x%x, text_offset 0x%x",
             layout->kernel, image.text_offset);
  const uint64_t kernel_end = layout->kernel + image.image_size;
  FUZZ_CHECK(layout->dtb % boot::kArm64ImageAlignment == 0 && layout->dtb >= kernel_end,
             "DTB at 0x%x, kernel ends at 0x%x", layout->dtb, kernel_end);
  const uint64_t dtb_end = layout->dtb + boot::kArm64DtbMaxSize;
  FUZZ_CHECK(dtb_end <= base + ram, "DTB region ends at 0x%x, past RAM", dtb_end);
  FUZZ_CHECK(layout->initrd.has_value() == initrd.has_value(), "initrd placed without asking");
  if (initrd) {
    const uint64_t start = *layout->initrd;
    const uint64_t window_end = (layout->kernel & ~(k1GiB - 1)) + boot::kArm64InitrdWindowSize;
    FUZZ_CHECK(start >= dtb_end, "initrd at 0x%x inside the DTB region", start);
    FUZZ_CHECK(*initrd <= base + ram - start && *initrd <= window_end - start,
               "initrd 0x%x+0x%x past RAM or the 32 GiB window", start, *initrd);
  }

  // Now the writes SetupPlatform makes, into RAM of that size.
  std::optional<SparseRam> fake = SparseRam::Create(ram);
  if (!fake) return;  // no address space for this size here: nothing to check
  const GuestMemory& memory = fake->memory();
  absl::Status wrote = memory.Write(layout->kernel, image.payload);
  FUZZ_CHECK(wrote.ok(), "the placed kernel does not fit: %s", wrote.ToString());
  auto landed = memory.GetSpan(layout->kernel, image.payload.size());
  FUZZ_CHECK(landed.ok() && std::equal(landed->begin(), landed->end(), image.payload.begin()),
             "the kernel's bytes are not at 0x%x", layout->kernel);
  FUZZ_CHECK(memory.GetSpan(layout->kernel, image.image_size).ok(),
             "the kernel's image_size 0x%x at 0x%x is not all RAM", image.image_size,
             layout->kernel);
  FUZZ_CHECK(memory.GetSpan(layout->dtb, boot::kArm64DtbMaxSize).ok(),
             "the DTB region at 0x%x is not all RAM", layout->dtb);
  if (initrd && *initrd > 0) {
    FUZZ_CHECK(memory.GetSpan(*layout->initrd, *initrd).ok(),
               "the initrd at 0x%x+0x%x is not all RAM", *layout->initrd, *initrd);
  }
}

void FuzzOne(std::span<const uint8_t> params, std::span<const uint8_t> file) {
  FuzzInput steer(params.data(), params.size());
  // RAM sizes around the edges: Skiff's 16 MiB minimum, a kernel's own
  // needs, past the 1 GiB and 32 GiB initrd window boundaries.
  static constexpr uint64_t kRamSizes[] = {16 * k1MiB, 18 * k1MiB, 64 * k1MiB, 512 * k1MiB,
                                           4 * k1GiB,  33 * k1GiB, 40 * k1GiB};
  static constexpr uint64_t kInflateBounds[] = {64 << 10, 1 * k1MiB, 8 * k1MiB};
  const uint64_t ram = kRamSizes[steer.Below(std::size(kRamSizes))];
  const uint64_t bound = std::min(boot::Arm64MaxInflatedSize(ram),
                                  kInflateBounds[steer.Below(std::size(kInflateBounds))]);
  const bool has_initrd = steer.TakeBool();
  const uint32_t initrd_size = steer.Take<uint32_t>();
  const std::optional<uint64_t> initrd =
      has_initrd ? std::optional<uint64_t>(initrd_size) : std::nullopt;

  std::vector<uint8_t> storage;
  auto image = boot::ReadArm64Kernel(file, bound, storage);
  const bool gzip = boot::IsGzip(file);
  FUZZ_CHECK(storage.size() <= bound && storage.capacity() <= bound,
             "inflated into %d bytes (capacity %d), bound %d", storage.size(), storage.capacity(),
             bound);
  if (!image.ok()) {
    FUZZ_CHECK(!image.status().message().empty(), "an error without a message");
    return;
  }
  FUZZ_CHECK(!gzip || !storage.empty(), "a gzip file parsed without being inflated");
  CheckImage(gzip ? std::span<const uint8_t>(storage) : file, *image);
  CheckPlacement(*image, ram, initrd);
}

}  // namespace
}  // namespace skiff

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  skiff::fuzz::QuietLogs();
  skiff::fuzz::FuzzInput in(data, size);
  // The first 8 bytes steer RAM size, bound and initrd; the rest is the kernel file.
  const std::span<const uint8_t> params = in.TakeBytes(8);
  skiff::FuzzOne(params, in.TakeRest());
  return 0;
}

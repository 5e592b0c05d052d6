// A file Skiff accepts as a kernel: a bzImage header (boot protocol 2.15,
// 64-bit entry) and a small payload. For tests of what happens before the
// guest runs.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace skiff::testing {

inline std::vector<uint8_t> FakeBzImage() {
  std::vector<uint8_t> image(0x1000 + 0x1000, 0);
  auto put16 = [&](size_t off, uint16_t v) { std::memcpy(&image[off], &v, 2); };
  auto put32 = [&](size_t off, uint32_t v) { std::memcpy(&image[off], &v, 4); };
  auto put64 = [&](size_t off, uint64_t v) { std::memcpy(&image[off], &v, 8); };
  image[0x1f1] = 7;                       // setup_sects: (7+1)*512 = 0x1000
  put16(0x1fe, 0xaa55);
  image[0x200] = 0xeb;                    // jmp
  image[0x201] = 0x6a;                    // header ends at 0x26c
  std::memcpy(&image[0x202], "HdrS", 4);
  put16(0x206, 0x020f);
  image[0x211] = 0x01;                    // LOADED_HIGH
  put32(0x22c, 0x7fffffff);               // initrd_addr_max
  put32(0x230, 0x200000);                 // kernel_alignment
  image[0x234] = 1;                       // relocatable
  put16(0x236, 0x0003);                   // XLF_KERNEL_64 | above 4G
  put32(0x238, 2048);                     // cmdline_size
  put64(0x258, 0x1000000);                // pref_address
  put32(0x260, 0x100000);                 // init_size
  return image;
}

// The same kernel with `code` at its 64-bit entry point (0x200 into the
// payload, which Skiff loads at 1 MiB): a tiny 64-bit guest that Skiff
// boots as it would boot Linux, with paging on and the low 4 GiB
// identity-mapped.
inline std::vector<uint8_t> FakeBzImageRunning(const std::vector<uint8_t>& code) {
  std::vector<uint8_t> image = FakeBzImage();
  constexpr size_t kEntry = 0x1000 + 0x200;  // setup sectors, then the entry
  if (kEntry + code.size() > image.size()) image.resize(kEntry + code.size());
  std::memcpy(&image[kEntry], code.data(), code.size());
  return image;
}

}  // namespace skiff::testing

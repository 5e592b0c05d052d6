#include "devices/vfio/rom_bar.h"

#include <algorithm>
#include <bit>

#include "absl/strings/str_format.h"

namespace skiff::vfio {

absl::StatusOr<uint32_t> RomBarSize(uint64_t region_size) {
  if (region_size == 0) {
    return absl::FailedPreconditionError(
        "rom=on, but the device has no expansion ROM (VFIO's ROM region is empty)");
  }
  if (region_size > kMaxRomBarSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "its expansion ROM region is 0x%x bytes; a PCI expansion ROM is at most 0x%x",
        region_size, kMaxRomBarSize));
  }
  return std::max(kMinRomBarSize, static_cast<uint32_t>(std::bit_ceil(region_size)));
}

std::optional<uint32_t> PlaceRomBelow(uint64_t window_base, uint64_t top, uint32_t size) {
  if (size == 0 || !std::has_single_bit(size) || top < size) return std::nullopt;
  const uint64_t address = (top - size) & ~uint64_t{size - 1};
  if (address < window_base || address + size > (uint64_t{1} << 32)) return std::nullopt;
  return static_cast<uint32_t>(address);
}

RomBar::RomBar(uint32_t size) : size_(size) {}

void RomBar::Write(uint32_t offset, uint32_t size, uint32_t value) {
  if (offset >= 4 || size == 0 || size > 4 - offset) return;
  const uint32_t bytes = size >= 4 ? 0xffffffff : (uint32_t{1} << (8 * size)) - 1;
  const uint32_t mask = bytes << (8 * offset);
  const uint32_t merged = (value_ & ~mask) | ((value << (8 * offset)) & mask);
  value_ = merged & (address_mask() | kRomEnable);
}

std::optional<uint32_t> RomBar::Decoding(bool memory_on) const {
  const uint32_t address = value_ & address_mask();
  if (!memory_on || !(value_ & kRomEnable) || address == 0 || address == address_mask()) {
    return std::nullopt;
  }
  return address;
}

}  // namespace skiff::vfio

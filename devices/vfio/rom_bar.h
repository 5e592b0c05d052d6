// The expansion ROM base address register (configuration offset 0x30) of a
// passed-through function whose ROM the user asked for (--device
// vfio=...,rom=on), as the PCI Local Bus spec 3.0 (6.2.5.2) has it:
//   * bits 31-11 hold the ROM's address; only those above the ROM's size
//     are writable, so all-ones written reads back the size mask;
//   * bit 0 enables decoding; bits 10-1 read zero;
//   * the ROM decodes only while bit 0 and the command register's memory
//     bit are both set (the device shares address decoders between the ROM
//     and its BARs, so software enables the ROM only to read it).
// Plain data with no lock: the owning device serialises access and maps
// the ROM where Decoding() says.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"

namespace skiff::vfio {

// The smallest ROM BAR: bits 10-1 are reserved, so 2 KiB.
inline constexpr uint32_t kMinRomBarSize = 2048;
// The largest the spec allows an expansion ROM to ask for.
inline constexpr uint32_t kMaxRomBarSize = 16u << 20;
inline constexpr uint32_t kRomEnable = 0x1;

// The ROM BAR size for a VFIO ROM region of `region_size` bytes: the size
// rounded up to a power of two, at least kMinRomBarSize. Errors: 0 (the
// device has no ROM) and sizes above kMaxRomBarSize.
absl::StatusOr<uint32_t> RomBarSize(uint64_t region_size);

// Where firmware would put a ROM of `size` bytes (a power of two) below
// `top` in the window starting at `window_base`: the highest naturally
// aligned address whose ROM ends at or below `top`. nullopt: no room.
// Skiff's PCI root fills its 32-bit window from the bottom, so ROMs are
// placed down from the top of it.
std::optional<uint32_t> PlaceRomBelow(uint64_t window_base, uint64_t top, uint32_t size);

class RomBar {
 public:
  // `size` must come from RomBarSize. The register starts at zero:
  // no address, decoding off.
  explicit RomBar(uint32_t size);

  uint32_t size() const { return size_; }
  uint32_t Read() const { return value_; }
  // A configuration write of `size` (1, 2 or 4) bytes at byte `offset`
  // (0-3) of the register; offset + size <= 4.
  void Write(uint32_t offset, uint32_t size, uint32_t value);
  // The address the ROM decodes at now, with the command register's memory
  // bit `memory_on`; nullopt when it does not decode: bit 0 clear, memory
  // off, no address, or mid-sizing (the register holds the size mask).
  std::optional<uint32_t> Decoding(bool memory_on) const;

 private:
  uint32_t address_mask() const { return ~(size_ - 1); }

  uint32_t size_;
  uint32_t value_ = 0;
};

}  // namespace skiff::vfio

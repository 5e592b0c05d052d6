// Helpers for the small legacy registers that take a whole 1/2/4-byte value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace skiff {

// An access an x86 `out`/`mov` of a byte, word or dword makes.
inline bool IsPortSizedAccess(size_t size) { return size == 1 || size == 2 || size == 4; }

// `data` (at most 4 bytes) as a little-endian, zero-extended value.
inline uint32_t LittleEndianValue(std::span<const uint8_t> data) {
  uint32_t value = 0;
  for (size_t i = 0; i < data.size() && i < 4; ++i) value |= uint32_t{data[i]} << (8 * i);
  return value;
}

}  // namespace skiff

#include "devices/legacy/pl031.h"

#include <algorithm>
#include <ctime>

#include "devices/legacy/le_value.h"

namespace skiff {
namespace {

constexpr uint64_t kData = 0x000;
constexpr uint64_t kMatch = 0x004;
constexpr uint64_t kLoad = 0x008;
constexpr uint64_t kControl = 0x00c;
constexpr uint64_t kIntMask = 0x010;
constexpr uint64_t kRawStatus = 0x014;
constexpr uint64_t kMaskedStatus = 0x018;
constexpr uint64_t kIdBase = 0xfe0;
// PeriphID0-3 (part 0x031, designer ARM 0x41, revision 1), then the
// PrimeCell ID 0xB105F00D, one byte per 32-bit register.
constexpr uint8_t kIds[8] = {0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1};

}  // namespace

Pl031::Pl031(Clock clock) : clock_(std::move(clock)) {}

int64_t Pl031::Now() const {
  if (clock_) return clock_();
  return static_cast<int64_t>(std::time(nullptr));
}

uint32_t Pl031::ReadRegister(uint64_t offset) {
  if (offset >= kIdBase && offset < kIdBase + sizeof(kIds) * 4) {
    return kIds[(offset - kIdBase) / 4];
  }
  std::lock_guard lock(mutex_);
  switch (offset) {
    case kData:
    case kLoad:
      // A 32-bit counter, as the hardware: it wraps in 2106.
      return static_cast<uint32_t>(Now() + offset_);
    case kMatch:
      return match_;
    case kControl:
      return 1;  // always started
    case kIntMask:
      return mask_;
    case kRawStatus:
    case kMaskedStatus:
      return 0;
    default:
      return 0;
  }
}

void Pl031::Read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (data.size() != 4 || offset % 4 != 0) return;
  const uint32_t value = ReadRegister(offset);
  for (size_t i = 0; i < 4; ++i) data[i] = static_cast<uint8_t>(value >> (8 * i));
}

void Pl031::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.size() != 4 || offset % 4 != 0) return;
  const uint32_t value = LittleEndianValue(data);
  std::lock_guard lock(mutex_);
  switch (offset) {
    case kLoad:
      offset_ = static_cast<int64_t>(value) - Now();
      break;
    case kMatch:
      match_ = value;
      break;
    case kIntMask:
      mask_ = value & 1;
      break;
    default:
      break;  // RTCDR is read-only, RTCCR cannot stop it, RTCICR has nothing to clear
  }
}

}  // namespace skiff

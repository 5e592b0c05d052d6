#include "devices/legacy/pl061.h"

#include <algorithm>

namespace skiff {
namespace {

constexpr uint64_t kDataEnd = 0x400;  // GPIODATA: 0x000-0x3fc, mask in bits [9:2]
constexpr uint64_t kDir = 0x400;
constexpr uint64_t kIntSense = 0x404;
constexpr uint64_t kIntBothEdges = 0x408;
constexpr uint64_t kIntEvent = 0x40c;
constexpr uint64_t kIntEnable = 0x410;
constexpr uint64_t kRawStatus = 0x414;
constexpr uint64_t kMaskedStatus = 0x418;
constexpr uint64_t kIntClear = 0x41c;
constexpr uint64_t kAltFunction = 0x420;
constexpr uint64_t kIdBase = 0xfe0;
// GPIOPeriphID0-3 (part 0x061, designer ARM 0x41, revision 0), then the
// PrimeCell ID 0xB105F00D, one byte per 32-bit register: Linux's AMBA bus
// matches the driver on 0x00041061.
constexpr uint8_t kIds[8] = {0x61, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1};

// An access the device answers: 1, 2 or 4 bytes inside one register word.
bool InOneWord(uint64_t offset, size_t size) {
  return (size == 1 || size == 2 || size == 4) && (offset % 4) + size <= 4;
}

}  // namespace

Pl061::Pl061(std::shared_ptr<IrqLine> irq) : irq_(std::move(irq)) {}

uint8_t Pl061::Pins() const { return static_cast<uint8_t>((data_ & dir_) | (inputs_ & ~dir_)); }

uint8_t Pl061::RawStatus() const {
  // A level line is pending while its pin matches GPIOIEV (high or low).
  const uint8_t levels = static_cast<uint8_t>(is_ & ~(Pins() ^ iev_));
  return static_cast<uint8_t>((edges_ & ~is_) | levels);
}

void Pl061::Update(uint8_t before) {
  const uint8_t now = Pins();
  const uint8_t rising = static_cast<uint8_t>(~before & now);
  const uint8_t falling = static_cast<uint8_t>(before & ~now);
  const uint8_t hits = static_cast<uint8_t>((ibe_ & (rising | falling)) | (~ibe_ & iev_ & rising) |
                                            (~ibe_ & ~iev_ & falling));
  edges_ |= static_cast<uint8_t>(hits & ~is_);
  const bool asserted = (RawStatus() & ie_) != 0;
  if (asserted != irq_level_) {
    irq_level_ = asserted;
    irq_->SetLevel(asserted);
  }
}

uint8_t Pl061::ReadRegister(uint64_t offset) {
  if (offset >= kIdBase && offset < kIdBase + sizeof(kIds) * 4) {
    return kIds[(offset - kIdBase) / 4];
  }
  if (offset < kDataEnd) return Pins() & static_cast<uint8_t>(offset >> 2);
  const uint8_t raw = RawStatus();
  switch (offset) {
    case kDir:
      return dir_;
    case kIntSense:
      return is_;
    case kIntBothEdges:
      return ibe_;
    case kIntEvent:
      return iev_;
    case kIntEnable:
      return ie_;
    case kRawStatus:
      return raw;
    case kMaskedStatus:
      return raw & ie_;
    case kAltFunction:
      return afsel_;
    default:
      return 0;  // GPIOIC is write-only; the rest is unassigned
  }
}

void Pl061::WriteRegister(uint64_t offset, uint8_t value) {
  const uint8_t before = Pins();
  if (offset < kDataEnd) {
    const uint8_t mask = static_cast<uint8_t>(offset >> 2);
    data_ = static_cast<uint8_t>((data_ & ~mask) | (value & mask));
  } else {
    switch (offset) {
      case kDir:
        dir_ = value;
        break;
      case kIntSense:
        is_ = value;
        break;
      case kIntBothEdges:
        ibe_ = value;
        break;
      case kIntEvent:
        iev_ = value;
        break;
      case kIntEnable:
        ie_ = value;
        break;
      case kIntClear:
        edges_ &= static_cast<uint8_t>(~value);
        break;
      case kAltFunction:
        afsel_ = value;
        break;
      default:
        return;  // read-only (RIS, MIS, IDs) or unassigned
    }
  }
  Update(before);
}

void Pl061::Read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (offset >= kRegisterSize || !InOneWord(offset, data.size())) return;
  uint8_t value;
  {
    std::lock_guard lock(mutex_);
    value = ReadRegister(offset & ~uint64_t{3});
  }
  // The register is the word's low byte; the other byte lanes read 0.
  if (offset % 4 == 0) data[0] = value;
}

void Pl061::Write(uint64_t offset, std::span<const uint8_t> data) {
  // Only the low byte lane holds register bits; writes to the others
  // change nothing.
  if (offset >= kRegisterSize || !InOneWord(offset, data.size()) || offset % 4 != 0) return;
  std::lock_guard lock(mutex_);
  WriteRegister(offset, data[0]);
}

void Pl061::SetInput(uint32_t line, bool high) {
  if (line >= kLines) return;
  std::lock_guard lock(mutex_);
  const uint8_t before = Pins();
  const uint8_t bit = static_cast<uint8_t>(1u << line);
  inputs_ = static_cast<uint8_t>(high ? (inputs_ | bit) : (inputs_ & ~bit));
  Update(before);
}

}  // namespace skiff

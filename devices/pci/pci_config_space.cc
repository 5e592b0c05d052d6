#include "devices/pci/pci_config_space.h"

#include <algorithm>
#include <bit>

#include "absl/strings/str_format.h"

namespace skiff::pci {
namespace {

constexpr uint32_t kBarIoAddressMask = 0xfffffffc;
constexpr uint32_t kBarMemAddressMask = 0xfffffff0;

uint32_t AllOnes(uint32_t size) { return size >= 4 ? 0xffffffff : (uint32_t{1} << (8 * size)) - 1; }

}  // namespace

PciConfigSpace::PciConfigSpace(const PciIds& ids) {
  Put(kVendorId, 2, ids.vendor_id);
  Put(kDeviceId, 2, ids.device_id);
  Put(kRevisionId, 1, ids.revision_id);
  Put(kClassProgIf, 1, ids.class_code & 0xff);
  Put(kClassProgIf + 1, 2, (ids.class_code >> 8) & 0xffff);
  Put(kSubsystemVendorId, 2, ids.subsystem_vendor_id);
  Put(kSubsystemId, 2, ids.subsystem_id);
  Put(kInterruptPin, 1, ids.interrupt_pin);
  // Header type 0, single function; no expansion ROM; status all clear.
  writable_[kCommand] = kCommandWritable & 0xff;
  writable_[kCommand + 1] = kCommandWritable >> 8;
  writable_[kCacheLineSize] = 0xff;  // scratch for the OS
  writable_[kInterruptLine] = 0xff;  // ditto: firmware/OS bookkeeping
}

void PciConfigSpace::Put(uint32_t offset, uint32_t size, uint32_t value) {
  for (uint32_t i = 0; i < size; ++i) bytes_[offset + i] = value >> (8 * i);
}

uint32_t PciConfigSpace::Get(uint32_t offset, uint32_t size) const {
  uint32_t value = 0;
  for (uint32_t i = 0; i < size; ++i) value |= uint32_t{bytes_[offset + i]} << (8 * i);
  return value;
}

absl::Status PciConfigSpace::AddBar(int index, const BarSpec& spec) {
  const bool is64 = spec.type == BarType::kMemory64;
  const int last = is64 ? index + 1 : index;
  if (index < 0 || last >= kNumBars) {
    return absl::InvalidArgumentError(
        absl::StrFormat("BAR %d: index out of range (0-5, 64-bit BARs 0-4)", index));
  }
  if (bars_[index].slot != BarSlot::kUnused || bars_[last].slot != BarSlot::kUnused) {
    return absl::AlreadyExistsError(absl::StrFormat("BAR %d: already declared", index));
  }
  uint64_t min = 16, max = uint64_t{1} << 31;
  if (spec.type == BarType::kIo) min = 4, max = 256;
  if (is64) max = uint64_t{1} << 63;
  if (!std::has_single_bit(spec.size) || spec.size < min || spec.size > max) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "BAR %d: size 0x%x must be a power of two in [0x%x, 0x%x]", index, spec.size, min, max));
  }
  if (spec.prefetchable && spec.type == BarType::kIo) {
    return absl::InvalidArgumentError(
        absl::StrFormat("BAR %d: I/O BARs cannot be prefetchable", index));
  }
  const uint64_t address_bits = ~(spec.size - 1);
  BarRegister& low = bars_[index];
  low.slot = BarSlot::kLow;
  if (spec.type == BarType::kIo) {
    low.address_mask = static_cast<uint32_t>(address_bits) & kBarIoAddressMask;
    low.flags = kBarIoSpace;
  } else {
    low.address_mask = static_cast<uint32_t>(address_bits) & kBarMemAddressMask;
    low.flags = (is64 ? kBarMem64 : 0) | (spec.prefetchable ? kBarPrefetchable : 0);
  }
  if (is64) {
    BarRegister& high = bars_[index + 1];
    high.slot = BarSlot::kHigh;
    high.address_mask = static_cast<uint32_t>(address_bits >> 32);
    high.flags = 0;
  }
  bar_specs_[index] = spec;
  Put(kBar0 + 4 * index, 4, low.flags);
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> PciConfigSpace::AddCapability(uint8_t id, std::span<const uint8_t> body,
                                                       std::span<const uint8_t> writable) {
  const uint32_t offset = next_capability_;
  const uint64_t total = 2 + uint64_t{body.size()};
  if (offset + total > kLegacyConfigSpaceSize) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "capability 0x%02x (%d bytes) does not fit in the 256-byte config space at 0x%x", id, total,
        offset));
  }
  if (!writable.empty() && writable.size() != body.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "capability 0x%02x: %d mask bytes for %d body bytes", id, writable.size(), body.size()));
  }
  bytes_[offset] = id;
  bytes_[offset + 1] = 0;  // end of list until another one follows
  std::copy(body.begin(), body.end(), bytes_.begin() + offset + 2);
  std::copy(writable.begin(), writable.end(), writable_.begin() + offset + 2);
  if (last_capability_ == 0) {
    bytes_[kCapabilitiesPointer] = offset;
  } else {
    bytes_[last_capability_ + 1] = offset;
  }
  Put(kStatus, 2, Get(kStatus, 2) | kStatusCapList);
  last_capability_ = offset;
  next_capability_ = (offset + total + 3) & ~uint32_t{3};
  return offset;
}

uint32_t PciConfigSpace::Read(uint32_t offset, uint32_t size) const {
  if (!ValidAccess(offset, size)) return AllOnes(size);
  return Get(offset, size);
}

void PciConfigSpace::Write(uint32_t offset, uint32_t size, uint32_t value) {
  if (!ValidAccess(offset, size)) return;
  value &= AllOnes(size);
  if (Overlaps(offset, size, kBar0, kBarsEnd)) {
    // Within one dword, so within one BAR register: merge the written bytes
    // into it and apply the BAR's rules to the whole register.
    const uint32_t dword_offset = offset & ~uint32_t{3};
    const uint32_t shift = 8 * (offset & 3);
    const uint32_t mask = AllOnes(size) << shift;
    const uint32_t merged = (Get(dword_offset, 4) & ~mask) | (value << shift);
    WriteBarDword((dword_offset - kBar0) / 4, merged);
    return;
  }
  for (uint32_t i = 0; i < size; ++i) {
    const uint8_t byte = value >> (8 * i);
    uint8_t& stored = bytes_[offset + i];
    const uint8_t mask = writable_[offset + i];
    stored = (stored & ~mask) | (byte & mask);
  }
}

void PciConfigSpace::WriteBarDword(int dword, uint32_t value) {
  BarRegister& reg = bars_[dword];
  if (reg.slot == BarSlot::kUnused) return;  // reads as zero: no BAR here
  reg.sizing = value == 0xffffffff;
  Put(kBar0 + 4 * dword, 4, (value & reg.address_mask) | reg.flags);
}

void PciConfigSpace::SetRaw(uint32_t offset, uint32_t size, uint32_t value) {
  if (!ValidAccess(offset, size) || Overlaps(offset, size, kBar0, kBarsEnd)) return;
  Put(offset, size, value);
}

std::optional<BarInfo> PciConfigSpace::GetBar(int index) const {
  if (index < 0 || index >= kNumBars || bars_[index].slot != BarSlot::kLow) {
    return std::nullopt;
  }
  const BarSpec& spec = bar_specs_[index];
  BarInfo info;
  info.type = spec.type;
  info.size = spec.size;
  info.prefetchable = spec.prefetchable;
  info.address = Get(kBar0 + 4 * index, 4) & bars_[index].address_mask;
  info.sizing = bars_[index].sizing;
  if (spec.type == BarType::kMemory64) {
    const BarRegister& high = bars_[index + 1];
    info.address |= uint64_t{Get(kBar0 + 4 * (index + 1), 4) & high.address_mask} << 32;
    info.sizing = info.sizing || high.sizing;
  }
  return info;
}

uint16_t PciConfigSpace::command() const { return Get(kCommand, 2); }

}  // namespace skiff::pci

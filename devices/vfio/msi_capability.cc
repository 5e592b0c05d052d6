#include "devices/vfio/msi_capability.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "vmm/log.h"

namespace skiff::vfio {
namespace {

constexpr uint16_t kEnable = 1 << 0;
constexpr uint16_t kMultipleCapableShift = 1;
constexpr uint16_t kMultipleEnableShift = 4;
constexpr uint16_t kAddress64 = 1 << 7;
constexpr uint16_t kPerVectorMask = 1 << 8;

uint32_t CapableVectors(uint16_t control) {
  const uint32_t log2 = std::min<uint32_t>((control >> kMultipleCapableShift) & 7, 5);
  return 1u << log2;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MsiCapability>> MsiCapability::Create(uint16_t control,
                                                                     MsiAllocator& allocator,
                                                                     uint16_t devid) {
  std::vector<std::unique_ptr<MsiVector>> vectors;
  for (uint32_t i = 0; i < CapableVectors(control); ++i) {
    auto vector = allocator.Allocate();
    if (!vector.ok()) {
      return absl::Status(vector.status().code(),
                          absl::StrFormat("MSI vector %u: %s", i, vector.status().message()));
    }
    vectors.push_back(*std::move(vector));
  }
  return std::make_unique<MsiCapability>(control, std::move(vectors), devid);
}

MsiCapability::MsiCapability(uint16_t control, std::vector<std::unique_ptr<MsiVector>> vectors,
                             uint16_t devid)
    : is64_(control & kAddress64),
      per_vector_mask_(control & kPerVectorMask),
      length_(is64_ ? (per_vector_mask_ ? 0x18 : 0x0e) : (per_vector_mask_ ? 0x14 : 0x0a)),
      devid_(devid),
      vectors_(std::move(vectors)),
      programmed_(vectors_.size(), false) {
  // Control as the hardware reports it, disabled, one vector enabled.
  const uint16_t ro =
      control & static_cast<uint16_t>((7 << kMultipleCapableShift) | kAddress64 | kPerVectorMask);
  regs_[2] = static_cast<uint8_t>(ro);
  regs_[3] = static_cast<uint8_t>(ro >> 8);
  writable_[2] = kEnable | (7 << kMultipleEnableShift);
  std::fill(writable_.begin() + 4, writable_.begin() + 8, 0xff);  // address low
  writable_[4] = 0xfc;                                            // dword aligned
  const uint32_t data = is64_ ? 0x0c : 0x08;
  if (is64_) std::fill(writable_.begin() + 8, writable_.begin() + 12, 0xff);
  writable_[data] = writable_[data + 1] = 0xff;
  if (per_vector_mask_) {
    const uint32_t mask_bits =
        static_cast<uint32_t>(vectors_.size() >= 32 ? 0xffffffff : (1u << vectors_.size()) - 1);
    for (int i = 0; i < 4; ++i)
      writable_[MaskOffset() + i] = static_cast<uint8_t>(mask_bits >> (8 * i));
  }
}

uint8_t MsiCapability::ReadByte(uint32_t offset) const {
  if (offset < 2 || offset >= length_) return 0;
  if (per_vector_mask_ && offset >= MaskOffset() + 4 && offset < MaskOffset() + 8) {
    return static_cast<uint8_t>(pending_ >> (8 * (offset - MaskOffset() - 4)));
  }
  return regs_[offset];
}

void MsiCapability::WriteByte(uint32_t offset, uint8_t value) {
  if (offset < 2 || offset >= length_) return;
  regs_[offset] =
      static_cast<uint8_t>((regs_[offset] & ~writable_[offset]) | (value & writable_[offset]));
  if (offset == 2) {
    // Multiple Message Enable above Multiple Message Capable is undefined;
    // hold it at what the device can do.
    const uint8_t capable = (regs_[2] >> kMultipleCapableShift) & 7;
    const uint8_t enable = (regs_[2] >> kMultipleEnableShift) & 7;
    if (enable > capable) {
      regs_[2] = static_cast<uint8_t>((regs_[2] & ~(7 << kMultipleEnableShift)) |
                                      capable << kMultipleEnableShift);
    }
  }
}

uint32_t MsiCapability::Get32(uint32_t offset) const {
  uint32_t v = 0;
  for (uint32_t i = 0; i < 4; ++i) v |= uint32_t{regs_[offset + i]} << (8 * i);
  return v;
}

bool MsiCapability::enabled() const { return regs_[2] & kEnable; }

uint32_t MsiCapability::enabled_vectors() const {
  if (!enabled()) return 0;
  const uint32_t log2 = (regs_[2] >> kMultipleEnableShift) & 7;
  return std::min<uint32_t>(log2 > 5 ? 32 : 1u << log2, static_cast<uint32_t>(vectors_.size()));
}

bool MsiCapability::Masked(uint32_t vector) const {
  return per_vector_mask_ && (Get32(MaskOffset()) >> vector & 1);
}

void MsiCapability::Commit() {
  const uint32_t n = enabled_vectors();
  const uint64_t address = (uint64_t{is64_ ? Get32(8) : 0} << 32) | (Get32(4) & ~uint32_t{3});
  const uint32_t data_at = is64_ ? 0x0c : 0x08;
  const uint32_t data = regs_[data_at] | uint32_t{regs_[data_at + 1]} << 8;
  for (uint32_t i = 0; i < vectors_.size(); ++i) {
    if (i >= n) {
      programmed_[i] = false;
      continue;
    }
    if (Masked(i)) continue;  // programmed when unmasked, like MSI-X
    if (address == 0) {
      // Not an interrupt (see MsixTable): enabled before it was written.
      programmed_[i] = false;
      continue;
    }
    const uint32_t vector_data = (data & ~(n - 1)) | i;
    absl::Status status = vectors_[i]->SetMessage(address, vector_data, devid_);
    programmed_[i] = status.ok();
    if (!status.ok()) LOG_WARN("vfio", "MSI vector %u: %s", i, status.message());
    if (programmed_[i] && (pending_ >> i & 1)) {
      pending_ &= ~(1u << i);
      vectors_[i]->Trigger();
    }
  }
}

int MsiCapability::IrqFd(uint32_t vector) const {
  if (vector >= enabled_vectors() || Masked(vector) || !programmed_[vector]) return -1;
  return vectors_[vector]->irqfd();
}

void MsiCapability::Park(uint32_t vector) {
  if (vector >= enabled_vectors()) return;
  if (IrqFd(vector) >= 0) {
    vectors_[vector]->Trigger();
  } else if (Masked(vector)) {
    pending_ |= 1u << vector;
  }
  // Unmasked but unrouted (no message yet, or KVM refused it): a device
  // would have written it to a non-interrupt address. Keeping it pending
  // would deliver it later through whatever half of a message comes first.
}

bool MsiCapability::pending(uint32_t vector) const {
  return vector < 32 && (pending_ >> vector & 1);
}

}  // namespace skiff::vfio

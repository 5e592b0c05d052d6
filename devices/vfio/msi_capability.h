// An emulated MSI capability (PCI 3.0 §6.8.1) for a passed-through device.
//
// The guest never reaches the hardware's MSI registers: it programs this
// copy, and the device's VFIO MSI vectors are pointed at eventfds that are
// KVM irqfds on MSI routes carrying the guest's message. The layout (64-bit
// address, per-vector masking, how many vectors) is the hardware's, taken
// from its capability at construction.
//
// Vector i of n enabled sends data with its low log2(n) bits replaced by i.
// A vector the guest masked (per-vector masking) sets its pending bit
// instead of interrupting; unmasking delivers it. Plain data with no lock:
// the owning device serialises access.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "vmm/msi_vector.h"

namespace skiff::vfio {

class MsiCapability {
 public:
  // `control` is the hardware's message-control word (its capability
  // offset + 2). Allocates one vector per message the device can send.
  static absl::StatusOr<std::unique_ptr<MsiCapability>> Create(uint16_t control,
                                                               MsiAllocator& allocator,
                                                               uint16_t devid);
  MsiCapability(uint16_t control, std::vector<std::unique_ptr<MsiVector>> vectors, uint16_t devid);

  // Bytes of the capability, ID and next pointer included.
  uint32_t length() const { return length_; }
  // `offset` from the start of the capability (2 = message control); one
  // byte at a time; ID and next pointer are the caller's.
  uint8_t ReadByte(uint32_t offset) const;
  void WriteByte(uint32_t offset, uint8_t value);
  // Applies the registers after a write: programs the message of every
  // enabled vector. Call once per guest access, after its bytes.
  void Commit();

  bool enabled() const;
  uint32_t enabled_vectors() const;  // 0 when disabled
  // The fd VFIO should signal for enabled vector i: its irqfd when it can
  // deliver (unmasked, programmed), -1 otherwise (masked: the device parks
  // the interrupt and calls Park).
  int IrqFd(uint32_t vector) const;
  // An interrupt arrived for `vector` while it was parked: deliver it if it
  // is deliverable now, mark it pending if masked, drop it otherwise.
  void Park(uint32_t vector);
  bool pending(uint32_t vector) const;

 private:
  uint32_t MaskOffset() const { return is64_ ? 0x10 : 0x0c; }
  uint32_t Get32(uint32_t offset) const;
  bool Masked(uint32_t vector) const;

  const bool is64_;
  const bool per_vector_mask_;
  const uint32_t length_;
  const uint16_t devid_;
  std::array<uint8_t, 24> regs_{};      // the capability, offset = index
  std::array<uint8_t, 24> writable_{};  // guest-writable bits
  std::vector<std::unique_ptr<MsiVector>> vectors_;
  std::vector<bool> programmed_;
  uint32_t pending_ = 0;
};

}  // namespace skiff::vfio

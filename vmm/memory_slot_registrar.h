// KVM memory slots for device memory that the guest reaches without a VM
// exit (a passed-through BAR), behind an interface so devices stay free of
// KVM ioctls and tests can fake it. Slots come and go while the guest runs
// (a BAR moves or its decoding is switched off), so ids are recycled.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"

namespace skiff {

class MemorySlotRegistrar {
 public:
  virtual ~MemorySlotRegistrar() = default;
  // Maps [gpa, gpa + size) to host memory `host` (page-aligned, size a
  // multiple of the page size); returns the slot id.
  virtual absl::StatusOr<uint32_t> AddMemorySlot(uint64_t gpa, uint64_t size, void* host) = 0;
  // Unmaps the slot and frees its id.
  virtual absl::Status RemoveMemorySlot(uint32_t slot) = 0;
};

// KVM irqfds on a GSI, optionally with a resample eventfd (level-triggered
// lines: KVM signals it when the guest EOIs).
class IrqFdRegistrar {
 public:
  virtual ~IrqFdRegistrar() = default;
  virtual absl::Status AddIrqFd(int eventfd, uint32_t gsi, int resample_fd) = 0;
  virtual absl::Status RemoveIrqFd(int eventfd, uint32_t gsi) = 0;
};

}  // namespace skiff

// One KVM virtual machine: its memory slots and interrupt plumbing.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "vmm/guest_memory.h"
#include "vmm/io_event_registrar.h"
#include "vmm/irq_line.h"
#include "vmm/kvm.h"
#include "vmm/memory_slot_registrar.h"
#include "vmm/unique_fd.h"

namespace skiff {

class Vm : public IoEventRegistrar, public MemorySlotRegistrar, public IrqFdRegistrar {
 public:
  static absl::StatusOr<std::unique_ptr<Vm>> Create(const Kvm& kvm,
                                                    unsigned long type = 0);

  explicit Vm(UniqueFd fd) : fd_(std::move(fd)) {}
  int fd() const { return fd_.get(); }

  // Registers every region of `memory` as a KVM memory slot.
  absl::Status MapGuestMemory(const GuestMemory& memory);
  absl::Status SetMemorySlot(uint32_t slot, uint64_t gpa, uint64_t size,
                             void* host, uint32_t flags = 0);
  uint32_t next_slot() const { return next_slot_; }
  // MemorySlotRegistrar: slots for device memory, taken after the RAM
  // slots and recycled. Thread-safe.
  absl::StatusOr<uint32_t> AddMemorySlot(uint64_t gpa, uint64_t size, void* host) override;
  absl::Status RemoveMemorySlot(uint32_t slot) override;

  // KVM_CREATE_DEVICE: an in-kernel device (arm64's vGIC and ITS, VFIO's
  // KVM device). The Vm owns it; at most one per type. Returns its fd.
  absl::StatusOr<int> CreateDevice(uint32_t type, const char* name);
  // The fd of the device of `type` made by CreateDevice, or -1.
  int DeviceFd(uint32_t type) const;

  // Drives an interrupt-controller input (KVM_IRQ_LINE) for `gsi`, in the
  // architecture's numbering (arch::IrqLineNumber).
  absl::Status SetIrqLine(uint32_t gsi, bool level);
  // An IrqLine device objects can hold, wired to KVM_IRQ_LINE for `gsi`.
  std::shared_ptr<IrqLine> MakeIrqLine(uint32_t gsi);

  // KVM_IOEVENTFD: a guest write of `length` bytes at `address` (optionally
  // only of value `datamatch`) signals `eventfd` without a VM exit.
  absl::Status AddIoEventFd(int eventfd, uint64_t address, uint32_t length,
                            bool pio, std::optional<uint64_t> datamatch);
  absl::Status RemoveIoEventFd(int eventfd, uint64_t address, uint32_t length,
                               bool pio, std::optional<uint64_t> datamatch);
  // KVM_IRQFD: a write to `eventfd` injects `gsi`.
  absl::Status AddIrqFd(int eventfd, uint32_t gsi, int resample_fd = -1) override;
  absl::Status RemoveIrqFd(int eventfd, uint32_t gsi) override;

  // IoEventRegistrar: MMIO-space ioeventfds for transports.
  absl::Status AddMmio(int eventfd, uint64_t gpa, uint32_t length,
                       std::optional<uint64_t> datamatch) override {
    return AddIoEventFd(eventfd, gpa, length, /*pio=*/false, datamatch);
  }
  absl::Status RemoveMmio(int eventfd, uint64_t gpa, uint32_t length,
                          std::optional<uint64_t> datamatch) override {
    return RemoveIoEventFd(eventfd, gpa, length, /*pio=*/false, datamatch);
  }

 private:
  absl::Status IoEventFd(int eventfd, uint64_t address, uint32_t length,
                         bool pio, std::optional<uint64_t> datamatch,
                         bool deassign);
  UniqueFd fd_;
  std::mutex slot_mutex_;  // next_slot_, free_slots_
  uint32_t next_slot_ = 0;
  std::map<uint32_t, UniqueFd> devices_;  // by KVM device type
  std::vector<uint32_t> free_slots_;
};

}  // namespace skiff

// MSI-X (PCI 3.0 §6.8.2): the vector table and pending-bit array that live
// in a BAR, and the enable / function-mask bits of the capability.
//
// Each table entry is backed by an MsiVector (a KVM GSI with an MSI route
// and an irqfd). The guest's message reaches the vector when it takes
// effect, i.e. when the entry is unmasked (Linux always rewrites a message
// with the entry masked, so this never programs a half-written one) or
// rewritten while unmasked. The devid passed along is the function's BDF,
// which ARM's GICv3 ITS needs. A message with address 0 (never programmed,
// or zeroed by Linux's deactivation) is no interrupt and is never routed.
//
// Trigger() on a masked vector (entry or function mask) sets its pending
// bit instead; unmasking delivers and clears it. Table accesses must be
// aligned dwords or qwords inside the table; the PBA is read-only. Anything
// else reads zero and is ignored. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "devices/pci/pci_config_space.h"
#include "vmm/msi_vector.h"

namespace skiff::pci {

class MsixTable {
 public:
  // Allocates `num_vectors` (1-2048) vectors from `allocator`.
  static absl::StatusOr<std::unique_ptr<MsixTable>> Create(uint32_t num_vectors,
                                                           MsiAllocator& allocator, uint16_t devid);
  MsixTable(std::vector<std::unique_ptr<MsiVector>> vectors, uint16_t devid);

  uint32_t num_vectors() const { return static_cast<uint32_t>(entries_.size()); }
  uint64_t table_size() const { return uint64_t{kMsixEntrySize} * entries_.size(); }
  uint64_t pba_size() const { return 8 * ((entries_.size() + 63) / 64); }

  // Adds the MSI-X capability to `config`: table at `table_offset` and PBA
  // at `pba_offset` (both 8-byte aligned) of BAR `bar`. Returns its offset.
  absl::StatusOr<uint32_t> AddCapability(PciConfigSpace& config, int bar, uint32_t table_offset,
                                         uint32_t pba_offset);
  // The device calls this after every config write that touched the
  // capability (offset from AddCapability), with the message-control word.
  void SetControl(uint16_t message_control);
  bool enabled() const;

  // `offset` relative to the table / PBA start.
  void ReadTable(uint64_t offset, std::span<uint8_t> data);
  void WriteTable(uint64_t offset, std::span<const uint8_t> data);
  void ReadPba(uint64_t offset, std::span<uint8_t> data);

  // Interrupts the guest through `vector`, or marks it pending if masked.
  // Ignored while MSI-X is disabled or for a vector past the table. Any
  // thread.
  void Trigger(uint32_t vector);
  // The vector's irqfd while MSI-X is enabled and the vector is unmasked and
  // programmed; -1 otherwise.
  int IrqFd(uint32_t vector) const;

 private:
  struct Message {
    uint64_t address = 0;
    uint32_t data = 0;
    bool operator==(const Message&) const = default;
  };
  struct Entry {
    Message message;
    bool masked = true;  // every entry starts masked (PCI 3.0 §6.8.2.9)
    bool pending = false;
    std::optional<Message> programmed;  // what the MsiVector holds
    std::unique_ptr<MsiVector> vector;
  };

  bool DeliverableLocked(const Entry& entry) const {
    return enabled_ && !function_masked_ && !entry.masked;
  }
  uint32_t ReadDwordLocked(uint64_t offset) const;
  void WriteDwordLocked(uint64_t offset, uint32_t value);
  // Programs an unmasked entry's message if it changed, then delivers a
  // pending interrupt if the entry can deliver now.
  void RefreshLocked(uint32_t index);

  const uint16_t devid_;
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
  bool enabled_ = false;
  bool function_masked_ = false;
};

}  // namespace skiff::pci

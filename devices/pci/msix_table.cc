#include "devices/pci/msix_table.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "vmm/log.h"

namespace skiff::pci {
namespace {

constexpr uint32_t kEntryAddressLow = 0;
constexpr uint32_t kEntryAddressHigh = 4;
constexpr uint32_t kEntryData = 8;

bool ValidAccess(uint64_t offset, size_t size, uint64_t limit) {
  return (size == 4 || size == 8) && offset % size == 0 && offset < limit && size <= limit - offset;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MsixTable>> MsixTable::Create(uint32_t num_vectors,
                                                             MsiAllocator& allocator,
                                                             uint16_t devid) {
  if (num_vectors == 0 || num_vectors > kMsixMaxVectors) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "MSI-X: %d vectors requested; a table holds 1-%d", num_vectors, kMsixMaxVectors));
  }
  std::vector<std::unique_ptr<MsiVector>> vectors;
  for (uint32_t i = 0; i < num_vectors; ++i) {
    auto vector = allocator.Allocate();
    if (!vector.ok()) return vector.status();
    vectors.push_back(*std::move(vector));
  }
  return std::make_unique<MsixTable>(std::move(vectors), devid);
}

MsixTable::MsixTable(std::vector<std::unique_ptr<MsiVector>> vectors, uint16_t devid)
    : devid_(devid) {
  entries_.resize(vectors.size());
  for (size_t i = 0; i < vectors.size(); ++i) entries_[i].vector = std::move(vectors[i]);
}

absl::StatusOr<uint32_t> MsixTable::AddCapability(PciConfigSpace& config, int bar,
                                                  uint32_t table_offset, uint32_t pba_offset) {
  if (bar < 0 || bar >= kNumBars || table_offset % 8 != 0 || pba_offset % 8 != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "MSI-X capability: BAR %d, table at 0x%x, PBA at 0x%x (need BAR 0-5, 8-byte aligned)", bar,
        table_offset, pba_offset));
  }
  const uint16_t control = num_vectors() - 1;  // "table size" is N-1
  const uint32_t table = table_offset | static_cast<uint32_t>(bar);
  const uint32_t pba = pba_offset | static_cast<uint32_t>(bar);
  // After ID and next pointer: message control, table offset/BIR, PBA
  // offset/BIR. Only enable and function mask are the guest's to write.
  const uint8_t body[10] = {static_cast<uint8_t>(control),     static_cast<uint8_t>(control >> 8),
                            static_cast<uint8_t>(table),       static_cast<uint8_t>(table >> 8),
                            static_cast<uint8_t>(table >> 16), static_cast<uint8_t>(table >> 24),
                            static_cast<uint8_t>(pba),         static_cast<uint8_t>(pba >> 8),
                            static_cast<uint8_t>(pba >> 16),   static_cast<uint8_t>(pba >> 24)};
  const uint8_t writable[10] = {
      0, (kMsixControlEnable | kMsixControlFunctionMask) >> 8, 0, 0, 0, 0, 0, 0, 0, 0};
  return config.AddCapability(kCapIdMsix, body, writable);
}

void MsixTable::SetControl(uint16_t message_control) {
  std::lock_guard lock(mutex_);
  enabled_ = message_control & kMsixControlEnable;
  function_masked_ = message_control & kMsixControlFunctionMask;
  for (uint32_t i = 0; i < entries_.size(); ++i) RefreshLocked(i);
}

bool MsixTable::enabled() const {
  std::lock_guard lock(mutex_);
  return enabled_;
}

uint32_t MsixTable::ReadDwordLocked(uint64_t offset) const {
  const Entry& entry = entries_[offset / kMsixEntrySize];
  switch (offset % kMsixEntrySize) {
    case kEntryAddressLow:
      return static_cast<uint32_t>(entry.message.address);
    case kEntryAddressHigh:
      return static_cast<uint32_t>(entry.message.address >> 32);
    case kEntryData:
      return entry.message.data;
    default:
      return entry.masked ? kMsixVectorMasked : 0;
  }
}

void MsixTable::WriteDwordLocked(uint64_t offset, uint32_t value) {
  Entry& entry = entries_[offset / kMsixEntrySize];
  switch (offset % kMsixEntrySize) {
    case kEntryAddressLow:
      // Bits 1:0 are reserved zero: a message address is dword aligned.
      entry.message.address = (entry.message.address & ~uint64_t{0xffffffff}) | (value & ~3u);
      break;
    case kEntryAddressHigh:
      entry.message.address = (entry.message.address & 0xffffffff) | (uint64_t{value} << 32);
      break;
    case kEntryData:
      entry.message.data = value;
      break;
    default:
      entry.masked = value & kMsixVectorMasked;
      break;
  }
}

void MsixTable::RefreshLocked(uint32_t index) {
  Entry& entry = entries_[index];
  if (entry.masked) return;
  if (entry.message.address == 0) {
    // Not an interrupt: no interrupt controller Skiff models decodes
    // address 0 (x86 wants 0xfeexxxxx, ARM a GIC doorbell). It is the
    // message of an entry never programmed, or one Linux deactivated
    // (msi_domain_deactivate writes zeros); KVM would turn it into vector
    // 0 on vCPU 0. Nothing is routed and nothing delivered.
    entry.programmed.reset();
  } else if (entry.programmed != entry.message) {
    absl::Status status =
        entry.vector->SetMessage(entry.message.address, entry.message.data, devid_);
    if (status.ok()) {
      entry.programmed = entry.message;
    } else {
      entry.programmed.reset();
      LOG_WARN("pci", "MSI-X vector %d (devid 0x%04x): %s", index, devid_, status.message());
    }
  }
  if (entry.pending && DeliverableLocked(entry) && entry.programmed) {
    entry.pending = false;
    entry.vector->Trigger();
  }
}

void MsixTable::ReadTable(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (!ValidAccess(offset, data.size(), table_size())) return;
  std::lock_guard lock(mutex_);
  for (size_t done = 0; done < data.size(); done += 4) {
    const uint32_t value = ReadDwordLocked(offset + done);
    for (size_t i = 0; i < 4; ++i) data[done + i] = value >> (8 * i);
  }
}

void MsixTable::WriteTable(uint64_t offset, std::span<const uint8_t> data) {
  if (!ValidAccess(offset, data.size(), table_size())) return;
  std::lock_guard lock(mutex_);
  for (size_t done = 0; done < data.size(); done += 4) {
    uint32_t value = 0;
    for (size_t i = 0; i < 4; ++i) value |= uint32_t{data[done + i]} << (8 * i);
    WriteDwordLocked(offset + done, value);
  }
  RefreshLocked(offset / kMsixEntrySize);  // a qword never spans two entries
}

void MsixTable::ReadPba(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (!ValidAccess(offset, data.size(), pba_size())) return;
  std::lock_guard lock(mutex_);
  for (size_t byte = 0; byte < data.size(); ++byte) {
    for (size_t bit = 0; bit < 8; ++bit) {
      const uint64_t index = (offset + byte) * 8 + bit;
      if (index < entries_.size() && entries_[index].pending) data[byte] |= 1 << bit;
    }
  }
}

void MsixTable::Trigger(uint32_t vector) {
  std::lock_guard lock(mutex_);
  if (vector >= entries_.size() || !enabled_) return;
  Entry& entry = entries_[vector];
  if (!DeliverableLocked(entry)) {
    entry.pending = true;
    return;
  }
  // Unmasked but never successfully programmed: KVM has no route to send.
  if (entry.programmed) entry.vector->Trigger();
}

int MsixTable::IrqFd(uint32_t vector) const {
  std::lock_guard lock(mutex_);
  if (vector >= entries_.size()) return -1;
  const Entry& entry = entries_[vector];
  if (!DeliverableLocked(entry) || !entry.programmed) return -1;
  return entry.vector->irqfd();
}

}  // namespace skiff::pci

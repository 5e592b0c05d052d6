#include "vmm/bus.h"

#include <mutex>

#include "absl/strings/str_format.h"

namespace skiff {

absl::Status Bus::Register(uint64_t base, uint64_t length,
                           std::shared_ptr<BusDevice> device,
                           std::string device_name) {
  uint64_t end;
  if (length == 0 || __builtin_add_overflow(base, length - 1, &end)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s bus: %s at 0x%x has an empty or overflowing range (length 0x%x)",
        name_, device_name, base, length));
  }
  if (device == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s bus: %s has no device", name_, device_name));
  }
  std::unique_lock lock(mutex_);
  // The next range at or after base must start past our end; the one before
  // must end before base.
  auto next = ranges_.lower_bound(base);
  if (next != ranges_.end() && next->first <= end) {
    return absl::AlreadyExistsError(absl::StrFormat(
        "%s bus: %s [0x%x, 0x%x] overlaps %s at 0x%x", name_, device_name,
        base, end, next->second.device_name, next->first));
  }
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + (prev->second.length - 1) >= base) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "%s bus: %s [0x%x, 0x%x] overlaps %s at 0x%x", name_, device_name,
          base, end, prev->second.device_name, prev->first));
    }
  }
  ranges_.emplace(base, Range{length, std::move(device), std::move(device_name)});
  return absl::OkStatus();
}

void Bus::Clear() {
  std::map<uint64_t, Range> doomed;
  {
    std::unique_lock lock(mutex_);
    doomed.swap(ranges_);
  }
  // Devices are destroyed here, outside the lock: a destructor may touch
  // the bus (a PCI root unregistering its BARs).
}

absl::Status Bus::Unregister(uint64_t base) {
  std::unique_lock lock(mutex_);
  if (ranges_.erase(base) == 0) {
    return absl::NotFoundError(
        absl::StrFormat("%s bus: nothing registered at 0x%x", name_, base));
  }
  return absl::OkStatus();
}

const std::pair<const uint64_t, Bus::Range>* Bus::Find(uint64_t address,
                                                       uint64_t size) const {
  if (size == 0) return nullptr;
  auto it = ranges_.upper_bound(address);
  if (it == ranges_.begin()) return nullptr;
  --it;
  uint64_t offset = address - it->first;
  if (offset >= it->second.length || size > it->second.length - offset) {
    return nullptr;
  }
  return &*it;
}

std::shared_ptr<BusDevice> Bus::Lookup(uint64_t address, uint64_t size,
                                       uint64_t* offset) const {
  std::shared_lock lock(mutex_);
  auto* entry = Find(address, size);
  if (entry == nullptr) return nullptr;
  *offset = address - entry->first;
  return entry->second.device;  // kept alive past a concurrent Unregister
}

bool Bus::Read(uint64_t address, std::span<uint8_t> data) const {
  uint64_t offset = 0;
  std::shared_ptr<BusDevice> device = Lookup(address, data.size(), &offset);
  if (device == nullptr) return false;
  device->Read(offset, data);
  return true;
}

bool Bus::Write(uint64_t address, std::span<const uint8_t> data) const {
  uint64_t offset = 0;
  std::shared_ptr<BusDevice> device = Lookup(address, data.size(), &offset);
  if (device == nullptr) return false;
  device->Write(offset, data);
  return true;
}

std::vector<Bus::Entry> Bus::Entries() const {
  std::shared_lock lock(mutex_);
  std::vector<Entry> entries;
  for (const auto& [base, range] : ranges_) {
    entries.push_back({base, range.length, range.device_name});
  }
  return entries;
}

}  // namespace skiff

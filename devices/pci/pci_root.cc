#include "devices/pci/pci_root.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_format.h"
#include "devices/pci/host_bridge.h"
#include "devices/pci/pci_config_space.h"
#include "vmm/log.h"

namespace skiff::pci {
namespace {

constexpr uint64_t kFourGiB = uint64_t{1} << 32;

uint32_t AllOnes(uint32_t size) { return size >= 4 ? 0xffffffff : (uint32_t{1} << (8 * size)) - 1; }

absl::Status CheckWindow(const char* what, const PciWindow& window, uint64_t limit) {
  uint64_t end;
  if (window.size == 0 || __builtin_add_overflow(window.base, window.size - 1, &end) ||
      end >= limit) {
    return absl::InvalidArgumentError(
        absl::StrFormat("PCI %s window [0x%x, +0x%x) is empty, overflows or ends past 0x%x", what,
                        window.base, window.size, limit));
  }
  return absl::OkStatus();
}

// Routes accesses inside one mapped BAR to its device.
class BarWindow : public BusDevice {
 public:
  BarWindow(std::shared_ptr<PciDevice> device, int index)
      : device_(std::move(device)), index_(index) {}
  void Read(uint64_t offset, std::span<uint8_t> data) override {
    device_->ReadBar(index_, offset, data);
  }
  void Write(uint64_t offset, std::span<const uint8_t> data) override {
    device_->WriteBar(index_, offset, data);
  }

 private:
  const std::shared_ptr<PciDevice> device_;
  const int index_;
};

}  // namespace

std::optional<uint64_t> PciRoot::Allocator::Allocate(uint64_t size) {
  // Natural alignment, as BAR decoding requires. Window bases need not be
  // aligned to every BAR size, so align the absolute address.
  const uint64_t base = window.base + next;
  uint64_t aligned;
  if (__builtin_add_overflow(base, size - 1, &aligned)) return std::nullopt;
  aligned &= ~(size - 1);
  const uint64_t offset = aligned - window.base;
  if (offset > window.size || size > window.size - offset) return std::nullopt;
  next = offset + size;
  return aligned;
}

PciRoot::PciRoot(const PciRootConfig& config, Bus* mmio_bus, Bus* pio_bus,
                 std::array<std::shared_ptr<IrqLine>, kIntxLines> intx)
    : config_(config), mmio_bus_(mmio_bus), pio_bus_(pio_bus), intx_(std::move(intx)) {
  mmio32_alloc_.window = config.mmio32;
  if (config.mmio64) mmio64_alloc_ = Allocator{*config.mmio64};
  if (config.io) io_alloc_ = Allocator{*config.io};
}

absl::StatusOr<std::shared_ptr<PciRoot>> PciRoot::Create(
    const PciRootConfig& config, Bus* mmio_bus, Bus* pio_bus,
    std::array<std::shared_ptr<IrqLine>, kIntxLines> intx) {
  if (mmio_bus == nullptr) return absl::InvalidArgumentError("PCI root: no MMIO bus");
  auto status = CheckWindow("32-bit MMIO", config.mmio32, kFourGiB);
  if (!status.ok()) return status;
  if (config.mmio64) {
    status = CheckWindow("64-bit MMIO", *config.mmio64, ~uint64_t{0});
    if (!status.ok()) return status;
  }
  if (config.io) {
    if (pio_bus == nullptr)
      return absl::InvalidArgumentError("PCI root: I/O window without a port bus");
    status = CheckWindow("I/O", *config.io, 0x10000);
    if (!status.ok()) return status;
  }
  auto root = std::make_shared<PciRoot>(config, mmio_bus, pio_bus, std::move(intx));
  if (config.host_bridge) {
    auto slot = root->Add(std::make_shared<HostBridge>());
    if (!slot.ok()) return slot.status();
  }
  return root;
}

absl::StatusOr<PciRoot::Slot> PciRoot::ReserveSlot() {
  std::lock_guard lock(mutex_);
  for (uint8_t device = 0; device < kDevicesPerBus; ++device) {
    if (slots_[device].reserved) continue;
    slots_[device].reserved = true;
    return Slot{device, Bdf(0, device, 0), intx_.LineFor(device, kInterruptPinA)};
  }
  return absl::ResourceExhaustedError(
      absl::StrFormat("PCI bus 0 is full (%d devices)", kDevicesPerBus));
}

absl::Status PciRoot::Attach(const Slot& slot, std::shared_ptr<PciDevice> device) {
  if (device == nullptr) return absl::InvalidArgumentError("PCI attach: no device");
  std::lock_guard lock(mutex_);
  if (slot.device >= kDevicesPerBus || !slots_[slot.device].reserved ||
      slots_[slot.device].device != nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "PCI attach %s: slot %d is not reserved or already taken", device->name(), slot.device));
  }
  auto status = AssignBarsLocked(slot.device, *device);
  if (!status.ok()) return status;
  slots_[slot.device].device = device;
  status = SyncMappingsLocked(slot.device);
  if (!status.ok()) {
    slots_[slot.device].device = nullptr;
    for (int i = 0; i < kNumBars; ++i) {
      Mapping& m = slots_[slot.device].bars[i];
      if (!m.mapped) continue;
      (void)(m.type == BarType::kIo ? pio_bus_ : mmio_bus_)->Unregister(m.address);
      m = Mapping{};
      device->BarMapped(i, std::nullopt);
    }
    return status;
  }
  LOG_INFO("pci", "00:%02x.0 %s", slot.device, device->name());
  return absl::OkStatus();
}

void PciRoot::ReleaseSlot(const Slot& slot) {
  std::lock_guard lock(mutex_);
  if (slot.device < kDevicesPerBus && slots_[slot.device].device == nullptr) {
    slots_[slot.device].reserved = false;
  }
}

absl::StatusOr<PciRoot::Slot> PciRoot::Add(std::shared_ptr<PciDevice> device) {
  auto slot = ReserveSlot();
  if (!slot.ok()) return slot.status();
  auto status = Attach(*slot, std::move(device));
  if (!status.ok()) {
    ReleaseSlot(*slot);
    return status;
  }
  return slot;
}

absl::Status PciRoot::AssignBarsLocked(uint8_t device, PciDevice& dev) {
  // Largest first, so alignment padding stays small.
  std::array<int, kNumBars> order;
  std::array<uint64_t, kNumBars> sizes{};
  std::iota(order.begin(), order.end(), 0);
  for (int i = 0; i < kNumBars; ++i) {
    if (auto bar = dev.GetBar(i)) sizes[i] = bar->size;
  }
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return sizes[a] > sizes[b]; });

  uint16_t decode = 0;
  for (int i : order) {
    std::optional<BarInfo> bar = dev.GetBar(i);
    if (!bar) continue;
    Allocator* alloc = &mmio32_alloc_;
    if (bar->type == BarType::kIo) {
      if (!io_alloc_) {
        LOG_WARN("pci", "%s: I/O BAR %d left unassigned (no I/O window)", dev.name(), i);
        continue;
      }
      alloc = &*io_alloc_;
    } else if (bar->type == BarType::kMemory64 && mmio64_alloc_) {
      alloc = &*mmio64_alloc_;
    }
    std::optional<uint64_t> address = alloc->Allocate(bar->size);
    if (!address) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("PCI device %s: no room for BAR %d (0x%x bytes) in the window at 0x%x",
                          dev.name(), i, bar->size, alloc->window.base));
    }
    // Exactly what firmware does: program the BAR through config space.
    dev.WriteConfig(kBar0 + 4 * i, 4, static_cast<uint32_t>(*address));
    if (bar->type == BarType::kMemory64) {
      dev.WriteConfig(kBar0 + 4 * (i + 1), 4, static_cast<uint32_t>(*address >> 32));
    }
    decode |= bar->type == BarType::kIo ? kCommandIo : kCommandMemory;
  }
  LOG_DEBUG("pci", "00:%02x.0: BARs assigned", device);
  if (decode != 0) dev.WriteConfig(kCommand, 2, dev.ReadConfig(kCommand, 2) | decode);
  return absl::OkStatus();
}

absl::Status PciRoot::SyncMappingsLocked(uint8_t device, bool retrying, bool* released) {
  SlotState& slot = slots_[device];
  PciDevice& dev = *slot.device;
  const uint16_t command = dev.ReadConfig(kCommand, 2);
  absl::Status first_error;
  for (int i = 0; i < kNumBars; ++i) {
    Mapping& current = slot.bars[i];
    std::optional<BarInfo> bar = dev.GetBar(i);
    // Mid-sizing the register holds a size mask, not an address: leave the
    // mapping where it was until the guest writes an address back.
    if (bar && bar->sizing) continue;
    Bus* bus = nullptr;
    std::optional<uint64_t> want;
    if (bar) {
      const bool io = bar->type == BarType::kIo;
      bus = io ? pio_bus_ : mmio_bus_;
      const bool enabled = command & (io ? kCommandIo : kCommandMemory);
      if (enabled && bar->address != 0 && bus != nullptr) want = bar->address;
    }
    if (current.mapped && want == current.address && bar->size == current.size) continue;
    if (!want) current.refused_address.reset();
    if (want && want == current.refused_address && !current.mapped) continue;

    if (current.mapped) {
      Bus* old_bus = current.type == BarType::kIo ? pio_bus_ : mmio_bus_;
      (void)old_bus->Unregister(current.address);
      current.mapped = false;
      dev.BarMapped(i, std::nullopt);
      if (released != nullptr) *released = true;
    }
    if (!want) continue;
    absl::Status status =
        bus->Register(*want, bar->size, std::make_shared<BarWindow>(slot.device, i),
                      absl::StrFormat("%s BAR %d", dev.name(), i));
    if (!status.ok()) {
      if (retrying) {
        LOG_DEBUG("pci", "00:%02x.0 %s: BAR %d still unmapped: %s", device, dev.name(), i,
                  status.message());
      } else {
        LOG_WARN("pci", "00:%02x.0 %s: BAR %d left unmapped: %s", device, dev.name(), i,
                 status.message());
      }
      current.refused_address = want;
      if (first_error.ok()) first_error = status;
      continue;
    }
    if (retrying) {
      LOG_INFO("pci", "00:%02x.0 %s: BAR %d mapped at 0x%x now that the overlap is gone", device,
               dev.name(), i, *want);
    }
    current = Mapping{};
    current.mapped = true;
    current.address = *want;
    current.size = bar->size;
    current.type = bar->type;
    dev.BarMapped(i, *want);
  }
  return first_error;
}

void PciRoot::RetryRefusedLocked() {
  for (uint8_t device = 0; device < kDevicesPerBus; ++device) {
    SlotState& slot = slots_[device];
    if (slot.device == nullptr) continue;
    bool refused = false;
    for (Mapping& m : slot.bars) {
      if (!m.mapped && m.refused_address) {
        m.refused_address.reset();
        refused = true;
      }
    }
    // A retry only adds registrations, so it cannot free room for another.
    if (refused) (void)SyncMappingsLocked(device, /*retrying=*/true);
  }
}

std::shared_ptr<PciDevice> PciRoot::DeviceAt(uint8_t bus, uint8_t device, uint8_t function) const {
  if (bus != 0 || device >= kDevicesPerBus || function != 0) return nullptr;
  std::lock_guard lock(mutex_);
  return slots_[device].device;
}

uint32_t PciRoot::ReadConfig(uint8_t bus, uint8_t device, uint8_t function, uint32_t offset,
                             uint32_t size) {
  if (!PciConfigSpace::ValidAccess(offset, size)) return AllOnes(size);
  std::shared_ptr<PciDevice> dev = DeviceAt(bus, device, function);
  if (dev == nullptr) return AllOnes(size);
  return dev->ReadConfig(offset, size) & AllOnes(size);
}

void PciRoot::WriteConfig(uint8_t bus, uint8_t device, uint8_t function, uint32_t offset,
                          uint32_t size, uint32_t value) {
  if (!PciConfigSpace::ValidAccess(offset, size)) return;
  std::shared_ptr<PciDevice> dev = DeviceAt(bus, device, function);
  if (dev == nullptr) return;
  dev->WriteConfig(offset, size, value & AllOnes(size));
  std::lock_guard lock(mutex_);
  // Re-read the decode state after any write: cheap (six BARs), and it
  // covers writes that reach the command register or a BAR indirectly.
  if (slots_[device].device != dev) return;
  bool released = false;
  (void)SyncMappingsLocked(device, /*retrying=*/false, &released);
  // The guest moves BARs one register at a time with decoding on, so it
  // may put one onto another device's BAR that is about to move (Linux
  // reassigns every BAR on arm64, largest first). Real hardware lives with
  // the overlap for those few writes; here the refused BAR gets its
  // registration once the other one leaves.
  if (released) RetryRefusedLocked();
}

std::optional<uint64_t> PciRoot::MappedAddress(uint8_t device, int bar) const {
  if (device >= kDevicesPerBus || bar < 0 || bar >= kNumBars) return std::nullopt;
  std::lock_guard lock(mutex_);
  const Mapping& m = slots_[device].bars[bar];
  if (!m.mapped) return std::nullopt;
  return m.address;
}

}  // namespace skiff::pci

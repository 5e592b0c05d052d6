// The PCI root complex: bus 0 with up to 32 single-function devices.
//
// At set-up it plays firmware: it gives each device a slot, assigns its
// BARs addresses from the windows the platform reserved for PCI and turns
// decoding on. From then on it follows the guest: every configuration write
// is checked against what the device now decodes, and each BAR is
// registered on the MMIO (or port) bus exactly while its decode bit is set
// and it holds an address. A BAR moved onto something else is refused and
// stays unmapped. The device hears about every (un)mapping, so it can move
// its KVM ioeventfds along.
//
// Configuration accesses arrive through PciConfigIo (ports 0xCF8-0xCFF) or
// PciEcam (the MMCONFIG window); both end in ReadConfig/WriteConfig, which
// validate every bus/device/function/offset/width. Any thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "devices/pci/intx_router.h"
#include "devices/pci/pci_constants.h"
#include "devices/pci/pci_device.h"
#include "vmm/bus.h"
#include "vmm/irq_line.h"

namespace skiff::pci {

struct PciWindow {
  uint64_t base = 0;
  uint64_t size = 0;
};

struct PciRootConfig {
  PciWindow mmio32 = {};                           // required, below 4 GiB
  std::optional<PciWindow> mmio64 = std::nullopt;  // 64-bit BARs go here when given
  std::optional<PciWindow> io = std::nullopt;      // I/O BARs stay unassigned without it
  bool host_bridge = true;                         // a HostBridge at 00.0
};

class PciRoot {
 public:
  // `mmio_bus` must outlive the root; `pio_bus` too, and may be null when
  // config.io is unset. `intx[i]` drives the root's INTA+i (may be null).
  static absl::StatusOr<std::shared_ptr<PciRoot>> Create(
      const PciRootConfig& config, Bus* mmio_bus, Bus* pio_bus,
      std::array<std::shared_ptr<IrqLine>, kIntxLines> intx);

  // A device number on bus 0, reserved before the device exists because a
  // device needs its requester ID (MSI devid) and INTx line to be built.
  struct Slot {
    uint8_t device = 0;
    uint16_t bdf = 0;
    std::shared_ptr<IrqLine> intx = nullptr;  // INTA of this slot, swizzled; may be null
  };
  absl::StatusOr<Slot> ReserveSlot();

  // Puts `device` in a reserved slot: assigns its BARs from the windows,
  // enables memory/I/O decode and maps the BARs. Errors: slot not reserved
  // or taken, windows exhausted, a BAR overlapping something on the bus.
  absl::Status Attach(const Slot& slot, std::shared_ptr<PciDevice> device);
  // Gives back a reserved slot nothing was attached to (set-up failed).
  void ReleaseSlot(const Slot& slot);
  // ReserveSlot + Attach, for devices that need neither BDF nor INTx.
  absl::StatusOr<Slot> Add(std::shared_ptr<PciDevice> device);

  // Configuration access, already decoded by a mechanism. Nonexistent
  // buses/devices/functions and invalid widths read all-ones (of `size`
  // bytes) and ignore writes.
  uint32_t ReadConfig(uint8_t bus, uint8_t device, uint8_t function, uint32_t offset,
                      uint32_t size);
  void WriteConfig(uint8_t bus, uint8_t device, uint8_t function, uint32_t offset, uint32_t size,
                   uint32_t value);

  const PciRootConfig& config() const { return config_; }

  // Where a BAR is registered now; nullopt when unmapped. For tests/logs.
  std::optional<uint64_t> MappedAddress(uint8_t device, int bar) const;

  PciRoot(const PciRootConfig& config, Bus* mmio_bus, Bus* pio_bus,
          std::array<std::shared_ptr<IrqLine>, kIntxLines> intx);

 private:
  // What the root registered for one BAR.
  struct Mapping {
    bool mapped = false;
    uint64_t address = 0;
    uint64_t size = 0;
    BarType type = BarType::kMemory32;
    // The last placement the bus refused, so a guest that keeps writing
    // other registers does not retry (and log) it on every access.
    std::optional<uint64_t> refused_address;
  };
  struct SlotState {
    bool reserved = false;
    std::shared_ptr<PciDevice> device;
    std::array<Mapping, kNumBars> bars;
  };
  // A bump allocator over one window.
  struct Allocator {
    PciWindow window;
    uint64_t next = 0;  // offset into the window
    std::optional<uint64_t> Allocate(uint64_t size);
  };

  std::shared_ptr<PciDevice> DeviceAt(uint8_t bus, uint8_t device, uint8_t function) const;
  // Brings slot `device`'s registrations in line with what it decodes now.
  // Caller holds mutex_. Returns the first refusal (logged; at debug level
  // when `retrying`). Sets *released when a registration went away.
  absl::Status SyncMappingsLocked(uint8_t device, bool retrying = false,
                                  bool* released = nullptr);
  // Tries again every BAR refused for overlapping another, now that a
  // registration went away. Caller holds mutex_.
  void RetryRefusedLocked();
  absl::Status AssignBarsLocked(uint8_t device, PciDevice& dev);

  const PciRootConfig config_;
  Bus* const mmio_bus_;
  Bus* const pio_bus_;
  IntxRouter intx_;

  // Guards slots, allocators and every bus (un)registration the root makes;
  // never held across a device's config access.
  mutable std::mutex mutex_;
  std::array<SlotState, kDevicesPerBus> slots_;
  Allocator mmio32_alloc_;
  std::optional<Allocator> mmio64_alloc_;
  std::optional<Allocator> io_alloc_;
};

}  // namespace skiff::pci

// The type-0 configuration header of one PCI function, with the rules real
// hardware enforces: read-only IDs, only meaningful command bits writable,
// BARs that answer the sizing protocol (write all-ones, read back the size
// mask) and keep their type bits, and a capability list.
//
// Plain data with no lock: the owning device serialises access. Devices
// intercept the registers that have side effects (an MSI-X enable bit, a
// virtio PCI_CFG window) around Read/Write.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "devices/pci/pci_constants.h"
#include "devices/pci/pci_device.h"

namespace skiff::pci {

struct PciIds {
  uint16_t vendor_id = 0;
  uint16_t device_id = 0;
  uint8_t revision_id = 0;
  uint32_t class_code = 0;  // base class << 16 | subclass << 8 | prog-if
  uint16_t subsystem_vendor_id = 0;
  uint16_t subsystem_id = 0;
  uint8_t interrupt_pin = kInterruptPinNone;  // kInterruptPinA..D or none
};

struct BarSpec {
  BarType type = BarType::kMemory32;
  // A power of two: memory 16 bytes to 2 GiB (32-bit) or 2^63 (64-bit),
  // I/O 4 to 256 bytes.
  uint64_t size = 0;
  bool prefetchable = false;  // memory BARs only
};

class PciConfigSpace {
 public:
  explicit PciConfigSpace(const PciIds& ids);

  // Declares BAR `index`; a 64-bit BAR also takes index + 1. The address
  // starts at zero (unassigned).
  absl::Status AddBar(int index, const BarSpec& spec);

  // Appends a capability to the list in the first 256 bytes: `body` is
  // everything after the ID and next-pointer bytes; `writable` (empty, or
  // one mask byte per body byte) says which bits the guest may change.
  // Returns the capability's offset (dword-aligned).
  absl::StatusOr<uint32_t> AddCapability(uint8_t id, std::span<const uint8_t> body,
                                         std::span<const uint8_t> writable = {});

  // Guest accesses. Anything but 1, 2 or 4 bytes within one dword below
  // kConfigSpaceSize reads as all-ones and is ignored on write.
  uint32_t Read(uint32_t offset, uint32_t size) const;
  void Write(uint32_t offset, uint32_t size, uint32_t value);

  // Device-side update of registers the guest cannot write (status bits,
  // capability fields). Same bounds as Read; BAR registers are refused.
  void SetRaw(uint32_t offset, uint32_t size, uint32_t value);

  std::optional<BarInfo> GetBar(int index) const;
  uint16_t command() const;

  // True when [offset, offset+size) and [begin, end) share a byte.
  static bool Overlaps(uint32_t offset, uint32_t size, uint32_t begin, uint32_t end) {
    return offset < end && begin < offset + size;
  }
  // A size/offset pair a config access may have.
  static bool ValidAccess(uint32_t offset, uint32_t size) {
    return offset < kConfigSpaceSize && (size == 1 || size == 2 || size == 4) &&
           (offset & 3) + size <= 4;
  }

 private:
  // How each of the six BAR dwords behaves.
  enum class BarSlot : uint8_t { kUnused, kLow, kHigh };
  struct BarRegister {
    BarSlot slot = BarSlot::kUnused;
    uint32_t address_mask = 0;  // writable address bits
    uint32_t flags = 0;         // read-only type bits
    bool sizing = false;        // last write was all-ones
  };

  void Put(uint32_t offset, uint32_t size, uint32_t value);
  uint32_t Get(uint32_t offset, uint32_t size) const;
  void WriteBarDword(int dword, uint32_t value);

  std::array<uint8_t, kConfigSpaceSize> bytes_{};
  std::array<uint8_t, kConfigSpaceSize> writable_{};
  std::array<BarRegister, kNumBars> bars_{};
  std::array<BarSpec, kNumBars> bar_specs_{};
  uint32_t last_capability_ = 0;  // 0: none yet
  uint32_t next_capability_ = kHeaderEnd;
};

}  // namespace skiff::pci

// A PCI function as the root complex sees it: configuration space, the BARs
// it decodes, and handlers for accesses that land in a mapped BAR.
//
// Devices know nothing about where configuration accesses come from (ports
// 0xCF8/0xCFC or ECAM) nor about the buses their BARs are registered on: the
// root (PciRoot) validates every access, maps each BAR on the right bus while
// decoding is enabled, and tells the device when a BAR moves.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace skiff::pci {

enum class BarType : uint8_t { kIo, kMemory32, kMemory64 };

// One BAR as currently programmed.
struct BarInfo {
  BarType type = BarType::kMemory32;
  uint64_t size = 0;     // a power of two
  uint64_t address = 0;  // what the BAR register(s) decode to
  bool prefetchable = false;
  // The guest wrote all-ones to (a half of) the BAR to learn its size and
  // has not written an address back yet: the mapping stays where it was.
  bool sizing = false;
};

class PciDevice {
 public:
  virtual ~PciDevice() = default;

  // For logs: "virtio-blk (disk.img)".
  virtual std::string name() const = 0;

  // Configuration space. The root guarantees offset < kConfigSpaceSize,
  // size 1, 2 or 4 and that the access stays within one dword. Values are
  // little-endian, in the low `size` bytes.
  virtual uint32_t ReadConfig(uint32_t offset, uint32_t size) = 0;
  virtual void WriteConfig(uint32_t offset, uint32_t size, uint32_t value) = 0;

  // BAR `index` (0-5) as the device decodes it now; nullopt when it
  // implements no BAR there (including the upper half of a 64-bit BAR).
  virtual std::optional<BarInfo> GetBar(int index) const = 0;

  // An access inside mapped BAR `index`: offset + data.size() <= size,
  // 1-8 bytes. Any thread (vCPUs); devices lock for themselves.
  virtual void ReadBar(int index, uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void WriteBar(int index, uint64_t offset, std::span<const uint8_t> data) = 0;

  // The root mapped BAR `index` at `address`, or unmapped it (nullopt):
  // decoding was turned off or the BAR moved. Devices with KVM ioeventfds
  // inside the BAR move them here.
  virtual void BarMapped(int /*index*/, std::optional<uint64_t> /*address*/) {}
};

}  // namespace skiff::pci

// PCI configuration mechanism #1: ports 0xCF8-0xCFB hold CONFIG_ADDRESS
// (dword accesses only; bit 31 enables, then bus, device, function and the
// dword-aligned register), 0xCFC-0xCFF are the data window, reachable with
// byte, word or dword accesses that stay inside it. Register this device on
// the port bus at kPciConfigIoBase with kPciConfigIoSize ports.
//
// Bits 27:24 of CONFIG_ADDRESS carry register bits 11:8, the AMD extension
// Linux uses for extended config space when ECAM is missing.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

#include "devices/pci/pci_root.h"
#include "vmm/bus.h"

namespace skiff::pci {

inline constexpr uint16_t kPciConfigIoBase = 0xcf8;
inline constexpr uint16_t kPciConfigIoSize = 8;

class PciConfigIo : public BusDevice {
 public:
  static constexpr uint32_t kEnable = 0x80000000;
  // Writable CONFIG_ADDRESS bits: enable, extended register, bus, device,
  // function, register (dword aligned).
  static constexpr uint32_t kAddressMask = 0x8ffffffc;

  explicit PciConfigIo(std::shared_ptr<PciRoot> root) : root_(std::move(root)) {}

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  const std::shared_ptr<PciRoot> root_;
  // One latch shared by all vCPUs, as on real chipsets; guests serialise
  // the address/data pair themselves.
  std::atomic<uint32_t> address_{0};
};

}  // namespace skiff::pci

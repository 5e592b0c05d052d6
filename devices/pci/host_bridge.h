// The host bridge function at 00.0: no BARs, no interrupts, just a type-0
// header with class "host bridge". Linux's x86 type-1 (port 0xCF8) probe
// trusts the mechanism only when bus 0 holds a host bridge (or the DMI BIOS
// date is 2001 or later, and Skiff has no DMI tables), so the root puts one
// here as real chipsets do.
#pragma once

#include <mutex>
#include <string>

#include "devices/pci/pci_config_space.h"
#include "devices/pci/pci_device.h"

namespace skiff::pci {

// Red Hat's ID for a generic virtual PCIe host bridge (as QEMU's "gpex"
// uses); no Linux quirk matches it, which is the point.
inline constexpr uint16_t kHostBridgeVendorId = 0x1b36;
inline constexpr uint16_t kHostBridgeDeviceId = 0x0008;
inline constexpr uint32_t kClassHostBridge = 0x060000;

class HostBridge : public PciDevice {
 public:
  HostBridge();

  std::string name() const override { return "pci host bridge"; }
  uint32_t ReadConfig(uint32_t offset, uint32_t size) override;
  void WriteConfig(uint32_t offset, uint32_t size, uint32_t value) override;
  std::optional<BarInfo> GetBar(int) const override { return std::nullopt; }
  void ReadBar(int, uint64_t, std::span<uint8_t> data) override;
  void WriteBar(int, uint64_t, std::span<const uint8_t>) override {}

 private:
  std::mutex mutex_;
  PciConfigSpace config_;
};

}  // namespace skiff::pci

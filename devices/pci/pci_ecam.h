// PCI Express enhanced configuration access (ECAM, "MMCONFIG"): a memory
// window where offset bus << 20 | device << 15 | function << 12 | register
// reaches one function's 4 KiB configuration space. Register on the MMIO
// bus at the MCFG base with 1 MiB per bus described there. Accesses must be
// 1, 2 or 4 bytes within a dword; anything else reads all-ones and is
// ignored on write.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "devices/pci/pci_root.h"
#include "vmm/bus.h"

namespace skiff::pci {

inline constexpr uint64_t kEcamBytesPerBus = uint64_t{1} << 20;

class PciEcam : public BusDevice {
 public:
  explicit PciEcam(std::shared_ptr<PciRoot> root) : root_(std::move(root)) {}

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  const std::shared_ptr<PciRoot> root_;
};

}  // namespace skiff::pci

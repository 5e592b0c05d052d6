#include "vmm/pci_root_config.h"

namespace skiff {

pci::PciRootConfig PciRootConfigFor(const arch::PciLayout& layout) {
  pci::PciRootConfig config;
  config.mmio32 = {layout.mmio32_base, layout.mmio32_size};
  if (layout.mmio64_size > 0) {
    config.mmio64 = pci::PciWindow{layout.mmio64_base, layout.mmio64_size};
  }
  if (layout.io_size > 0) config.io = pci::PciWindow{layout.io_base, layout.io_size};
  return config;
}

}  // namespace skiff

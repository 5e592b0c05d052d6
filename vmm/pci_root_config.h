// The PCI root's configuration for the platform's PCI layout: which
// windows it assigns BARs from. One function so the machine and the tests
// that check BAR placement against the guest's description use the same.
#pragma once

#include "arch/arch.h"
#include "devices/pci/pci_root.h"

namespace skiff {

// The 32-bit window always; the 64-bit and I/O windows where the layout
// has them (size > 0).
pci::PciRootConfig PciRootConfigFor(const arch::PciLayout& layout);

}  // namespace skiff

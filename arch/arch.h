// The architecture interface. Meson compiles exactly one of arch/x86_64/
// and arch/arm64/; both define these functions with the same names, so
// generic code calls them without virtual dispatch or #ifdefs.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "vmm/guest_ram.h"
#include "vmm/kvm.h"

namespace skiff {
class Machine;
class Vcpu;
class Vm;
struct VmConfig;
}  // namespace skiff

namespace skiff::arch {

// Where the boot vCPU starts and what it is handed.
struct BootState {
  uint64_t entry = 0;       // guest-physical entry point
  uint64_t boot_data = 0;   // x86: boot_params; arm64: the DTB
};

// Capabilities beyond the generic ones that this architecture relies on.
std::span<const KvmCapability> RequiredCapabilities();

// Guest RAM regions (KVM memory slots) for `ram_size` bytes; fails with a
// clear message for sizes the memory map cannot hold.
absl::StatusOr<std::vector<RamRegion>> RamLayout(uint64_t ram_size);

// VM-wide set-up that must precede vCPU creation (interrupt controller...).
absl::Status SetupVm(const Kvm& kvm, Vm& vm);

// Creates the platform's devices, describes the platform to the guest and
// loads kernel, initramfs and command line into guest memory.
absl::StatusOr<BootState> SetupPlatform(Machine& machine, const VmConfig& config);

// Per-vCPU registers and CPU model; the boot vCPU (index 0) gets the entry.
absl::Status SetupVcpu(const Kvm& kvm, const Vcpu& vcpu, uint32_t num_cpus,
                       const BootState& boot, const GuestMemory& memory);

// VM-wide set-up that needs every vCPU to exist, before any device is
// wired to an interrupt (arm64: KVM_ARM_VCPU_INIT of each vCPU, then
// KVM_DEV_ARM_VGIC_CTRL_INIT of the vGIC and ITS - KVM refuses irqfds
// until the vGIC is initialised). A no-op on x86.
absl::Status FinishVm(Vm& vm, std::span<Vcpu* const> vcpus);

// The `irq` field of KVM_IRQ_LINE for `gsi` (x86: the GSI itself; arm64:
// an SPI, encoded with its type and GIC interrupt ID).
uint32_t IrqLineNumber(uint32_t gsi);

// The GSI routes the in-kernel irqchip starts with, which every
// KVM_SET_GSI_ROUTING must repeat, and the GSIs left for MSI routes.
struct IrqRoutingBase {
  std::vector<kvm_irq_routing_entry> routes;
  uint32_t first_msi_gsi = 0;
};
IrqRoutingBase DefaultIrqRouting();

// Where the `index`-th virtio-mmio device sits and which level-triggered
// GSI it raises; an error once the memory map has no room for more.
struct MmioSlot {
  uint64_t base = 0;
  uint64_t size = 0;
  uint32_t gsi = 0;
  // Also announce it with virtio_mmio.device= on the kernel command line
  // (x86, for kernels without ACPI; arm64 has the device tree, and there
  // the number would be read as a Linux IRQ, not a GIC SPI).
  bool on_cmdline = false;
};
absl::StatusOr<MmioSlot> VirtioMmioSlot(uint32_t index);

// Where the PCI root complex lives in this machine's memory map.
struct PciLayout {
  uint64_t ecam_base = 0;
  uint64_t ecam_size = 0;
  uint64_t mmio32_base = 0;  // window for BARs, below 4 GiB
  uint64_t mmio32_size = 0;
  // Window for 64-bit BARs, above 4 GiB; size 0 where there is none (then
  // 64-bit BARs share the 32-bit window).
  uint64_t mmio64_base = 0;
  uint64_t mmio64_size = 0;
  uint32_t intx_gsi_base = 0;  // INTA-INTD of the root: four GSIs from here
  // x86's 0xCF8/0xCFC mechanism besides ECAM; size 0 where there is none.
  uint16_t config_port = 0;
  uint16_t config_port_size = 0;
  // Port window for I/O BARs (x86; passed-through devices have them); size
  // 0 where there is none.
  uint32_t io_base = 0;
  uint32_t io_size = 0;
};
PciLayout PlatformPciLayout();

// `skiff --help` lines: one-line examples of how guest userspace picks
// Skiff's exit code on this architecture (exit device, isa-debug-exit).
std::string GuestExitExamples();

// Asks the guest for an orderly poweroff, as a power button would (the
// control socket's `shutdown`), and names the button for the answer. x86
// ("acpi power button"): an ACPI Generic Event Device interrupt whose _EVT
// notifies the power button device (PNP0C0C), Linux's `button` driver
// turning it into KEY_POWER for userspace. arm64 ("gpio power key"): a
// press of line 3 of the PL061 GPIO controller, which the device tree
// describes as a gpio-keys KEY_POWER.
absl::StatusOr<std::string> PressPowerButton(Machine& machine);

// Register state and instruction bytes, for crash reports.
std::string DescribeVcpu(const Vcpu& vcpu, const GuestMemory& memory);

}  // namespace skiff::arch

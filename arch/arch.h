// The architecture interface. Meson compiles exactly one of arch/x86_64/
// and arch/arm64/; both define these functions with the same names, so
// generic code calls them without virtual dispatch or #ifdefs.
#pragma once

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

// Register state and instruction bytes, for crash reports.
std::string DescribeVcpu(const Vcpu& vcpu, const GuestMemory& memory);

}  // namespace skiff::arch

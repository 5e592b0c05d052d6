// arm64 vCPU set-up through KVM_ARM_VCPU_INIT and KVM_SET_ONE_REG.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace skiff::arm64 {

// KVM_ARM_PREFERRED_TARGET: the CPU model KVM recommends on this host.
absl::StatusOr<uint32_t> PreferredTarget(int vm_fd);

// KVM_ARM_VCPU_INIT with in-kernel PSCI 0.2+; every vCPU but the first
// starts powered off and waits for the guest's PSCI CPU_ON. Checks that KVM
// gave the vCPU the MPIDR the device tree names.
absl::Status InitVcpu(int vcpu_fd, uint32_t index, uint32_t target);

// The boot protocol's entry state: PC = kernel, X0 = DTB, X1-X3 = 0,
// EL1h with D, A, I and F masked.
absl::Status SetBootRegs(int vcpu_fd, uint64_t entry, uint64_t dtb);

// PC, PSTATE, SP_EL1, X0, ESR_EL1, FAR_EL1: for crash reports.
std::string DescribeRegs(int vcpu_fd);

}  // namespace skiff::arm64

// The CPU model each vCPU sees: what the host's KVM supports, with a
// coherent topology (N cores in one socket, one thread each) and the vCPU's
// own APIC ID filled in wherever CPUID reports it.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace skiff::x86 {

void NormalizeCpuid(std::vector<kvm_cpuid_entry2>& entries, uint32_t vcpu_index,
                    uint32_t num_cpus);

}  // namespace skiff::x86

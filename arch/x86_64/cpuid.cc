#include "arch/x86_64/cpuid.h"

#include <bit>

namespace skiff::x86 {
namespace {

constexpr uint32_t kLeafFeatures = 0x1;
constexpr uint32_t kLeafCacheParams = 0x4;
constexpr uint32_t kLeafTopology = 0xb;
constexpr uint32_t kLeafTopologyV2 = 0x1f;
constexpr uint32_t kLeafAmdSizes = 0x80000008;
constexpr uint32_t kLeafAmdTopology = 0x8000001e;

constexpr uint32_t kEcxHypervisor = 1u << 31;
constexpr uint32_t kEdxHtt = 1u << 28;

// Bits of APIC ID needed to number `count` items.
uint32_t IdBits(uint32_t count) {
  return count <= 1 ? 0 : std::bit_width(count - 1);
}

void SetTopologyLevel(kvm_cpuid_entry2& e, uint32_t apic_id, uint32_t num_cpus) {
  // Level 0: SMT (1 thread per core); level 1: core (num_cpus per package).
  switch (e.index) {
    case 0:
      e.eax = 0;
      e.ebx = 1;
      e.ecx = (1u << 8) | e.index;
      break;
    case 1:
      e.eax = IdBits(num_cpus);
      e.ebx = num_cpus;
      e.ecx = (2u << 8) | e.index;
      break;
    default:
      e.eax = e.ebx = 0;
      e.ecx = e.index;  // level type 0: invalid, ends enumeration
  }
  e.edx = apic_id;
}

}  // namespace

void NormalizeCpuid(std::vector<kvm_cpuid_entry2>& entries, uint32_t vcpu_index,
                    uint32_t num_cpus) {
  const uint32_t apic_id = vcpu_index;
  for (kvm_cpuid_entry2& e : entries) {
    switch (e.function) {
      case kLeafFeatures:
        e.ebx = (e.ebx & 0x0000ffffu) | (apic_id << 24) |
                ((num_cpus > 1 ? num_cpus : 1) << 16);
        e.ecx |= kEcxHypervisor;
        if (num_cpus > 1) {
          e.edx |= kEdxHtt;
        } else {
          e.edx &= ~kEdxHtt;
        }
        break;
      case kLeafCacheParams:
        // EAX[31:26]: cores per package - 1; EAX[25:14]: threads sharing
        // this cache - 1 (one thread per core).
        if ((e.eax & 0x1f) != 0) {
          e.eax = (e.eax & 0x3fffu) | ((num_cpus - 1) << 26);
        }
        break;
      case kLeafTopology:
      case kLeafTopologyV2:
        SetTopologyLevel(e, apic_id, num_cpus);
        break;
      case kLeafAmdSizes:
        // ECX[15:12]: APIC ID bits for cores; ECX[7:0]: cores - 1.
        e.ecx = (e.ecx & ~0xf0ffu) | (IdBits(num_cpus) << 12) | (num_cpus - 1);
        break;
      case kLeafAmdTopology:
        e.eax = apic_id;
        e.ebx = apic_id & 0xff;  // one thread per compute unit
        e.ecx = 0;               // node 0, one node per package
        break;
      default:
        break;
    }
  }
}

}  // namespace skiff::x86

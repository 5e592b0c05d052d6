// KVM ioctls whose argument ends in a flexible array, redeclared for C++.
//
// Linux 6.1's UAPI headers declare those arrays with __DECLARE_FLEX_ARRAY,
// which in C++ wraps them in a struct holding an empty struct: sizeof()
// grows from 8 to 12 and the array moves from offset 8 to 12. Both the
// ioctl numbers (which encode sizeof) and the layout are then wrong, and the
// kernel answers EINVAL. So Skiff spells these headers out itself and
// builds each ioctl number from the C layout.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>

namespace skiff::kvm_flex {

// struct kvm_cpuid2 without its entries (x86).
struct Cpuid2Header {
  uint32_t nent;
  uint32_t padding;
};
static_assert(sizeof(Cpuid2Header) == 8);

// struct kvm_irq_routing without its entries.
struct IrqRoutingHeader {
  uint32_t nr;
  uint32_t flags;
};
static_assert(sizeof(IrqRoutingHeader) == 8);

// struct kvm_msrs without its entries (x86).
struct MsrsHeader {
  uint32_t nmsrs;
  uint32_t pad;
};
static_assert(sizeof(MsrsHeader) == 8);

#if defined(__x86_64__)
inline constexpr unsigned long kGetSupportedCpuid =
    _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, sizeof(Cpuid2Header));
inline constexpr unsigned long kSetCpuid2 =
    _IOC(_IOC_WRITE, KVMIO, 0x90, sizeof(Cpuid2Header));
inline constexpr unsigned long kGetMsrs =
    _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x88, sizeof(MsrsHeader));
inline constexpr unsigned long kSetMsrs =
    _IOC(_IOC_WRITE, KVMIO, 0x89, sizeof(MsrsHeader));
#endif
inline constexpr unsigned long kSetGsiRouting =
    _IOC(_IOC_WRITE, KVMIO, 0x6a, sizeof(IrqRoutingHeader));

}  // namespace skiff::kvm_flex

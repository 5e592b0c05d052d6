#include "arch/x86_64/boot_cpu.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "arch/x86_64/layout.h"
#include "vmm/status_macros.h"

namespace skiff::x86 {
namespace {

constexpr uint64_t kPagePresent = 1ull << 0;
constexpr uint64_t kPageWritable = 1ull << 1;
constexpr uint64_t kPageSize2M = 1ull << 7;

constexpr uint64_t kCr0Pe = 1ull << 0;
constexpr uint64_t kCr0Et = 1ull << 4;
constexpr uint64_t kCr0Ne = 1ull << 5;
constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kEferLme = 1ull << 8;
constexpr uint64_t kEferLma = 1ull << 10;

// Selectors the boot protocol names: __BOOT_CS = 0x10, __BOOT_DS = 0x18.
constexpr uint16_t kCodeSelector = 0x10;
constexpr uint16_t kDataSelector = 0x18;
constexpr uint16_t kTssSelector = 0x20;

struct SegmentSpec {
  uint8_t type;
  uint8_t s;     // 1 = code/data, 0 = system
  uint8_t l;     // 64-bit code
  uint8_t db;
};

constexpr SegmentSpec kCode64{0xb, 1, 1, 0};   // execute/read, accessed
constexpr SegmentSpec kData{0x3, 1, 0, 1};      // read/write, accessed
constexpr SegmentSpec kTss{0xb, 0, 0, 0};       // busy 64-bit TSS

uint64_t Descriptor(const SegmentSpec& spec) {
  // Flat: base 0, limit 0xfffff with 4 KiB granularity, present, DPL 0.
  const uint64_t limit = 0xfffff;
  uint64_t d = limit & 0xffff;
  d |= static_cast<uint64_t>(spec.type) << 40;
  d |= static_cast<uint64_t>(spec.s) << 44;
  d |= 1ull << 47;  // present
  d |= ((limit >> 16) & 0xf) << 48;
  d |= static_cast<uint64_t>(spec.l) << 53;
  d |= static_cast<uint64_t>(spec.db) << 54;
  d |= 1ull << 55;  // granularity
  return d;
}

kvm_segment Segment(const SegmentSpec& spec, uint16_t selector) {
  kvm_segment seg{};
  seg.base = 0;
  seg.limit = 0xffffffff;
  seg.selector = selector;
  seg.type = spec.type;
  seg.present = 1;
  seg.dpl = 0;
  seg.db = spec.db;
  seg.s = spec.s;
  seg.l = spec.l;
  seg.g = 1;
  return seg;
}

absl::Status Ioctl(int fd, unsigned long request, void* arg, const char* name) {
  if (::ioctl(fd, request, arg) < 0) {
    return absl::InternalError(absl::StrFormat("%s: %s", name, std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

uint64_t BootGdtEntry(int index) {
  switch (index) {
    case 2: return Descriptor(kCode64);
    case 3: return Descriptor(kData);
    case 4: return Descriptor(kTss);
    default: return 0;
  }
}

absl::Status WriteBootTables(const GuestMemory& memory) {
  RETURN_IF_ERROR(memory.WriteObj<uint64_t>(
      kPml4Address, kPdptAddress | kPagePresent | kPageWritable));
  for (uint64_t pd = 0; pd < 4; ++pd) {
    const uint64_t pd_address = kPdAddress + pd * 0x1000;
    RETURN_IF_ERROR(memory.WriteObj<uint64_t>(
        kPdptAddress + pd * 8, pd_address | kPagePresent | kPageWritable));
    for (uint64_t i = 0; i < 512; ++i) {
      const uint64_t phys = (pd << 30) | (i << 21);
      RETURN_IF_ERROR(memory.WriteObj<uint64_t>(
          pd_address + i * 8, phys | kPagePresent | kPageWritable | kPageSize2M));
    }
  }
  for (int i = 0; i < 5; ++i) {
    RETURN_IF_ERROR(memory.WriteObj<uint64_t>(kGdtAddress + i * 8, BootGdtEntry(i)));
  }
  return memory.WriteObj<uint64_t>(kIdtAddress, 0);
}

absl::Status SetLongModeSregs(int vcpu_fd) {
  kvm_sregs sregs{};
  RETURN_IF_ERROR(Ioctl(vcpu_fd, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS"));
  sregs.gdt.base = kGdtAddress;
  sregs.gdt.limit = 5 * 8 - 1;
  sregs.idt.base = kIdtAddress;
  sregs.idt.limit = 0;
  sregs.cs = Segment(kCode64, kCodeSelector);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss =
      Segment(kData, kDataSelector);
  sregs.tr = Segment(kTss, kTssSelector);
  sregs.tr.g = 0;
  sregs.tr.limit = 0x67;
  sregs.cr0 = kCr0Pe | kCr0Et | kCr0Ne | kCr0Pg;
  sregs.cr3 = kPml4Address;
  sregs.cr4 = kCr4Pae;
  sregs.efer = kEferLme | kEferLma;
  return Ioctl(vcpu_fd, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
}

absl::Status SetBootRegs(int vcpu_fd, uint64_t entry, uint64_t boot_params) {
  kvm_regs regs{};
  regs.rflags = 0x2;  // bit 1 is reserved-one; interrupts off
  regs.rip = entry;
  regs.rsi = boot_params;
  return Ioctl(vcpu_fd, KVM_SET_REGS, &regs, "KVM_SET_REGS");
}

absl::Status SetBootFpu(int vcpu_fd) {
  kvm_fpu fpu{};
  fpu.fcw = 0x37f;
  fpu.mxcsr = 0x1f80;
  return Ioctl(vcpu_fd, KVM_SET_FPU, &fpu, "KVM_SET_FPU");
}

absl::Status SetLocalInterrupts(int vcpu_fd) {
  constexpr size_t kLvtLint0 = 0x350;
  constexpr size_t kLvtLint1 = 0x360;
  constexpr uint32_t kDeliveryModeMask = 0x700;
  constexpr uint32_t kDeliveryExtInt = 0x700;
  constexpr uint32_t kDeliveryNmi = 0x400;
  kvm_lapic_state lapic{};
  RETURN_IF_ERROR(Ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC"));
  auto update = [&](size_t offset, uint32_t mode) {
    uint32_t value;
    std::memcpy(&value, &lapic.regs[offset], sizeof(value));
    value = (value & ~kDeliveryModeMask) | mode;
    std::memcpy(&lapic.regs[offset], &value, sizeof(value));
  };
  update(kLvtLint0, kDeliveryExtInt);
  update(kLvtLint1, kDeliveryNmi);
  return Ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC");
}

}  // namespace skiff::x86

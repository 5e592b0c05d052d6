#include "arch/arm64/vcpu_regs.h"

#include <asm/ptrace.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "absl/strings/str_format.h"
#include "arch/arm64/layout.h"
#include "vmm/status_macros.h"

namespace skiff::arm64 {
namespace {

constexpr uint64_t CoreReg(size_t offset) {
  return KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (offset / sizeof(uint32_t));
}
constexpr uint64_t XReg(int n) {
  return CoreReg(offsetof(kvm_regs, regs.regs) + n * sizeof(uint64_t));
}
constexpr uint64_t kPc = CoreReg(offsetof(kvm_regs, regs.pc));
constexpr uint64_t kPstate = CoreReg(offsetof(kvm_regs, regs.pstate));
constexpr uint64_t kSpEl1 = CoreReg(offsetof(kvm_regs, sp_el1));
constexpr uint64_t kMpidrEl1 = ARM64_SYS_REG(3, 0, 0, 0, 5);
constexpr uint64_t kEsrEl1 = ARM64_SYS_REG(3, 0, 5, 2, 0);
constexpr uint64_t kFarEl1 = ARM64_SYS_REG(3, 0, 6, 0, 0);
// Aff3 (bits 39:32) and Aff2-Aff0 (23:0); bit 31 is RES1, U and MT vary.
constexpr uint64_t kMpidrAffinityMask = 0xff00ffffffull;

absl::Status SetReg(int fd, uint64_t id, uint64_t value, const char* name) {
  kvm_one_reg reg{};
  reg.id = id;
  reg.addr = reinterpret_cast<uint64_t>(&value);
  if (::ioctl(fd, KVM_SET_ONE_REG, &reg) < 0) {
    return absl::InternalError(
        absl::StrFormat("KVM_SET_ONE_REG %s: %s", name, std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> GetReg(int fd, uint64_t id, const char* name) {
  uint64_t value = 0;
  kvm_one_reg reg{};
  reg.id = id;
  reg.addr = reinterpret_cast<uint64_t>(&value);
  if (::ioctl(fd, KVM_GET_ONE_REG, &reg) < 0) {
    return absl::InternalError(
        absl::StrFormat("KVM_GET_ONE_REG %s: %s", name, std::strerror(errno)));
  }
  return value;
}

}  // namespace

absl::StatusOr<uint32_t> PreferredTarget(int vm_fd) {
  kvm_vcpu_init init{};
  if (::ioctl(vm_fd, KVM_ARM_PREFERRED_TARGET, &init) < 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "KVM_ARM_PREFERRED_TARGET: %s (this host's KVM recommends no CPU model)",
        std::strerror(errno)));
  }
  return init.target;
}

absl::Status InitVcpu(int vcpu_fd, uint32_t index, uint32_t target) {
  kvm_vcpu_init init{};
  init.target = target;
  init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
  if (index != 0) init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;
  if (::ioctl(vcpu_fd, KVM_ARM_VCPU_INIT, &init) < 0) {
    return absl::InternalError(
        absl::StrFormat("KVM_ARM_VCPU_INIT (vCPU %u, target %u, PSCI 0.2): %s", index, target,
                        std::strerror(errno)));
  }
  ASSIGN_OR_RETURN(uint64_t mpidr, GetReg(vcpu_fd, kMpidrEl1, "MPIDR_EL1"));
  if ((mpidr & kMpidrAffinityMask) != VcpuMpidr(index)) {
    return absl::InternalError(absl::StrFormat(
        "KVM gave vCPU %u MPIDR 0x%x, but the device tree names it 0x%x", index, mpidr,
        VcpuMpidr(index)));
  }
  return absl::OkStatus();
}

absl::Status SetBootRegs(int vcpu_fd, uint64_t entry, uint64_t dtb) {
  constexpr uint64_t kBootPstate = PSR_MODE_EL1h | PSR_D_BIT | PSR_A_BIT | PSR_I_BIT | PSR_F_BIT;
  RETURN_IF_ERROR(SetReg(vcpu_fd, kPstate, kBootPstate, "PSTATE"));
  RETURN_IF_ERROR(SetReg(vcpu_fd, XReg(0), dtb, "X0"));
  for (int n = 1; n <= 3; ++n) RETURN_IF_ERROR(SetReg(vcpu_fd, XReg(n), 0, "X1-X3"));
  return SetReg(vcpu_fd, kPc, entry, "PC");
}

std::string DescribeRegs(int vcpu_fd) {
  struct Named {
    const char* name;
    uint64_t id;
  };
  static constexpr Named kRegs[] = {{"PC", kPc},         {"PSTATE", kPstate},
                                    {"SP_EL1", kSpEl1},  {"X0", XReg(0)},
                                    {"ESR_EL1", kEsrEl1}, {"FAR_EL1", kFarEl1}};
  std::string text;
  for (const Named& r : kRegs) {
    absl::StatusOr<uint64_t> value = GetReg(vcpu_fd, r.id, r.name);
    if (!text.empty()) text += ' ';
    text += value.ok() ? absl::StrFormat("%s=0x%x", r.name, *value)
                       : absl::StrFormat("%s=?", r.name);
  }
  return text;
}

}  // namespace skiff::arm64

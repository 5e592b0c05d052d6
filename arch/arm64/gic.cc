#include "arch/arm64/gic.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "arch/arm64/layout.h"
#include "vmm/log.h"
#include "vmm/status_macros.h"
#include "vmm/vm.h"

namespace skiff::arm64 {
namespace {

absl::Status SetAttr(int fd, uint32_t group, uint64_t attr, const void* value, const char* what) {
  kvm_device_attr a{};
  a.group = group;
  a.attr = attr;
  a.addr = reinterpret_cast<uint64_t>(value);
  if (::ioctl(fd, KVM_SET_DEVICE_ATTR, &a) < 0) {
    return absl::InternalError(
        absl::StrFormat("KVM_SET_DEVICE_ATTR (%s): %s", what, std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status SetAddress(int fd, uint64_t type, uint64_t address, const char* what) {
  return SetAttr(fd, KVM_DEV_ARM_VGIC_GRP_ADDR, type, &address, what);
}

absl::Status SetNumIrqs(int fd) {
  const uint32_t irqs = kGicNumIrqs;
  return SetAttr(fd, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &irqs, "number of interrupts");
}

absl::Status CtrlInit(int fd, const char* what) {
  return SetAttr(fd, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, nullptr, what);
}

absl::Status SetupV3(Vm& vm, int gic) {
  RETURN_IF_ERROR(SetAddress(gic, KVM_VGIC_V3_ADDR_TYPE_DIST, kGicDistBase, "GICv3 distributor"));
  RETURN_IF_ERROR(
      SetAddress(gic, KVM_VGIC_V3_ADDR_TYPE_REDIST, kGicRedistBase, "GICv3 redistributors"));
  RETURN_IF_ERROR(SetNumIrqs(gic));
  absl::StatusOr<int> its = vm.CreateDevice(KVM_DEV_TYPE_ARM_VGIC_ITS, "KVM_DEV_TYPE_ARM_VGIC_ITS");
  if (!its.ok()) {
    LOG_WARN("gic", "GICv3 without an ITS (%s): PCI devices get no MSIs and use INTx",
             its.status().message());
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(SetAddress(*its, KVM_VGIC_ITS_ADDR_TYPE, kGicItsBase, "GICv3 ITS"));
  LOG_INFO("gic", "GICv3 with an ITS");
  return absl::OkStatus();
}

absl::Status SetupV2(int gic) {
  RETURN_IF_ERROR(SetAddress(gic, KVM_VGIC_V2_ADDR_TYPE_DIST, kGicDistBase, "GICv2 distributor"));
  RETURN_IF_ERROR(
      SetAddress(gic, KVM_VGIC_V2_ADDR_TYPE_CPU, kGicCpuBase, "GICv2 CPU interface"));
  return SetNumIrqs(gic);
}

}  // namespace

absl::Status CreateGic(Vm& vm) {
  absl::StatusOr<int> v3 = vm.CreateDevice(KVM_DEV_TYPE_ARM_VGIC_V3, "KVM_DEV_TYPE_ARM_VGIC_V3");
  if (v3.ok()) return SetupV3(vm, *v3);
  absl::StatusOr<int> v2 = vm.CreateDevice(KVM_DEV_TYPE_ARM_VGIC_V2, "KVM_DEV_TYPE_ARM_VGIC_V2");
  if (!v2.ok()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "this host's KVM has no in-kernel GIC Skiff can use: %s; %s", v3.status().message(),
        v2.status().message()));
  }
  LOG_WARN("gic",
           "host has no GICv3 for guests (%s): using an emulated GICv2 (at most %u vCPUs; no "
           "MSIs, PCI devices use INTx)",
           v3.status().message(), kGicV2MaxVcpus);
  return SetupV2(*v2);
}

GicSetup DescribeGic(const Vm& vm) {
  GicSetup setup;
  if (vm.DeviceFd(KVM_DEV_TYPE_ARM_VGIC_V3) >= 0) {
    setup.kind = GicKind::kV3;
    setup.msi_controller = vm.DeviceFd(KVM_DEV_TYPE_ARM_VGIC_ITS) >= 0;
  } else {
    setup.kind = GicKind::kV2;
    setup.msi_controller = false;  // no GICv2m emulation (yet)
  }
  return setup;
}

uint32_t MaxVcpus(const Vm& vm) {
  return DescribeGic(vm).kind == GicKind::kV3 ? kMaxVcpus : kGicV2MaxVcpus;
}

absl::Status InitGic(Vm& vm, uint32_t num_cpus) {
  if (num_cpus > MaxVcpus(vm)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--cpus %u: this host's interrupt controller (GICv2) addresses at most %u vCPUs",
        num_cpus, MaxVcpus(vm)));
  }
  const int v3 = vm.DeviceFd(KVM_DEV_TYPE_ARM_VGIC_V3);
  const int gic = v3 >= 0 ? v3 : vm.DeviceFd(KVM_DEV_TYPE_ARM_VGIC_V2);
  if (gic < 0) return absl::InternalError("InitGic before CreateGic");
  RETURN_IF_ERROR(CtrlInit(gic, "GIC init"));
  const int its = vm.DeviceFd(KVM_DEV_TYPE_ARM_VGIC_ITS);
  if (its >= 0) RETURN_IF_ERROR(CtrlInit(its, "ITS init"));
  return absl::OkStatus();
}

}  // namespace skiff::arm64

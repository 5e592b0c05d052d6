// The arm64 implementation of arch/arch.h: the vGIC, PSCI vCPUs, the
// platform devices, the device tree and the arm64 Linux boot protocol.
#include <linux/kvm.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "arch/arch.h"
#include "arch/arm64/fsl_mc_wiring.h"
#include "arch/arm64/gic.h"
#include "arch/arm64/layout.h"
#include "arch/arm64/platform_devices.h"
#include "arch/arm64/platform_fdt.h"
#include "arch/arm64/vcpu_regs.h"
#include "boot/arm64_image.h"
#include "vmm/file_util.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/output_file.h"
#include "vmm/status_macros.h"
#include "vmm/vcpu.h"

namespace skiff::arch {
namespace {

constexpr KvmCapability kArm64Capabilities[] = {
    SKIFF_KVM_CAP(KVM_CAP_ARM_PSCI_0_2),
    SKIFF_KVM_CAP(KVM_CAP_DEVICE_CTRL),
    SKIFF_KVM_CAP(KVM_CAP_ONE_REG),
};

absl::Status WithPrefix(const std::string& prefix, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(prefix, ": ", status.message()));
}

// The kernel file as an uncompressed Image: Image.gz is inflated into
// `storage`, bounded by what guest RAM could hold.
absl::StatusOr<boot::Arm64Image> ReadKernel(const std::string& path, uint64_t ram_size,
                                            Mapping& file, std::vector<uint8_t>& storage) {
  ASSIGN_OR_RETURN(file, MapWholeFile(path, "kernel"));
  absl::StatusOr<boot::Arm64Image> image = boot::ReadArm64Kernel(
      std::span<const uint8_t>(file.data(), file.size()), boot::Arm64MaxInflatedSize(ram_size),
      storage);
  if (!image.ok()) return WithPrefix("kernel " + path, image.status());
  return image;
}

absl::StatusOr<std::vector<uint8_t>> DeviceTree(
    Machine& machine, const VmConfig& config, const std::string& bootargs,
    std::optional<arm64::InitrdRange> initrd,
    std::vector<vfio::fsl_mc::FslMcNodeParams> fsl_mc) {
  if (config.dtb_path) {
    if (!fsl_mc.empty()) {
      LOG_WARN("fdt", "--dtb: the operator's tree must describe the fsl-mc container itself "
               "(see --dtb-out of a run without --dtb)");
    }
    const std::string what = "--dtb " + *config.dtb_path;
    ASSIGN_OR_RETURN(Mapping file, MapWholeFile(*config.dtb_path, "--dtb"));
    std::span<const uint8_t> blob(file.data(), file.size());
    RETURN_IF_ERROR(arm64::ValidateFdt(blob, what));
    LOG_INFO("fdt", "booting the device tree from %s", *config.dtb_path);
    return arm64::PatchUserFdt(blob, bootargs, initrd);
  }
  arm64::PlatformDescription platform;
  platform.num_cpus = machine.num_cpus();
  platform.ram_size = machine.memory().TotalSize();
  arm64::GicSetup gic = arm64::DescribeGic(machine.vm());
  platform.gic = gic.kind;
  platform.msi_controller = gic.msi_controller;
  for (const MmioSlot& slot : machine.virtio_mmio_slots()) {
    platform.virtio_mmio.push_back({slot.base, slot.size, slot.gsi});
  }
  platform.pci = machine.pci_root() != nullptr;
  platform.fsl_mc = std::move(fsl_mc);
  platform.bootargs = bootargs;
  platform.initrd = initrd;
  return arm64::BuildPlatformFdt(platform);
}

absl::Status WriteDtbOut(const std::string& path, std::span<const uint8_t> dtb) {
  ASSIGN_OR_RETURN(UniqueFd fd, CreateOutputFile("--dtb-out", path));
  if (!WriteAll(fd.get(), dtb)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--dtb-out %s: write failed: %s", path, std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

std::span<const KvmCapability> RequiredCapabilities() { return kArm64Capabilities; }

absl::StatusOr<std::vector<RamRegion>> RamLayout(uint64_t ram_size) {
  absl::Status valid = arm64::ValidateRamSize(ram_size);
  if (!valid.ok()) return WithPrefix("--memory", valid);
  // The map is a table of constants; prove once per start that nothing in
  // it (RAM included) overlaps.
  RETURN_IF_ERROR(arm64::CheckNoOverlap(arm64::MemoryMap(ram_size)));
  return std::vector<RamRegion>{{arm64::kRamBase, ram_size}};
}

absl::Status SetupVm(const Kvm& /*kvm*/, Vm& vm) { return arm64::CreateGic(vm); }

absl::StatusOr<BootState> SetupPlatform(Machine& machine, const VmConfig& config) {
  RETURN_IF_ERROR(
      arm64::AddPlatformDevices(machine, config.console == ConsoleDevice::kSerial));
  ASSIGN_OR_RETURN(std::vector<vfio::fsl_mc::FslMcNodeParams> fsl_mc,
                   arm64::AttachFslMcContainers(machine));

  const GuestMemory& memory = machine.memory();
  const uint64_t ram_size = memory.TotalSize();
  Mapping kernel_file;
  std::vector<uint8_t> inflated;
  ASSIGN_OR_RETURN(boot::Arm64Image image,
                   ReadKernel(config.kernel_path, ram_size, kernel_file, inflated));
  std::optional<uint64_t> initrd_size;
  if (config.initramfs_path) {
    ASSIGN_OR_RETURN(initrd_size, RegularFileSize(*config.initramfs_path, "initramfs"));
  }
  absl::StatusOr<boot::Arm64BootLayout> layout =
      boot::PlaceArm64Boot(image, arm64::kRamBase, ram_size, initrd_size);
  if (!layout.ok()) return WithPrefix("kernel " + config.kernel_path, layout.status());
  RETURN_IF_ERROR(memory.Write(layout->kernel, image.payload));
  std::optional<arm64::InitrdRange> initrd;
  if (initrd_size && layout->initrd) {
    RETURN_IF_ERROR(ReadFileIntoGuest(*config.initramfs_path, "initramfs", memory,
                                      *layout->initrd, *initrd_size));
    initrd = arm64::InitrdRange{*layout->initrd, *layout->initrd + *initrd_size};
  }

  const std::string bootargs = machine.KernelCmdline(config.cmdline);
  ASSIGN_OR_RETURN(std::vector<uint8_t> dtb,
                   DeviceTree(machine, config, bootargs, initrd, std::move(fsl_mc)));
  if (dtb.size() > boot::kArm64DtbMaxSize) {
    return absl::InvalidArgumentError("the device tree is larger than the 2 MiB arm64 allows");
  }
  RETURN_IF_ERROR(memory.Write(layout->dtb, dtb));
  if (config.dtb_out_path) RETURN_IF_ERROR(WriteDtbOut(*config.dtb_out_path, dtb));

  BootState boot;
  boot.entry = layout->kernel;
  boot.boot_data = layout->dtb;
  LOG_INFO("boot", "arm64 Image at 0x%x (%u KiB), DTB at 0x%x (%u bytes)", layout->kernel,
           image.payload.size() >> 10, layout->dtb, dtb.size());
  return boot;
}

absl::Status SetupVcpu(const Kvm& /*kvm*/, const Vcpu& vcpu, uint32_t /*num_cpus*/,
                       const BootState& boot, const GuestMemory& /*memory*/) {
  // KVM_ARM_VCPU_INIT happened in FinishVm. Secondaries start powered off;
  // PSCI CPU_ON sets their entry state.
  if (vcpu.index() != 0) return absl::OkStatus();
  return arm64::SetBootRegs(vcpu.fd(), boot.entry, boot.boot_data);
}

absl::Status FinishVm(Vm& vm, std::span<Vcpu* const> vcpus) {
  const uint32_t num_cpus = static_cast<uint32_t>(vcpus.size());
  if (num_cpus > arm64::MaxVcpus(vm)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--cpus %u: this host's interrupt controller (GICv2) addresses at most %u vCPUs",
        num_cpus, arm64::MaxVcpus(vm)));
  }
  ASSIGN_OR_RETURN(uint32_t target, arm64::PreferredTarget(vm.fd()));
  for (Vcpu* vcpu : vcpus) {
    RETURN_IF_ERROR(arm64::InitVcpu(vcpu->fd(), vcpu->index(), target));
  }
  return arm64::InitGic(vm, num_cpus);
}

std::string GuestExitExamples() {
  return absl::StrFormat(
      "  exit device:    busybox devmem 0x%x 32 7                       -> exits 7\n"
      "  (arm64 has no isa-debug-exit; poweroff/reboot end Skiff with 0 through PSCI)\n",
      arm64::kExitDeviceBase);
}

std::string DescribeVcpu(const Vcpu& vcpu, const GuestMemory& /*memory*/) {
  // No KVM_TRANSLATE on arm64: the PC is virtual and walking the guest's
  // page tables is more than a crash report needs.
  return arm64::DescribeRegs(vcpu.fd());
}

}  // namespace skiff::arch

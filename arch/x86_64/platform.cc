// The x86-64 implementation of arch/arch.h: the in-kernel irqchip and PIT,
// the legacy devices, ACPI tables, and the Linux 64-bit boot protocol.
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "arch/arch.h"
#include "arch/x86_64/acpi.h"
#include "arch/x86_64/boot_cpu.h"
#include "arch/x86_64/boot_params.h"
#include "arch/x86_64/cpuid.h"
#include "arch/x86_64/e820.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/legacy_devices.h"
#include "boot/bzimage.h"
#include "vmm/file_util.h"
#include "vmm/kvm_flex_arrays.h"
#include "vmm/machine.h"
#include "vmm/status_macros.h"

namespace skiff::arch {
namespace {

// The 64-bit entry point sits 0x200 past the start of the protected-mode
// kernel (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol").
constexpr uint64_t kEntry64Offset = 0x200;

constexpr KvmCapability kX86Capabilities[] = {
    SKIFF_KVM_CAP(KVM_CAP_SET_TSS_ADDR),
    SKIFF_KVM_CAP(KVM_CAP_SET_IDENTITY_MAP_ADDR),
    SKIFF_KVM_CAP(KVM_CAP_EXT_CPUID),
    SKIFF_KVM_CAP(KVM_CAP_PIT2),
    SKIFF_KVM_CAP(KVM_CAP_MP_STATE),
};

absl::Status VmIoctl(const Vm& vm, unsigned long request, unsigned long arg,
                     const char* name) {
  if (::ioctl(vm.fd(), request, arg) < 0) {
    return absl::InternalError(absl::StrFormat("%s: %s", name, std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status LoadKernel(const Machine& machine, const VmConfig& config, uint64_t* entry) {
  const GuestMemory& memory = machine.memory();
  const std::string& path = config.kernel_path;
  ASSIGN_OR_RETURN(Mapping file, MapWholeFile(path, "kernel"));
  absl::StatusOr<boot::BzImage> image =
      boot::ParseBzImage(std::span<const uint8_t>(file.data(), file.size()));
  if (!image.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kernel ", path, ": ", image.status().message()));
  }
  const uint64_t ram_size = memory.TotalSize();
  absl::Status fits = x86::CheckKernelFits(*image, ram_size);
  if (!fits.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("kernel ", path, ": ", fits.message()));
  }
  std::string cmdline = machine.KernelCmdline(config.cmdline);
  absl::Status cmdline_ok = x86::ValidateCmdline(cmdline, *image);
  if (!cmdline_ok.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--cmdline: ", cmdline_ok.message()));
  }
  RETURN_IF_ERROR(memory.Write(x86::kKernelLoadAddress, image->payload));

  x86::BootParamsInput input;
  if (config.initramfs_path) {
    ASSIGN_OR_RETURN(uint64_t size, RegularFileSize(*config.initramfs_path, "initramfs"));
    if (size > 0) {
      absl::StatusOr<uint64_t> where = x86::PlaceInitrd(*image, size, ram_size);
      if (!where.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "initramfs ", *config.initramfs_path, ": ", where.status().message()));
      }
      RETURN_IF_ERROR(ReadFileIntoGuest(*config.initramfs_path, "initramfs",
                                        memory, *where, size));
      input.initrd_addr = *where;
      input.initrd_size = size;
    }
  }

  cmdline.push_back('\0');
  RETURN_IF_ERROR(memory.Write(
      x86::kCmdlineAddress,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(cmdline.data()),
                               cmdline.size())));
  input.cmdline_addr = x86::kCmdlineAddress;

  x86::AcpiConfig acpi;
  acpi.num_cpus = machine.num_cpus();
  for (const MmioSlot& slot : machine.virtio_mmio_slots()) {
    acpi.virtio_mmio.push_back({slot.base, slot.size, slot.gsi});
  }
  if (machine.pci_root() != nullptr) {
    acpi.pci_ecam = x86::EcamInfo{x86::kPciEcamBase, 0, 255};
    x86::PciHostInfo host;
    host.mmio32 = {x86::kPciMmio32Base, x86::kPciMmio32Size};
    host.io = x86::AcpiWindow{x86::kPciIoBase, x86::kPciIoSize};
    acpi.pci_host = host;
  }
  ASSIGN_OR_RETURN(std::vector<uint8_t> tables,
                   x86::BuildAcpiTables(acpi, x86::kAcpiTablesAddress));
  RETURN_IF_ERROR(memory.Write(x86::kAcpiTablesAddress, tables));
  input.acpi_rsdp_addr = x86::kAcpiTablesAddress;

  ASSIGN_OR_RETURN(std::vector<x86::E820Entry> e820, x86::BuildE820Map(ram_size));
  input.e820 = e820;
  ASSIGN_OR_RETURN(auto zero_page, x86::BuildBootParams(*image, input));
  RETURN_IF_ERROR(memory.Write(x86::kBootParamsAddress, zero_page));
  RETURN_IF_ERROR(x86::WriteBootTables(memory));
  *entry = x86::kKernelLoadAddress + kEntry64Offset;
  return absl::OkStatus();
}

}  // namespace

std::span<const KvmCapability> RequiredCapabilities() { return kX86Capabilities; }

absl::StatusOr<std::vector<RamRegion>> RamLayout(uint64_t ram_size) {
  absl::Status valid = x86::ValidateRamSize(ram_size);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--memory: ", valid.message()));
  }
  return x86::GuestRamRegions(ram_size);
}

absl::Status SetupVm(const Kvm& /*kvm*/, Vm& vm) {
  RETURN_IF_ERROR(VmIoctl(vm, KVM_SET_TSS_ADDR, x86::kKvmTssAddress, "KVM_SET_TSS_ADDR"));
  uint64_t identity_map = x86::kKvmIdentityMapAddress;
  if (::ioctl(vm.fd(), KVM_SET_IDENTITY_MAP_ADDR, &identity_map) < 0) {
    return absl::InternalError(
        absl::StrFormat("KVM_SET_IDENTITY_MAP_ADDR: %s", std::strerror(errno)));
  }
  RETURN_IF_ERROR(VmIoctl(vm, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP"));
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;
  if (::ioctl(vm.fd(), KVM_CREATE_PIT2, &pit) < 0) {
    return absl::InternalError(absl::StrFormat("KVM_CREATE_PIT2: %s", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<BootState> SetupPlatform(Machine& machine, const VmConfig& config) {
  if (config.dtb_path || config.dtb_out_path) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: x86 guests are described by ACPI tables, not a device tree (the option is for "
        "arm64)", config.dtb_path ? "--dtb" : "--dtb-out"));
  }
  BootState boot;
  RETURN_IF_ERROR(LoadKernel(machine, config, &boot.entry));
  boot.boot_data = x86::kBootParamsAddress;
  RETURN_IF_ERROR(x86::AddLegacyDevices(machine, config.console == ConsoleDevice::kSerial));
  return boot;
}

std::string GuestExitExamples() {
  return absl::StrFormat(
      "  exit device:    busybox devmem 0x%x 32 7                       -> exits 7\n"
      "  isa-debug-exit: ioperm(0x%x, 1, 1); outb(5, 0x%x);                  -> exits 11\n"
      "                  (or, with /dev/port: printf '\\005' | dd of=/dev/port bs=1 seek=%d)\n",
      x86::kExitDeviceAddress, x86::kIsaDebugExitPort, x86::kIsaDebugExitPort,
      x86::kIsaDebugExitPort);
}

absl::Status SetupVcpu(const Kvm& kvm, const Vcpu& vcpu, uint32_t num_cpus,
                       const BootState& boot, const GuestMemory& /*memory*/) {
  ASSIGN_OR_RETURN(std::vector<kvm_cpuid_entry2> cpuid, kvm.SupportedCpuid());
  x86::NormalizeCpuid(cpuid, vcpu.index(), num_cpus);
  using kvm_flex::Cpuid2Header;
  std::vector<uint64_t> storage(
      (sizeof(Cpuid2Header) + cpuid.size() * sizeof(kvm_cpuid_entry2) + 7) / 8, 0);
  auto* header = reinterpret_cast<Cpuid2Header*>(storage.data());
  header->nent = static_cast<uint32_t>(cpuid.size());
  std::memcpy(header + 1, cpuid.data(), cpuid.size() * sizeof(kvm_cpuid_entry2));
  if (::ioctl(vcpu.fd(), kvm_flex::kSetCpuid2, header) < 0) {
    return absl::InternalError(absl::StrFormat("KVM_SET_CPUID2 (vCPU %u): %s",
                                               vcpu.index(), std::strerror(errno)));
  }
  RETURN_IF_ERROR(x86::SetLocalInterrupts(vcpu.fd()));
  RETURN_IF_ERROR(x86::SetBootFpu(vcpu.fd()));
  if (vcpu.index() != 0) return absl::OkStatus();  // APs wait for INIT/SIPI
  RETURN_IF_ERROR(x86::SetLongModeSregs(vcpu.fd()));
  return x86::SetBootRegs(vcpu.fd(), boot.entry, boot.boot_data);
}

absl::StatusOr<std::string> PressPowerButton(Machine& machine) {
  if (!machine.power_button()) {
    return absl::FailedPreconditionError("the machine has no power button");
  }
  machine.power_button()();
  return std::string("acpi power button");
}

absl::Status FinishVm(Vm& /*vm*/, std::span<Vcpu* const> /*vcpus*/) { return absl::OkStatus(); }

std::string DescribeVcpu(const Vcpu& vcpu, const GuestMemory& memory) {
  kvm_regs regs{};
  kvm_sregs sregs{};
  if (::ioctl(vcpu.fd(), KVM_GET_REGS, &regs) < 0 ||
      ::ioctl(vcpu.fd(), KVM_GET_SREGS, &sregs) < 0) {
    return "registers unavailable";
  }
  std::string text = absl::StrFormat(
      "RIP=0x%x RSP=0x%x RFLAGS=0x%x CR0=0x%x CR3=0x%x CR4=0x%x EFER=0x%x CS=0x%x",
      regs.rip, regs.rsp, regs.rflags, sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer,
      sregs.cs.selector);
  kvm_translation translation{};
  translation.linear_address = sregs.cs.base + regs.rip;
  if (::ioctl(vcpu.fd(), KVM_TRANSLATE, &translation) == 0 && translation.valid) {
    uint8_t bytes[15];
    if (memory.Read(translation.physical_address, bytes).ok()) {
      text += "; bytes at RIP:";
      for (uint8_t b : bytes) text += absl::StrFormat(" %02x", b);
    }
  }
  return text;
}

}  // namespace skiff::arch

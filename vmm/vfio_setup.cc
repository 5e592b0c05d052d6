#include "vmm/vfio_setup.h"

#include <linux/vfio.h>
#include <unistd.h>

#include "absl/strings/str_format.h"
#include "arch/arch.h"
#include "devices/pci/intx_router.h"
#include "devices/pci/pci_constants.h"
#include "devices/pci/pci_root.h"
#include "devices/vfio/reset_report.h"
#include "devices/vfio/rom_bar.h"
#include "devices/vfio/vfio_pci_device.h"
#include "devices/vfio/vfio_sysfs.h"
#include "vmm/config.h"
#include "vmm/file_util.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/status_macros.h"

namespace skiff {
namespace {

// The image of --device vfio=NAME,rom=FILE, which must fit an expansion ROM.
absl::StatusOr<std::shared_ptr<const std::vector<uint8_t>>> ReadRomFile(const std::string& name,
                                                                        const std::string& file) {
  const std::string what = absl::StrFormat("--device vfio=%s: rom file", name);
  ASSIGN_OR_RETURN(const uint64_t size, RegularFileSize(file, what));
  if (size > vfio::kMaxRomBarSize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s %s: 0x%x bytes; an expansion ROM is at most 0x%x", what, file, size,
                        vfio::kMaxRomBarSize));
  }
  ASSIGN_OR_RETURN(Mapping mapped, MapWholeFile(file, what));
  const auto* bytes = static_cast<const uint8_t*>(mapped.data());
  return std::make_shared<const std::vector<uint8_t>>(bytes, bytes + mapped.size());
}

}  // namespace

absl::StatusOr<OpenedVfioDevices> OpenVfioDevices(const VmConfig& config,
                                                  std::shared_ptr<vfio::VfioKernel> kernel) {
  OpenedVfioDevices opened;
  if (config.vfio_devices.empty() && config.fsl_mc_devices.empty()) return opened;
  if (config.fsl_mc_devices.size() > 1) {
    // One MC, one fsl-mc bus in the guest: its root is the one container.
    return absl::InvalidArgumentError(absl::StrFormat(
        "--device fsl-mc=%s: only one fsl-mc container per guest (%s was given first)",
        config.fsl_mc_devices[1].dprc, config.fsl_mc_devices[0].dprc));
  }
  // sysfs first: it names the problem (driver, IOMMU, group) best.
  std::vector<vfio::HostPciDevice> hosts;
  for (const VfioDeviceConfig& device : config.vfio_devices) {
    ASSIGN_OR_RETURN(vfio::HostPciDevice host,
                     vfio::InspectHostPciDevice(config.sysfs_root, device.address));
    RETURN_IF_ERROR(vfio::CheckGroupViable(host));
    opened.rom_images.emplace_back();
    if (!device.rom_file.empty()) {
      ASSIGN_OR_RETURN(opened.rom_images.back(), ReadRomFile(host.name, device.rom_file));
    }
    hosts.push_back(std::move(host));
  }
  std::vector<vfio::fsl_mc::HostDprc> dprcs;
  for (const FslMcDeviceConfig& device : config.fsl_mc_devices) {
    ASSIGN_OR_RETURN(vfio::fsl_mc::HostDprc dprc,
                     vfio::fsl_mc::InspectHostDprc(config.sysfs_root, device.dprc));
    dprcs.push_back(std::move(dprc));
  }
  ASSIGN_OR_RETURN(opened.container, vfio::VfioContainer::Open(std::move(kernel)));
  for (size_t i = 0; i < hosts.size(); ++i) {
    const vfio::HostPciDevice& host = hosts[i];
    ASSIGN_OR_RETURN(vfio::VfioDevice device, opened.container->OpenDevice(host));
    opened.expose_rom.push_back(config.vfio_devices[i].rom);
    const vfio::ResetReport reset =
        vfio::DescribeReset(host.name, host.reset_method,
                            (device.info.flags & VFIO_DEVICE_FLAGS_RESET) != 0);
    if (reset.warn) {
      LOG_WARN("vfio", "%s", reset.message);
    } else {
      LOG_INFO("vfio", "%s", reset.message);
    }
    opened.devices.push_back(std::move(device));
  }
  for (const vfio::fsl_mc::HostDprc& dprc : dprcs) {
    ASSIGN_OR_RETURN(std::unique_ptr<vfio::fsl_mc::FslMcContainer> mc,
                     vfio::fsl_mc::FslMcContainer::Open(opened.container, dprc));
    opened.fsl_mc.push_back(std::move(mc));
  }
  // Every group has joined, so the IOMMU's usable ranges are final: check
  // that guest RAM (at the addresses the machine will give it) can be
  // DMA-mapped before KVM or guest RAM exist.
  ASSIGN_OR_RETURN(std::vector<RamRegion> ram, arch::RamLayout(config.memory_bytes));
  RETURN_IF_ERROR(opened.container->CheckGuestRam(ram));
  return opened;
}

PassthroughWiring WiringForSlot(const arch::PciLayout& layout, const pci::PciRoot::Slot& slot) {
  PassthroughWiring wiring;
  wiring.devid = slot.bdf;
  wiring.intx_gsi = layout.intx_gsi_base +
                    static_cast<uint32_t>(pci::IntxSwizzle(slot.device, pci::kInterruptPinA));
  return wiring;
}

absl::Status AttachVfioDevices(Machine& machine, OpenedVfioDevices opened) {
  if (opened.container == nullptr) return absl::OkStatus();
  RETURN_IF_ERROR(opened.container->MapGuestMemory(machine.memory()));
  ASSIGN_OR_RETURN(KvmVfioDevice kvm_vfio, KvmVfioDevice::Create(machine.vm()));
  for (const auto& group : opened.container->groups()) {
    RETURN_IF_ERROR(kvm_vfio.AddGroup(group->fd()));
  }
  machine.SetKvmVfioDevice(std::make_unique<KvmVfioDevice>(std::move(kvm_vfio)));
  machine.KeepVfioContainer(opened.container);
  for (auto& mc : opened.fsl_mc) machine.AddFslMcContainer(std::move(mc));
  if (opened.devices.empty()) return absl::OkStatus();  // no PCI root for fsl-mc alone

  ASSIGN_OR_RETURN(pci::PciRoot * root, machine.GetOrCreatePciRoot());
  const arch::PciLayout layout = arch::PlatformPciLayout();
  const long page = ::sysconf(_SC_PAGESIZE);
  uint64_t rom_top = layout.mmio32_base + layout.mmio32_size;
  for (size_t i = 0; i < opened.devices.size(); ++i) {
    vfio::VfioDevice& device = opened.devices[i];
    ASSIGN_OR_RETURN(pci::PciRoot::Slot slot, root->ReserveSlot());
    const PassthroughWiring wiring = WiringForSlot(layout, slot);
    vfio::VfioPciEnv env;
    env.msi = &machine.msi_allocator();
    env.slots = &machine.vm();
    if (machine.irqfd_resample()) {
      env.irqfds = &machine.vm();
      env.intx_gsi = wiring.intx_gsi;
    }
    env.event_loop = &machine.event_loop();
    env.bdf = wiring.devid;
    env.page_size = page > 0 ? static_cast<uint64_t>(page) : 4096;
    if (i < opened.expose_rom.size() && opened.expose_rom[i]) {
      env.rom = vfio::VfioRomEnv{&machine.mmio_bus(), layout.mmio32_base, layout.mmio32_size,
                                 i < opened.rom_images.size() ? opened.rom_images[i] : nullptr};
    }
    const std::string name = device.name;
    auto dev = vfio::VfioPciDevice::Create(opened.container, std::move(device), env);
    if (!dev.ok()) {
      root->ReleaseSlot(slot);
      return dev.status();
    }
    if (const uint32_t rom_size = (*dev)->rom_size(); rom_size != 0) {
      const std::optional<uint32_t> rom_at =
          vfio::PlaceRomBelow(layout.mmio32_base, rom_top, rom_size);
      if (!rom_at) {
        root->ReleaseSlot(slot);
        return absl::ResourceExhaustedError(absl::StrFormat(
            "vfio device %s: no room for its expansion ROM (0x%x bytes) in the PCI window", name,
            rom_size));
      }
      // What firmware does: the address goes into the register, enable bit clear.
      (*dev)->WriteConfig(pci::kExpansionRom, 4, *rom_at);
      rom_top = *rom_at;
      LOG_INFO("vfio", "%s: expansion ROM at 0x%x (decoding when the guest enables it)", name,
               *rom_at);
    }
    absl::Status attached = root->Attach(slot, *dev);
    if (!attached.ok()) {
      root->ReleaseSlot(slot);
      return absl::Status(attached.code(),
                          absl::StrFormat("vfio device %s: %s", name, attached.message()));
    }
    LOG_INFO("vfio", "%s passed through as 00:%02x.0 (%u MSI-X vectors)", name, slot.device,
             (*dev)->msix_vectors());
  }
  return absl::OkStatus();
}

}  // namespace skiff

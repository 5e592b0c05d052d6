#include "vmm/virtio_setup.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "devices/block/disk_options.h"
#include "devices/pci/pci_constants.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/console.h"
#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/net.h"
#include "devices/virtio/pci_transport.h"
#include "vmm/config.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/status_macros.h"

namespace skiff {
namespace {

absl::Status AttachMmio(Machine& machine, std::shared_ptr<virtio::VirtioDevice> device) {
  uint32_t index = static_cast<uint32_t>(machine.virtio_mmio_slots().size());
  auto slot = arch::VirtioMmioSlot(index);
  if (!slot.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(device->name(), ": ", slot.status().message()));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<IrqLine> irq, machine.MakeLevelIrqLine(slot->gsi));
  virtio::MmioTransportEnv env;
  env.base_gpa = slot->base;
  env.memory = machine.memory();
  env.event_loop = &machine.event_loop();
  env.ioevents = &machine.vm();
  env.irq = std::move(irq);
  std::string name = device->name();
  ASSIGN_OR_RETURN(auto transport, virtio::MmioTransport::Create(std::move(device), env));
  RETURN_IF_ERROR(machine.mmio_bus().Register(slot->base, slot->size, std::move(transport),
                                              absl::StrCat(name, " (virtio-mmio)")));
  machine.AddVirtioMmioSlot(*slot);
  // Kernels without ACPI (or with the command-line option built in) find
  // the device this way; where both work, the first probe claims the
  // registers and the second backs off with -EBUSY.
  if (slot->on_cmdline) {
    machine.AddKernelArg(virtio::VirtioMmioCmdlineArg(slot->base, slot->size, slot->gsi));
  }
  LOG_INFO("virtio", "%s on virtio-mmio at 0x%x, GSI %u", name, slot->base, slot->gsi);
  return absl::OkStatus();
}

absl::Status AttachPci(Machine& machine, std::shared_ptr<virtio::VirtioDevice> device) {
  ASSIGN_OR_RETURN(pci::PciRoot * root, machine.GetOrCreatePciRoot());
  virtio::VirtioPciEnv env;
  env.memory = machine.memory();
  env.event_loop = &machine.event_loop();
  env.ioevents = &machine.vm();
  env.msi = &machine.msi_allocator();
  std::string name = device->name();
  auto transport = virtio::AddVirtioPciDevice(*root, std::move(device), env);
  if (!transport.ok()) {
    return absl::Status(transport.status().code(),
                        absl::StrCat(name, ": ", transport.status().message()));
  }
  LOG_INFO("virtio", "%s on virtio-pci", name);
  return absl::OkStatus();
}

absl::Status Attach(Machine& machine, std::shared_ptr<virtio::VirtioDevice> device,
                    VirtioTransport transport) {
  switch (transport) {
    case VirtioTransport::kMmio:
      return AttachMmio(machine, std::move(device));
    case VirtioTransport::kPci:
      return AttachPci(machine, std::move(device));
  }
  return absl::InternalError("unknown transport");
}

// A file the operator named that does not exist is a bad value (exit 2),
// as for --kernel; other failures keep their code.
absl::Status OperatorError(absl::string_view option, const absl::Status& status) {
  absl::StatusCode code = status.code() == absl::StatusCode::kNotFound
                              ? absl::StatusCode::kInvalidArgument
                              : status.code();
  return absl::Status(code, absl::StrCat(option, ": ", status.message()));
}

}  // namespace

absl::StatusOr<OpenedVirtioDevices> OpenVirtioDevices(const VmConfig& config) {
  OpenedVirtioDevices opened;
  uint32_t mmio_devices = 0;
  uint32_t pci_devices = 0;
  auto count = [&](VirtioTransport transport) {
    ++(transport == VirtioTransport::kMmio ? mmio_devices : pci_devices);
    return transport;
  };
  if (config.console == ConsoleDevice::kVirtio) {
    opened.virtio_console = true;
    opened.console_transport = count(config.default_transport);
  }
  for (const DiskConfig& disk : config.disks) {
    block::DiskOptions options;
    options.path = disk.path;
    options.readonly = disk.readonly;
    options.direct = disk.direct;
    options.serial = disk.serial;
    auto device = virtio::VirtioBlk::Create(options);
    if (!device.ok()) {
      return OperatorError("--disk", device.status());
    }
    opened.devices.push_back(
        {*std::move(device), count(disk.transport.value_or(config.default_transport))});
  }
  for (const NetConfig& net : config.nets) {
    virtio::NetOptions options;
    options.tap = net.tap;
    options.mac = net.mac;
    options.host_ip = net.host_ip;
    options.host_mask = net.host_mask;
    options.queues = net.queues;
    options.vhost = net.vhost;
    auto device = virtio::VirtioNet::Create(options);
    if (!device.ok()) {
      return OperatorError("--net", device.status());
    }
    opened.devices.push_back(
        {*std::move(device), count(net.transport.value_or(config.default_transport))});
  }
  if (mmio_devices > 0) {
    auto last = arch::VirtioMmioSlot(mmio_devices - 1);
    if (!last.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%u virtio-mmio devices asked for: %s", mmio_devices, last.status().message()));
    }
  }
  // Bus 0 is all Skiff has; the host bridge takes device 0.
  constexpr uint32_t kPciDeviceRoom = pci::kDevicesPerBus - 1;
  if (pci_devices > kPciDeviceRoom) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%u virtio-pci devices asked for: PCI bus 0 has room for %u (use transport=mmio for "
        "some)", pci_devices, kPciDeviceRoom));
  }
  return opened;
}

absl::Status AttachVirtioDevices(Machine& machine, OpenedVirtioDevices opened) {
  // The console first: with --console virtio it is hvc0 and the first
  // device the guest finds.
  if (opened.virtio_console) {
    Console* console = &machine.console();
    Console::WindowSize size = console->window_size();
    virtio::VirtioConsoleOptions options;
    options.output = [console](std::span<const uint8_t> bytes) { console->Output(bytes); };
    options.cols = size.cols;
    options.rows = size.rows;
    std::shared_ptr<virtio::VirtioConsole> device = virtio::VirtioConsole::Create(options);
    RETURN_IF_ERROR(Attach(machine, device, opened.console_transport));
    virtio::ConnectConsoleInput(*console, device);
    machine.AddKernelArg("console=hvc0");
  }
  for (OpenedVirtioDevices::Entry& entry : opened.devices) {
    RETURN_IF_ERROR(Attach(machine, std::move(entry.device), entry.transport));
  }
  return absl::OkStatus();
}

}  // namespace skiff

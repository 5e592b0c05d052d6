#include "vmm/machine.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "arch/arch.h"
#include "vmm/exit_codes.h"
#include "devices/pci/pci_config_io.h"
#include "devices/pci/pci_ecam.h"
#include "devices/pci/pci_root.h"
#include "vmm/file_util.h"
#include "vmm/irqfd_line.h"
#include "vmm/log.h"
#include "vmm/status_macros.h"
#include "vmm/vfio_setup.h"
#include "vmm/virtio_setup.h"
#include "devices/vfio/vfio_kernel_linux.h"

namespace skiff {
namespace {

constexpr KvmCapability kGenericCapabilities[] = {
    SKIFF_KVM_CAP(KVM_CAP_USER_MEMORY),
    SKIFF_KVM_CAP(KVM_CAP_IRQCHIP),
    SKIFF_KVM_CAP(KVM_CAP_IOEVENTFD),
    SKIFF_KVM_CAP(KVM_CAP_IRQFD),
    SKIFF_KVM_CAP(KVM_CAP_IRQ_ROUTING),
    SKIFF_KVM_CAP(KVM_CAP_IMMEDIATE_EXIT),
};

// SIGINT/SIGTERM/SIGHUP become an orderly shutdown through a signalfd on the
// I/O thread; the vCPU kick signal is delivered only to vCPU threads.
sigset_t HandledSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Machine>> Machine::Create(const VmConfig& config) {
  // Operator files first: a typo should not cost a KVM set-up.
  RETURN_IF_ERROR(RegularFileSize(config.kernel_path, "kernel").status());
  if (config.initramfs_path) {
    RETURN_IF_ERROR(RegularFileSize(*config.initramfs_path, "initramfs").status());
  }
  ASSIGN_OR_RETURN(OpenedVirtioDevices devices, OpenVirtioDevices(config));
  ASSIGN_OR_RETURN(OpenedVfioDevices vfio_devices,
                   OpenVfioDevices(config, std::make_shared<vfio::LinuxVfioKernel>()));
  ASSIGN_OR_RETURN(Kvm kvm, Kvm::Open(config.kvm_device));
  RETURN_IF_ERROR(kvm.Require(kGenericCapabilities));
  RETURN_IF_ERROR(kvm.Require(arch::RequiredCapabilities()));
  int max_vcpus = kvm.CheckExtension(KVM_CAP_MAX_VCPUS);
  if (max_vcpus <= 0) max_vcpus = kvm.CheckExtension(KVM_CAP_NR_VCPUS);
  if (max_vcpus > 0 && config.cpus > static_cast<uint32_t>(max_vcpus)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--cpus %u: this host's KVM allows at most %d vCPUs", config.cpus, max_vcpus));
  }
  ASSIGN_OR_RETURN(size_t run_size, kvm.VcpuMmapSize());

  auto machine = std::make_unique<Machine>(std::move(kvm));
  Machine& m = *machine;
  ASSIGN_OR_RETURN(m.shutdown_, Shutdown::Create());
  ASSIGN_OR_RETURN(m.event_loop_, EventLoop::Create());
  ASSIGN_OR_RETURN(m.vm_, Vm::Create(m.kvm_));
  ASSIGN_OR_RETURN(std::vector<RamRegion> layout, arch::RamLayout(config.memory_bytes));
  GuestRamOptions ram_options;
  ram_options.hugepages = config.hugepages;
  ASSIGN_OR_RETURN(m.ram_, GuestRam::Allocate(layout, ram_options));
  RETURN_IF_ERROR(m.vm_->MapGuestMemory(m.ram_.memory()));
  LOG_DEBUG("vmm", "guest RAM allocated and mapped");
  RETURN_IF_ERROR(arch::SetupVm(m.kvm_, *m.vm_));
  {
    arch::IrqRoutingBase routes = arch::DefaultIrqRouting();
    int max_routes = m.kvm_.CheckExtension(KVM_CAP_IRQ_ROUTING);
    m.irq_routing_ = std::make_unique<IrqRouting>(
        m.vm_->fd(), std::move(routes.routes), routes.first_msi_gsi,
        max_routes > 0 ? static_cast<uint32_t>(max_routes) : 1024);
    m.msi_allocator_ = std::make_unique<KvmMsiAllocator>(m.vm_.get(), m.irq_routing_.get());
    m.irqfd_resample_ = m.kvm_.CheckExtension(KVM_CAP_IRQFD_RESAMPLE) > 0;
  }
  // The console exists before the platform so the UART can be wired to it.
  // If set-up fails after this, destroying the machine restores the terminal.
  ASSIGN_OR_RETURN(m.console_, Console::Create(STDIN_FILENO, STDOUT_FILENO, m.shutdown_.get()));
  for (uint32_t i = 0; i < config.cpus; ++i) {
    ASSIGN_OR_RETURN(auto vcpu, Vcpu::Create(*m.vm_, i, run_size));
    m.vcpus_.push_back(std::move(vcpu));
  }
  LOG_DEBUG("vmm", "vCPUs created");
  RETURN_IF_ERROR(AttachVirtioDevices(m, std::move(devices)));
  RETURN_IF_ERROR(AttachVfioDevices(m, std::move(vfio_devices)));
  ASSIGN_OR_RETURN(arch::BootState boot, arch::SetupPlatform(m, config));
  LOG_DEBUG("vmm", "platform described and guest loaded");
  for (const auto& vcpu : m.vcpus_) {
    RETURN_IF_ERROR(arch::SetupVcpu(m.kvm_, *vcpu, config.cpus, boot, m.ram_.memory()));
  }
  RETURN_IF_ERROR(m.console_->Attach(*m.event_loop_));
  return machine;
}

Machine::~Machine() {
  StopThreads();
  // Devices go first, while the VM, the routing table and the event loop
  // they unregister from still exist.
  mmio_bus_.Clear();
  pio_bus_.Clear();
  pci_root_.reset();
}

absl::StatusOr<pci::PciRoot*> Machine::GetOrCreatePciRoot() {
  if (pci_root_) return pci_root_.get();
  arch::PciLayout layout = arch::PlatformPciLayout();
  std::array<std::shared_ptr<IrqLine>, pci::kIntxLines> intx;
  for (uint32_t i = 0; i < pci::kIntxLines; ++i) {
    ASSIGN_OR_RETURN(intx[i], MakeLevelIrqLine(layout.intx_gsi_base + i));
  }
  pci::PciRootConfig root_config;
  root_config.mmio32 = {layout.mmio32_base, layout.mmio32_size};
  if (layout.io_size > 0) root_config.io = pci::PciWindow{layout.io_base, layout.io_size};
  ASSIGN_OR_RETURN(std::shared_ptr<pci::PciRoot> root,
                   pci::PciRoot::Create(root_config, &mmio_bus_, &pio_bus_, intx));
  if (layout.config_port_size > 0) {
    RETURN_IF_ERROR(pio_bus_.Register(layout.config_port, layout.config_port_size,
                                      std::make_shared<pci::PciConfigIo>(root),
                                      "PCI config ports"));
  }
  RETURN_IF_ERROR(mmio_bus_.Register(layout.ecam_base, layout.ecam_size,
                                     std::make_shared<pci::PciEcam>(root), "PCI ECAM"));
  pci_root_ = std::move(root);
  LOG_INFO("pci", "PCI root complex: ECAM at 0x%x, BAR window 0x%x-0x%x", layout.ecam_base,
           layout.mmio32_base, layout.mmio32_base + layout.mmio32_size - 1);
  return pci_root_.get();
}

absl::StatusOr<std::shared_ptr<IrqLine>> Machine::MakeLevelIrqLine(uint32_t gsi) {
  if (!irqfd_resample_) return vm_->MakeIrqLine(gsi);
  ASSIGN_OR_RETURN(std::shared_ptr<IrqFdLevelLine> line,
                   IrqFdLevelLine::Create(*vm_, *event_loop_, gsi));
  return std::shared_ptr<IrqLine>(std::move(line));
}

std::string Machine::KernelCmdline(const std::string& user_cmdline) const {
  std::string cmdline;
  for (const std::string& arg : kernel_args_) {
    if (!cmdline.empty()) cmdline += ' ';
    cmdline += arg;
  }
  if (!cmdline.empty() && !user_cmdline.empty()) cmdline += ' ';
  return cmdline + user_cmdline;
}

ExitStatus Machine::Run() {
  // Block the handled signals in every thread we start; the I/O thread
  // reads them from a signalfd.
  sigset_t handled = HandledSignals();
  sigset_t blocked = handled;
  sigaddset(&blocked, Vcpu::KickSignal());
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
  Vcpu::InstallKickHandler();

  UniqueFd signal_fd(::signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK));
  if (signal_fd) {
    (void)event_loop_->Add(signal_fd.get(), EPOLLIN, [this, &signal_fd](uint32_t) {
      signalfd_siginfo info;
      if (::read(signal_fd.get(), &info, sizeof(info)) == sizeof(info)) {
        shutdown_->Request(kExitSignal,
                           absl::StrFormat("stopped by signal %s",
                                           strsignal(static_cast<int>(info.ssi_signo))));
      }
    });
  }
  (void)event_loop_->Add(shutdown_->eventfd(), EPOLLIN, [this](uint32_t) {
    event_loop_->Stop();
  });

  io_thread_ = std::thread([this] { event_loop_->Run(); });
  ExitBuses buses{&pio_bus_, &mmio_bus_};
  auto describe = [this](const Vcpu& vcpu) {
    return arch::DescribeVcpu(vcpu, ram_.memory());
  };
  LOG_INFO("vmm", "starting %zu vCPU(s)", vcpus_.size());
  for (auto& vcpu : vcpus_) {
    Vcpu* v = vcpu.get();
    vcpu_threads_.emplace_back([this, v, buses, describe] {
      v->RunLoop(buses, *shutdown_, describe);
    });
  }
  shutdown_->Wait();
  StopThreads();
  if (signal_fd) (void)event_loop_->Remove(signal_fd.get());
  ExitStatus status = shutdown_->status();
  LOG_INFO("vmm", "stopped: %s (exit code %d)", status.reason, status.code);
  return status;
}

void Machine::StopThreads() {
  if (shutdown_) shutdown_->Request(kExitVmmError, "Skiff is shutting down");
  for (auto& vcpu : vcpus_) vcpu->Kick();
  for (auto& t : vcpu_threads_) {
    if (t.joinable()) t.join();
  }
  vcpu_threads_.clear();
  if (event_loop_) event_loop_->Stop();
  if (io_thread_.joinable()) io_thread_.join();
}

}  // namespace skiff

#include "vmm/machine.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
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
#include "vmm/hugepages.h"
#include "vmm/log.h"
#include "vmm/machine_control.h"
#include "vmm/pci_root_config.h"
#include "vmm/status_macros.h"
#include "vmm/vfio_setup.h"
#include "vmm/virtio_setup.h"
#include "devices/vfio/vfio_container.h"
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

// How long a pause waits for every vCPU to leave KVM_RUN. A kicked vCPU
// returns within microseconds; this only bounds a host in trouble.
constexpr absl::Duration kPauseTimeout = absl::Seconds(5);

// --cpus affinity= and --io-affinity name CPUs this host has and lets us use.
absl::Status CheckPlacement(const PlacementOptions& placement) {
  if (placement.vcpu_affinity.empty() && !placement.io_affinity) return absl::OkStatus();
  ASSIGN_OR_RETURN(HostCpus host, ReadHostCpus());
  for (const VcpuAffinity& pin : placement.vcpu_affinity) {
    RETURN_IF_ERROR(CheckHostCpus(absl::StrFormat("--cpus affinity %u:%s", pin.vcpu,
                                                  FormatCpuList(pin.host_cpus)),
                                  pin.host_cpus, host));
  }
  if (placement.io_affinity) {
    RETURN_IF_ERROR(CheckHostCpus("--io-affinity", *placement.io_affinity, host));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Machine>> Machine::Create(const VmConfig& config) {
  // Operator files first: a typo should not cost a KVM set-up.
  RETURN_IF_ERROR(RegularFileSize(config.kernel_path, "kernel").status());
  if (config.initramfs_path) {
    RETURN_IF_ERROR(RegularFileSize(*config.initramfs_path, "initramfs").status());
  }
  ASSIGN_OR_RETURN(OpenedVirtioDevices devices, OpenVirtioDevices(config));
  RETURN_IF_ERROR(CheckPlacement(config.placement));
  if (config.hugepages) {
    RETURN_IF_ERROR(CheckHugepageSupply(config.hugepage_size, config.memory_bytes));
  }
  std::unique_ptr<ControlServer> control;
  if (config.api_socket) {
    ASSIGN_OR_RETURN(control, ControlServer::Create(*config.api_socket));
  }
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
  m.config_ = config;
  m.control_ = std::move(control);
  m.seccomp_ = config.seccomp;
  RETURN_IF_ERROR(CheckSeccompFilters(config.seccomp));
  ASSIGN_OR_RETURN(m.shutdown_, Shutdown::Create());
  ASSIGN_OR_RETURN(m.event_loop_, EventLoop::Create());
  ASSIGN_OR_RETURN(m.vm_, Vm::Create(m.kvm_));
  ASSIGN_OR_RETURN(std::vector<RamRegion> layout, arch::RamLayout(config.memory_bytes));
  GuestRamOptions ram_options;
  ram_options.hugepages = config.hugepages;
  ram_options.hugepage_size = config.hugepage_size;
  ram_options.prefault = config.prefault;
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
  {
    std::vector<Vcpu*> vcpus;
    for (const auto& vcpu : m.vcpus_) vcpus.push_back(vcpu.get());
    RETURN_IF_ERROR(arch::FinishVm(*m.vm_, vcpus));
  }
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
  double t = MonotonicSeconds();
  auto stage = [&t](const char* what) {
    const double now = MonotonicSeconds();
    LOG_DEBUG("vmm", "teardown: %s in %.1f ms", what, 1e3 * (now - t));
    t = now;
  };
  StopThreads();
  stage("threads stopped");
  // Devices go first, while the VM, the routing table and the event loop
  // they unregister from still exist. A passed-through device stops (no
  // DMA, no interrupts, reset) and closes here. fsl-mc containers go
  // before the buses: each takes its own portals off the MMIO bus, its
  // QBMan slots out of the VM and its VFIO triggers off before closing its
  // objects (DPRC last).
  fsl_mc_.clear();
  mmio_bus_.Clear();
  pio_bus_.Clear();
  pci_root_.reset();
  stage("devices released");
  // VFIO, in the order QEMU and the kernel's own release path use: KVM
  // lets go of the groups, then the container unmaps guest RAM from the
  // IOMMU and closes the groups (detaching them) and itself, all before
  // guest RAM is unmapped and the VM closed (members, below).
  if (kvm_vfio_) kvm_vfio_->DeleteGroups();
  vfio_container_.reset();
  if (kvm_vfio_) stage("VFIO groups and container released");
}

absl::StatusOr<pci::PciRoot*> Machine::GetOrCreatePciRoot() {
  if (pci_root_) return pci_root_.get();
  arch::PciLayout layout = arch::PlatformPciLayout();
  std::array<std::shared_ptr<IrqLine>, pci::kIntxLines> intx;
  for (uint32_t i = 0; i < pci::kIntxLines; ++i) {
    ASSIGN_OR_RETURN(intx[i], MakeLevelIrqLine(layout.intx_gsi_base + i));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<pci::PciRoot> root,
                   pci::PciRoot::Create(PciRootConfigFor(layout), &mmio_bus_, &pio_bus_, intx));
  if (layout.config_port_size > 0) {
    RETURN_IF_ERROR(pio_bus_.Register(layout.config_port, layout.config_port_size,
                                      std::make_shared<pci::PciConfigIo>(root),
                                      "PCI config ports"));
  }
  RETURN_IF_ERROR(mmio_bus_.Register(layout.ecam_base, layout.ecam_size,
                                     std::make_shared<pci::PciEcam>(root), "PCI ECAM"));
  pci_root_ = std::move(root);
  LOG_INFO("pci", "PCI root complex: ECAM at 0x%x, BAR window 0x%x-0x%x%s", layout.ecam_base,
           layout.mmio32_base, layout.mmio32_base + layout.mmio32_size - 1,
           layout.mmio64_size > 0
               ? absl::StrFormat(", 64-bit BAR window 0x%x-0x%x", layout.mmio64_base,
                                 layout.mmio64_base + layout.mmio64_size - 1)
               : std::string());
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

  if (control_) {
    control_target_ = std::make_unique<MachineControl>(*this);
    absl::Status attached = control_->Attach(*event_loop_, *control_target_);
    if (!attached.ok()) shutdown_->Request(kExitVmmError, std::string(attached.message()));
  }
  // Each thread confines itself once its own set-up is done, before it
  // touches anything the guest controls; the main thread last, so that no
  // thread it starts inherits its filter, and after it has placed the
  // others (sched_setaffinity/sched_setscheduler on their tids).
  io_thread_ = std::thread([this] {
    io_tid_ = static_cast<pid_t>(::syscall(SYS_gettid));
    if (ConfineThread(ThreadRole::kIo)) event_loop_->Run();
  });
  ExitBuses buses{&pio_bus_, &mmio_bus_};
  auto describe = [this](const Vcpu& vcpu) {
    return arch::DescribeVcpu(vcpu, ram_.memory());
  };
  LOG_INFO("vmm", "starting %zu vCPU(s)", vcpus_.size());
  // The vCPUs wait at the closed gate until they are pinned, so no guest
  // code runs on a CPU the operator did not choose.
  gate_ = std::make_unique<VcpuGate>(static_cast<uint32_t>(vcpus_.size()), /*closed=*/true);
  for (auto& vcpu : vcpus_) {
    Vcpu* v = vcpu.get();
    vcpu_threads_.emplace_back([this, v, buses, describe] {
      if (ConfineThread(ThreadRole::kVcpu)) v->RunLoop(buses, *shutdown_, describe, gate_.get());
    });
  }
  absl::Status placed = PlaceThreads();
  if (!placed.ok()) shutdown_->Request(kExitVmmError, std::string(placed.message()));
  start_time_ = std::chrono::steady_clock::now();
  started_ = true;
  gate_->Open();
  if (ConfineThread(ThreadRole::kMain) && seccomp_ != SeccompMode::kOff) {
    LOG_INFO("vmm", "seccomp filters installed (--seccomp %s)", SeccompModeName(seccomp_));
  }
  shutdown_->Wait();
  StopThreads();
  if (signal_fd) (void)event_loop_->Remove(signal_fd.get());
  ExitStatus status = shutdown_->status();
  LOG_INFO("vmm", "stopped: %s (exit code %d)", status.reason, status.code);
  return status;
}

absl::Status Machine::PlaceThreads() {
  const PlacementOptions& placement = config_.placement;
  for (const VcpuAffinity& pin : placement.vcpu_affinity) {
    RETURN_IF_ERROR(PinThread(vcpu_threads_[pin.vcpu].native_handle(), pin.host_cpus,
                              absl::StrFormat("vCPU %u", pin.vcpu)));
    LOG_INFO("vmm", "vCPU %u pinned to host CPUs %s", pin.vcpu, FormatCpuList(pin.host_cpus));
  }
  if (placement.rt_priority) {
    for (size_t i = 0; i < vcpu_threads_.size(); ++i) {
      RETURN_IF_ERROR(SetRealtimePriority(vcpu_threads_[i].native_handle(),
                                          *placement.rt_priority,
                                          absl::StrFormat("vCPU %u", i)));
    }
    LOG_INFO("vmm", "vCPU threads run SCHED_FIFO at priority %d", *placement.rt_priority);
  }
  if (placement.io_affinity) {
    RETURN_IF_ERROR(PinThread(io_thread_.native_handle(), *placement.io_affinity, "I/O thread"));
    LOG_INFO("vmm", "I/O thread pinned to host CPUs %s", FormatCpuList(*placement.io_affinity));
  }
  return absl::OkStatus();
}

absl::Status Machine::Pause() {
  if (!started_ || !gate_) return absl::FailedPreconditionError("the VM has not started yet");
  if (shutdown_->requested()) return absl::FailedPreconditionError("the VM is stopping");
  gate_->Close();
  for (auto& vcpu : vcpus_) vcpu->Kick();
  if (!gate_->WaitAllParked(kPauseTimeout)) {
    gate_->Open();
    return absl::DeadlineExceededError(absl::StrFormat(
        "not every vCPU left KVM_RUN within %s; the VM keeps running",
        absl::FormatDuration(kPauseTimeout)));
  }
  LOG_INFO("control", "paused: %u vCPU(s) parked", gate_->parked());
  return absl::OkStatus();
}

absl::Status Machine::Resume() {
  if (!started_ || !gate_) return absl::FailedPreconditionError("the VM has not started yet");
  gate_->Open();
  LOG_INFO("control", "resumed");
  return absl::OkStatus();
}

bool Machine::paused() const { return started_ && gate_ && gate_->closed(); }

absl::StatusOr<std::string> Machine::PressPowerButton() {
  if (paused()) {
    return absl::FailedPreconditionError(
        "the VM is paused, so the guest cannot act on its power button: resume it first, or "
        "use shutdown --force");
  }
  return arch::PressPowerButton(*this);
}

double Machine::UptimeSeconds() const {
  if (!started_) return 0;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time_).count();
}

void Machine::SetFirstKvmRunHook(std::function<void()> hook) {
  if (!vcpus_.empty()) vcpus_.front()->SetFirstRunHook(std::move(hook));
}

bool Machine::ConfineThread(ThreadRole role) {
  absl::Status status = InstallSeccompFilter(role, seccomp_);
  if (status.ok()) return true;
  shutdown_->Request(kExitVmmError, std::string(status.message()));
  return false;
}

void Machine::StopThreads() {
  if (shutdown_) shutdown_->Request(kExitVmmError, "Skiff is shutting down");
  if (gate_) gate_->Release();
  for (auto& vcpu : vcpus_) vcpu->Kick();
  for (auto& t : vcpu_threads_) {
    if (t.joinable()) t.join();
  }
  vcpu_threads_.clear();
  if (event_loop_) event_loop_->Stop();
  if (io_thread_.joinable()) io_thread_.join();
}

}  // namespace skiff

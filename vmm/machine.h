// A whole virtual machine: owns KVM handles, guest RAM, buses, devices,
// the I/O thread and the vCPU threads. Create() sets everything up and
// starts nothing; Run() starts the threads, waits for a stop, joins them
// all in one place and returns the process exit code.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "arch/arch.h"
#include "devices/vfio/fsl_mc/fsl_mc_container.h"
#include "vmm/bus.h"
#include "vmm/config.h"
#include "vmm/console.h"
#include "vmm/control_server.h"
#include "vmm/event_loop.h"
#include "vmm/guest_ram.h"
#include "vmm/irq_routing.h"
#include "vmm/kvm_msi.h"
#include "vmm/kvm.h"
#include "vmm/seccomp.h"
#include "vmm/kvm_vfio.h"
#include "vmm/shutdown.h"
#include "vmm/vcpu.h"
#include "vmm/vcpu_gate.h"
#include "vmm/vm.h"

namespace skiff {
namespace pci {
class PciRoot;
}
namespace vfio {
class VfioContainer;
}

class Machine {
 public:
  static absl::StatusOr<std::unique_ptr<Machine>> Create(const VmConfig& config);
  explicit Machine(Kvm kvm) : kvm_(std::move(kvm)) {}
  ~Machine();

  // Blocks until the guest or the user stops the VM.
  ExitStatus Run();

  // Control (the --api-socket commands; callable from any thread once Run
  // started the vCPUs). Pause returns once every vCPU is parked outside
  // KVM_RUN; it fails if they do not all stop within a few seconds.
  absl::Status Pause();
  absl::Status Resume();
  bool paused() const;
  // Asks the guest for an orderly poweroff (arch::PressPowerButton); says
  // which button it pressed.
  absl::StatusOr<std::string> PressPowerButton();
  // The platform's power button, if it has one: set by arch::SetupPlatform.
  void set_power_button(std::function<void()> press) { power_button_ = std::move(press); }
  const std::function<void()>& power_button() const { return power_button_; }
  // Seconds since Run started the vCPUs (0 before).
  double UptimeSeconds() const;
  // Host thread id of the I/O thread (0 before Run).
  pid_t io_thread_tid() const { return io_tid_.load(); }
  const std::vector<std::unique_ptr<Vcpu>>& vcpus() const { return vcpus_; }
  const VmConfig& config() const { return config_; }

  // Called once, on vCPU 0's thread, right before the guest first runs.
  // Set before Run().
  void SetFirstKvmRunHook(std::function<void()> hook);

  const Kvm& kvm() const { return kvm_; }
  Vm& vm() { return *vm_; }
  const GuestMemory& memory() const { return ram_.memory(); }
  Bus& pio_bus() { return pio_bus_; }
  Bus& mmio_bus() { return mmio_bus_; }
  EventLoop& event_loop() { return *event_loop_; }
  Shutdown& shutdown() { return *shutdown_; }
  Console& console() { return *console_; }
  uint32_t num_cpus() const { return static_cast<uint32_t>(vcpus_.size()); }
  MsiAllocator& msi_allocator() { return *msi_allocator_; }
  // A level-triggered line on `gsi` for a device model (irqfd + resample
  // where KVM has it, KVM_IRQ_LINE otherwise).
  absl::StatusOr<std::shared_ptr<IrqLine>> MakeLevelIrqLine(uint32_t gsi);
  // KVM_IRQFD with a resample fd works here (level-triggered irqfds).
  bool irqfd_resample() const { return irqfd_resample_; }
  // The KVM-VFIO device, kept for the VM's lifetime once a group exists.
  void SetKvmVfioDevice(std::unique_ptr<KvmVfioDevice> device) { kvm_vfio_ = std::move(device); }
  // The VFIO container of the passed-through devices: held until the
  // KVM-VFIO device has let go of its groups at teardown, so that guest
  // RAM leaves the IOMMU and the groups are released after every device
  // is stopped and before guest RAM is unmapped (see ~Machine).
  void KeepVfioContainer(std::shared_ptr<vfio::VfioContainer> container) {
    vfio_container_ = std::move(container);
  }

  // fsl-mc containers passed through (ARM64), opened before KVM set-up;
  // the arm64 platform code attaches them and describes them in the
  // device tree. Destroyed before the buses, the VM and the VFIO container.
  void AddFslMcContainer(std::unique_ptr<vfio::fsl_mc::FslMcContainer> mc) {
    fsl_mc_.push_back(std::move(mc));
  }
  const std::vector<std::unique_ptr<vfio::fsl_mc::FslMcContainer>>& fsl_mc_containers() const {
    return fsl_mc_;
  }

  // Kernel command-line words Skiff itself needs (device announcements);
  // they go before the user's --cmdline so arguments after "--" stay last.
  void AddKernelArg(std::string arg) { kernel_args_.push_back(std::move(arg)); }
  // The command line the guest gets: Skiff's words, then the user's.
  std::string KernelCmdline(const std::string& user_cmdline) const;

  // virtio-mmio devices placed so far, for the platform description.
  const std::vector<arch::MmioSlot>& virtio_mmio_slots() const { return virtio_mmio_slots_; }
  void AddVirtioMmioSlot(const arch::MmioSlot& slot) { virtio_mmio_slots_.push_back(slot); }
  // The PCI root complex, made on first use (a machine with no PCI device
  // has no PCI host bridge at all); null until then.
  pci::PciRoot* pci_root() const { return pci_root_.get(); }
  absl::StatusOr<pci::PciRoot*> GetOrCreatePciRoot();

 private:
  void StopThreads();
  // Pins the vCPU and I/O threads and sets their scheduling (--cpus
  // affinity=, --io-affinity, --rt-priority); before the first KVM_RUN.
  absl::Status PlaceThreads();

  VmConfig config_;

  // Installs `role`'s seccomp filter on the calling thread; on failure asks
  // for a shutdown and returns false.
  bool ConfineThread(ThreadRole role);

  Kvm kvm_;
  SeccompMode seccomp_ = SeccompMode::kOn;
  std::unique_ptr<Vm> vm_;
  GuestRam ram_;
  Bus pio_bus_{"port I/O"};
  Bus mmio_bus_{"MMIO"};
  std::unique_ptr<Shutdown> shutdown_;
  std::unique_ptr<EventLoop> event_loop_;
  std::unique_ptr<IrqRouting> irq_routing_;
  std::unique_ptr<KvmMsiAllocator> msi_allocator_;
  bool irqfd_resample_ = false;
  std::vector<std::string> kernel_args_;
  std::vector<arch::MmioSlot> virtio_mmio_slots_;
  std::unique_ptr<KvmVfioDevice> kvm_vfio_;
  std::shared_ptr<vfio::VfioContainer> vfio_container_;
  std::vector<std::unique_ptr<vfio::fsl_mc::FslMcContainer>> fsl_mc_;
  std::shared_ptr<pci::PciRoot> pci_root_;
  std::unique_ptr<Console> console_;
  std::vector<std::unique_ptr<Vcpu>> vcpus_;
  std::thread io_thread_;
  std::vector<std::thread> vcpu_threads_;
  std::unique_ptr<VcpuGate> gate_;
  std::atomic<pid_t> io_tid_{0};
  // Set once gate_ and start_time_ are in place: other threads (the control
  // socket's) read those only after seeing it true.
  std::atomic<bool> started_{false};
  std::chrono::steady_clock::time_point start_time_;
  std::function<void()> power_button_;
  // Declared last: it is destroyed first, while the loop it uses still exists.
  std::unique_ptr<VmControl> control_target_;
  std::unique_ptr<ControlServer> control_;
};

}  // namespace skiff

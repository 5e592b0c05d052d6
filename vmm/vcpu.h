// One virtual CPU: its fd, its kvm_run mapping and the thread that runs it.
#pragma once

#include <linux/kvm.h>
#include <pthread.h>

#include <atomic>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "vmm/exit_handler.h"
#include "vmm/mapping.h"
#include "vmm/shutdown.h"
#include "vmm/unique_fd.h"
#include "vmm/vcpu_gate.h"
#include "vmm/vm.h"

namespace skiff {

class Vcpu {
 public:
  static absl::StatusOr<std::unique_ptr<Vcpu>> Create(const Vm& vm,
                                                      uint32_t index,
                                                      size_t mmap_size);
  Vcpu(uint32_t index, UniqueFd fd, Mapping run)
      : index_(index), fd_(std::move(fd)), run_(std::move(run)) {}

  uint32_t index() const { return index_; }
  int fd() const { return fd_.get(); }
  kvm_run* run() const { return reinterpret_cast<kvm_run*>(run_.data()); }

  // Runs the guest until `shutdown` is requested, on the calling thread.
  // A stop decided here (poweroff, crash) is reported through `shutdown`;
  // `describe` completes crash reasons with register state. With a `gate`,
  // the thread passes it before every KVM_RUN (the first one included):
  // that is where it waits to be pinned and parks while the VM is paused.
  void RunLoop(const ExitBuses& buses, Shutdown& shutdown,
               const std::function<std::string(const Vcpu&)>& describe,
               VcpuGate* gate = nullptr);

  // From any thread: make KVM_RUN return soon (immediate_exit + a signal).
  void Kick();

  // The kick signal: every thread but vCPU threads keeps it blocked.
  static int KickSignal();
  // Installs the (empty) kick handler; call once before starting threads.
  static void InstallKickHandler();

  // Called on the vCPU thread right before its first KVM_RUN (the boot
  // timeline's milestone). Set before the thread starts.
  void SetFirstRunHook(std::function<void()> hook) { first_run_hook_ = std::move(hook); }

  // The host thread id (for `info`, affinity and logs); 0 before start.
  pid_t host_tid() const { return host_tid_.load(); }

 private:
  uint32_t index_;
  UniqueFd fd_;
  Mapping run_;
  std::atomic<bool> thread_started_{false};
  pthread_t thread_{};
  std::atomic<pid_t> host_tid_{0};
  std::function<void()> first_run_hook_;
};

}  // namespace skiff

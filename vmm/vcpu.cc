#include "vmm/vcpu.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/exit_codes.h"
#include "vmm/log.h"

namespace skiff {

absl::StatusOr<std::unique_ptr<Vcpu>> Vcpu::Create(const Vm& vm,
                                                   uint32_t index,
                                                   size_t mmap_size) {
  UniqueFd fd(::ioctl(vm.fd(), KVM_CREATE_VCPU, index));
  if (!fd) {
    return absl::InternalError(absl::StrFormat(
        "KVM_CREATE_VCPU %u: %s", index, std::strerror(errno)));
  }
  void* run = ::mmap(nullptr, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                     fd.get(), 0);
  if (run == MAP_FAILED) {
    return absl::InternalError(absl::StrFormat("mmap of vCPU %u run area: %s",
                                               index, std::strerror(errno)));
  }
  return std::make_unique<Vcpu>(index, std::move(fd), Mapping(run, mmap_size));
}

int Vcpu::KickSignal() { return SIGUSR1; }

void Vcpu::InstallKickHandler() {
  struct sigaction action {};
  action.sa_handler = [](int) {};  // only to interrupt KVM_RUN
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
  sigaction(KickSignal(), &action, nullptr);
}

void Vcpu::RunLoop(const ExitBuses& buses, Shutdown& shutdown,
                   const std::function<std::string(const Vcpu&)>& describe, VcpuGate* gate) {
  thread_ = pthread_self();
  host_tid_ = static_cast<pid_t>(::syscall(SYS_gettid));
  thread_started_ = true;
  sigset_t kick;
  sigemptyset(&kick);
  sigaddset(&kick, KickSignal());
  pthread_sigmask(SIG_UNBLOCK, &kick, nullptr);

  kvm_run* run = this->run();
  bool first = true;
  while (!shutdown.requested()) {
    // A pause closes the gate and kicks us (immediate_exit + signal): the
    // KVM_RUN below returns EINTR and we park here until resumed. The check
    // comes after immediate_exit was cleared, so a kick that lands between
    // the two is never lost: its immediate_exit ends the next KVM_RUN.
    if (gate != nullptr && !gate->WaitWhileClosed()) break;
    if (shutdown.requested()) break;
    // After the gate: a VM paused before it ever ran logs its first
    // KVM_RUN when it really comes.
    if (first && first_run_hook_) first_run_hook_();
    first = false;
    if (::ioctl(fd_.get(), KVM_RUN, 0) < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        run->immediate_exit = 0;
        continue;
      }
      shutdown.Request(kExitVmmError,
                       absl::StrFormat("vCPU %u: KVM_RUN failed: %s", index_,
                                       std::strerror(errno)));
      break;
    }
    ExitOutcome outcome = HandleExit(*run, buses);
    if (outcome.kind == ExitOutcome::Kind::kStop) {
      std::string reason = outcome.reason;
      if (outcome.describe_cpu && describe) {
        reason += "; " + describe(*this);
      }
      if (shutdown.Request(outcome.exit_code,
                           absl::StrFormat("vCPU %u: %s", index_, reason))) {
        LOG_INFO("vcpu", "vCPU %u stops: %s", index_, reason);
      }
      break;
    }
  }
  if (gate != nullptr) gate->ThreadExited();
}

void Vcpu::Kick() {
  run()->immediate_exit = 1;
  if (thread_started_) pthread_kill(thread_, KickSignal());
}

}  // namespace skiff

// Where vCPU threads park while the VM is paused (the control socket's
// `pause`), and where they wait before their first KVM_RUN until the main
// thread has pinned them (--cpus affinity=, --rt-priority).
//
// The controller closes the gate and kicks every vCPU out of KVM_RUN
// (Vcpu::Kick: immediate_exit + a signal); each vCPU thread calls
// WaitWhileClosed() between two KVM_RUNs and blocks there on a condition
// variable (no busy wait) until the gate opens or the VM stops. The
// controller learns when all of them are parked with WaitAllParked().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "absl/time/time.h"

namespace skiff {

class VcpuGate {
 public:
  // `vcpus` threads will pass through the gate. It starts closed when
  // `closed`, so threads wait before their first KVM_RUN.
  explicit VcpuGate(uint32_t vcpus, bool closed = false);

  // vCPU side: blocks while the gate is closed and not released. Returns
  // false once Release() was called (the VM is stopping).
  bool WaitWhileClosed();
  // vCPU side: the calling vCPU thread will not pass the gate again.
  void ThreadExited();

  // Controller side.
  void Close();
  void Open();
  // Waits until every vCPU thread that has not exited is parked in
  // WaitWhileClosed; false on timeout.
  bool WaitAllParked(absl::Duration timeout);
  // Lets every parked thread out for good (shutdown); WaitWhileClosed
  // returns false from now on.
  void Release();

  bool closed() const;
  uint32_t parked() const;

 private:
  const uint32_t vcpus_;
  mutable std::mutex mutex_;
  std::condition_variable vcpu_cv_;        // the gate opened or was released
  std::condition_variable controller_cv_;  // a thread parked or exited
  // Written under mutex_; read without it on the vCPU fast path.
  std::atomic<bool> closed_;
  std::atomic<bool> released_{false};  // also read on the fast path
  uint32_t parked_ = 0;
  uint32_t exited_ = 0;
};

}  // namespace skiff

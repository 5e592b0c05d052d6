#include "vmm/vcpu_gate.h"

#include <chrono>

namespace skiff {

VcpuGate::VcpuGate(uint32_t vcpus, bool closed) : vcpus_(vcpus), closed_(closed) {}

bool VcpuGate::WaitWhileClosed() {
  // Called between every two KVM_RUNs: an open gate costs one atomic load.
  if (!closed_.load(std::memory_order_acquire) && !released_.load(std::memory_order_acquire)) {
    return true;
  }
  std::unique_lock lock(mutex_);
  if (!closed_ || released_) return !released_;  // changed since the fast path
  ++parked_;
  controller_cv_.notify_all();
  vcpu_cv_.wait(lock, [this] { return !closed_ || released_; });
  --parked_;
  return !released_;
}

void VcpuGate::ThreadExited() {
  {
    std::lock_guard lock(mutex_);
    ++exited_;
  }
  controller_cv_.notify_all();
}

void VcpuGate::Close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
}

void VcpuGate::Open() {
  {
    std::lock_guard lock(mutex_);
    closed_ = false;
  }
  vcpu_cv_.notify_all();
}

bool VcpuGate::WaitAllParked(absl::Duration timeout) {
  std::unique_lock lock(mutex_);
  return controller_cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                                 [this] { return released_ || parked_ + exited_ >= vcpus_; });
}

void VcpuGate::Release() {
  {
    std::lock_guard lock(mutex_);
    released_ = true;
  }
  vcpu_cv_.notify_all();
  controller_cv_.notify_all();
}

bool VcpuGate::closed() const { return closed_.load(std::memory_order_acquire); }

uint32_t VcpuGate::parked() const {
  std::lock_guard lock(mutex_);
  return parked_;
}

}  // namespace skiff

// Fakes for virtio-net tests: a packet port standing in for a tap queue, an
// interrupt that counts what the device signalled, and an ioctl runner that
// records vhost requests. Thread-safe, for tests that run the event loop.
#pragma once

#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "devices/net/packet_port.h"
#include "devices/virtio/vhost_net.h"
#include "devices/virtio/virtio_device.h"
#include "vmm/unique_fd.h"

namespace skiff::net::testing {

class FakePacketPort final : public PacketPort {
 public:
  FakePacketPort() : event_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

  // Test side: a frame (virtio-net header first) the "tap" will deliver.
  // The fd polls readable while any frame is queued, like a tap queue.
  void QueueFrame(std::vector<uint8_t> frame) {
    std::lock_guard lock(mutex_);
    incoming_.push_back(std::move(frame));
    const uint64_t one = 1;
    (void)!::write(event_.get(), &one, sizeof(one));
  }
  std::vector<std::vector<uint8_t>> written() const {
    std::lock_guard lock(mutex_);
    return written_;
  }
  size_t queued() const {
    std::lock_guard lock(mutex_);
    return incoming_.size();
  }
  int reads() const {
    std::lock_guard lock(mutex_);
    return reads_;
  }
  std::vector<unsigned> offloads() const {
    std::lock_guard lock(mutex_);
    return offloads_;
  }
  std::optional<bool> enabled() const {
    std::lock_guard lock(mutex_);
    return enabled_;
  }
  void FailReads(bool fail) {
    std::lock_guard lock(mutex_);
    fail_reads_ = fail;
  }
  void FailWrites(bool fail) {
    std::lock_guard lock(mutex_);
    fail_writes_ = fail;
  }

  int fd() const override { return event_.get(); }

  absl::StatusOr<std::optional<size_t>> ReadPacket(std::span<const iovec> iov) override {
    std::lock_guard lock(mutex_);
    ++reads_;
    if (fail_reads_) return absl::InternalError("fake tap: read: File descriptor in bad state");
    if (incoming_.empty()) return std::nullopt;
    const std::vector<uint8_t> frame = std::move(incoming_.front());
    incoming_.pop_front();
    if (incoming_.empty()) {
      uint64_t value;
      (void)!::read(event_.get(), &value, sizeof(value));
    }
    size_t done = 0;  // truncates like a tap when iov is short
    for (const iovec& v : iov) {
      const size_t n = std::min(v.iov_len, frame.size() - done);
      if (n == 0) break;  // memcpy from an empty frame's null data() is UB
      std::memcpy(v.iov_base, frame.data() + done, n);
      done += n;
    }
    return done;
  }

  absl::Status WritePacket(std::span<const iovec> iov) override {
    std::lock_guard lock(mutex_);
    if (fail_writes_) return absl::UnavailableError("fake tap: write refused");
    std::vector<uint8_t> frame;
    for (const iovec& v : iov) {
      const auto* bytes = static_cast<const uint8_t*>(v.iov_base);
      frame.insert(frame.end(), bytes, bytes + v.iov_len);
    }
    written_.push_back(std::move(frame));
    return absl::OkStatus();
  }

  absl::Status SetOffload(unsigned tun_flags) override {
    std::lock_guard lock(mutex_);
    offloads_.push_back(tun_flags);
    return absl::OkStatus();
  }

  absl::Status SetQueueEnabled(bool enabled) override {
    std::lock_guard lock(mutex_);
    enabled_ = enabled;
    return absl::OkStatus();
  }

 private:
  UniqueFd event_;
  mutable std::mutex mutex_;
  std::deque<std::vector<uint8_t>> incoming_;
  std::vector<std::vector<uint8_t>> written_;
  std::vector<unsigned> offloads_;
  std::optional<bool> enabled_;  // never set
  int reads_ = 0;
  bool fail_reads_ = false;
  bool fail_writes_ = false;
};

class FakeNetInterrupt final : public virtio::VirtioInterrupt {
 public:
  void NotifyQueue(uint16_t queue) override {
    std::lock_guard lock(mutex_);
    ++notified_[queue];
  }
  void NotifyConfigChange() override {}
  void NeedsReset() override {
    std::lock_guard lock(mutex_);
    needs_reset_ = true;
  }
  int QueueIrqFd(uint16_t queue) override {
    std::lock_guard lock(mutex_);
    auto it = irq_fds_.find(queue);
    return it == irq_fds_.end() ? -1 : it->second;
  }

  int notified(uint16_t queue) const {
    std::lock_guard lock(mutex_);
    auto it = notified_.find(queue);
    return it == notified_.end() ? 0 : it->second;
  }
  bool needs_reset() const {
    std::lock_guard lock(mutex_);
    return needs_reset_;
  }
  void SetIrqFd(uint16_t queue, int fd) {
    std::lock_guard lock(mutex_);
    irq_fds_[queue] = fd;
  }

 private:
  mutable std::mutex mutex_;
  std::map<uint16_t, int> notified_;
  std::map<uint16_t, int> irq_fds_;
  bool needs_reset_ = false;
};

// Records every ioctl: its fd, request number and argument bytes (for
// VHOST_SET_MEM_TABLE the whole table). Answers VHOST_GET_FEATURES with
// `features`; fails `fail_request` with EINVAL.
class FakeIoctl final : public virtio::IoctlRunner {
 public:
  struct Call {
    int fd;
    unsigned long request;
    std::vector<uint8_t> arg;
  };

  explicit FakeIoctl(uint64_t features) : features_(features) {}

  int Ioctl(int fd, unsigned long request, void* arg) override {
    std::lock_guard lock(mutex_);
    size_t size = _IOC_SIZE(request);
    if (request == virtio::VhostSetMemTableRequest()) {
      virtio::VhostMemoryHeader header;
      std::memcpy(&header, arg, sizeof(header));
      size = sizeof(header) + header.nregions * 4 * sizeof(uint64_t);
    }
    Call call{fd, request, {}};
    if (arg != nullptr && (_IOC_DIR(request) & _IOC_WRITE)) {
      const auto* bytes = static_cast<const uint8_t*>(arg);
      call.arg.assign(bytes, bytes + size);
    }
    calls_.push_back(std::move(call));
    if (fail_request_ && *fail_request_ == request) return EINVAL;
    // The only vhost request that reads back: VHOST_GET_FEATURES.
    if (arg != nullptr && _IOC_DIR(request) == _IOC_READ && size == sizeof(features_)) {
      std::memcpy(arg, &features_, sizeof(features_));
    }
    return 0;
  }

  std::vector<Call> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  void Clear() {
    std::lock_guard lock(mutex_);
    calls_.clear();
  }
  void FailRequest(unsigned long request) {
    std::lock_guard lock(mutex_);
    fail_request_ = request;
  }

 private:
  mutable std::mutex mutex_;
  uint64_t features_;
  std::optional<unsigned long> fail_request_;
  std::vector<Call> calls_;
};

}  // namespace skiff::net::testing

// The device side of virtio, independent of the transport (virtio 1.2 §2, §4).
//
// A VirtioDevice knows its features, its configuration space and what to do
// with its queues. The transports (virtio-mmio, virtio-pci) own the register
// state machine, the notification eventfds and the interrupt, and hand the
// device everything it needs in one ActivationContext when the driver sets
// DRIVER_OK. Devices never issue KVM ioctls and never learn their transport.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "devices/virtio/queue_config.h"
#include "vmm/event_loop.h"
#include "vmm/guest_memory.h"

namespace skiff::virtio {

// How a device reaches the driver. Implemented by each transport; any thread.
class VirtioInterrupt {
 public:
  virtual ~VirtioInterrupt() = default;
  // Used buffers were added to `queue` (the device already consulted
  // Virtqueue::ShouldNotify).
  virtual void NotifyQueue(uint16_t queue) = 0;
  // The device configuration changed (e.g. link status).
  virtual void NotifyConfigChange() = 0;
  // The device hit a malformed ring or another unrecoverable guest error:
  // sets DEVICE_NEEDS_RESET and tells the driver. The device stops using
  // its queues until it is reset.
  virtual void NeedsReset() = 0;
  // An eventfd that interrupts the driver for `queue` with no Skiff hop
  // (a KVM irqfd on the queue's MSI-X vector), or -1 when the transport has
  // none (then in-kernel back-ends such as vhost need a relay). Valid until
  // the device is reset.
  virtual int QueueIrqFd(uint16_t /*queue*/) { return -1; }
};

// One queue as handed to the device at activation.
struct ActivatedQueue {
  QueueConfig config;  // config.ready false: the driver did not enable it
  // An eventfd signalled on every driver notification of this queue (KVM
  // ioeventfd, or written by the transport when no ioeventfd exists). Owned
  // by the transport; valid until the device is reset.
  int notify_fd = -1;
};

struct ActivationContext {
  GuestMemory memory;
  uint64_t features = 0;               // what the driver accepted
  std::vector<ActivatedQueue> queues;  // one per num_queues(), by index
  std::shared_ptr<VirtioInterrupt> interrupt;
  EventLoop* event_loop = nullptr;     // where back-end work runs
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  // VIRTIO_ID_* from <linux/virtio_ids.h>.
  virtual uint32_t device_id() const = 0;
  // Everything offered, VIRTIO_F_VERSION_1 included.
  virtual uint64_t device_features() const = 0;
  virtual uint16_t num_queues() const = 0;
  virtual uint16_t max_queue_size() const { return 256; }
  // Device configuration space (§4.x "Device configuration layout").
  // Offsets past the end read as zero and ignore writes; any thread.
  virtual uint32_t config_size() const = 0;
  virtual void ReadConfig(uint32_t offset, std::span<uint8_t> data) = 0;
  virtual void WriteConfig(uint32_t /*offset*/, std::span<const uint8_t> /*data*/) {}

  // Called on a vCPU thread when the driver sets DRIVER_OK. Must be quick:
  // validate the queues, register notify_fds on the event loop, return.
  // An error makes the transport set DEVICE_NEEDS_RESET.
  virtual absl::Status Activate(ActivationContext context) = 0;
  // The driver wrote status 0 (or the transport failed): stop touching the
  // queues and guest memory, unregister from the event loop, drop the
  // context. When Reset returns, no back-end work for this device is
  // running or will run. Called on a vCPU thread; must not wait on I/O
  // beyond the request in flight.
  virtual void Reset() = 0;

  // For logs and errors: "virtio-blk (disk.img)".
  virtual std::string name() const = 0;
};

}  // namespace skiff::virtio

// The virtio-mmio transport, version 2 (virtio 1.2 §4.2.2): one 4 KiB
// register window on the MMIO bus in front of one VirtioDevice.
//
// The transport owns the register state machine, one notification eventfd
// per queue (a KVM ioeventfd on QUEUE_NOTIFY with the queue index as
// datamatch, so kicks skip Skiff entirely) and the interrupt status behind a
// level-triggered line. When the driver sets DRIVER_OK it hands the device
// everything in one ActivationContext and never touches queue state again
// until reset.
//
// The guest is hostile: only aligned 32-bit accesses reach the control
// registers (anything else reads zero / is ignored), QUEUE_SEL beyond the
// device's queues selects nothing, status moves only along the spec's
// transitions, and config-space accesses are range-checked before the device
// sees them.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "devices/virtio/virtio_device.h"
#include "vmm/bus.h"
#include "vmm/event_loop.h"
#include "vmm/guest_memory.h"
#include "vmm/io_event_registrar.h"
#include "vmm/irq_line.h"
#include "vmm/unique_fd.h"

namespace skiff::virtio {

// What a transport needs from the machine.
struct MmioTransportEnv {
  uint64_t base_gpa = 0;  // slot base on the MMIO bus (for ioeventfd addresses)
  GuestMemory memory;
  EventLoop* event_loop = nullptr;  // handed to the device at activation
  // May be null: then QUEUE_NOTIFY writes exit to Skiff and the transport
  // signals the queue's eventfd itself on the vCPU thread.
  IoEventRegistrar* ioevents = nullptr;
  std::shared_ptr<IrqLine> irq;  // level-triggered GSI line
};

// The size of one virtio-mmio register window.
inline constexpr uint64_t kVirtioMmioSlotSize = 0x1000;
// What VENDOR_ID reads: "SKIF" in little-endian ASCII.
inline constexpr uint32_t kVirtioMmioVendorId = 0x46494b53;

class MmioTransport : public BusDevice {
 public:
  // Makes the per-queue eventfds and registers them as ioeventfds (when
  // env.ioevents is set). Fails if the device or the irq line is missing or
  // the kernel refuses an eventfd or a registration.
  static absl::StatusOr<std::shared_ptr<MmioTransport>> Create(
      std::shared_ptr<VirtioDevice> device, MmioTransportEnv env);

  // Only Create can make the key; public so std::make_shared can call it.
  class Key {
    friend class MmioTransport;
    Key() = default;
  };
  MmioTransport(Key, std::shared_ptr<VirtioDevice> device, MmioTransportEnv env,
                std::vector<UniqueFd> notify_fds, uint64_t offered_features);

  // Resets an activated device first (so no back-end still polls our
  // eventfds), then unregisters the ioeventfds.
  ~MmioTransport() override;

  MmioTransport(const MmioTransport&) = delete;
  MmioTransport& operator=(const MmioTransport&) = delete;

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

  // What the driver is offered: the device's features minus those this
  // transport cannot honour (see kUnsupportedFeatures in the .cc).
  uint64_t offered_features() const { return offered_features_; }
  // The eventfd signalled when the driver kicks `queue` (-1 if out of range).
  int notify_fd(uint16_t queue) const;

 private:
  class Interrupt;
  struct QueueState {
    uint32_t num = 0;  // as written; validated at activation
    uint64_t desc = 0;
    uint64_t avail = 0;
    uint64_t used = 0;
    bool ready = false;
  };
  // Everything the guest can change, plus the interrupt status the I/O
  // thread raises. Shared with the Interrupt handed to the device, so the
  // device holds no reference to the transport (no ownership cycle).
  struct State {
    std::mutex mutex;
    std::shared_ptr<IrqLine> irq;
    uint8_t status = 0;
    uint32_t device_features_sel = 0;
    uint32_t driver_features_sel = 0;
    uint64_t driver_features = 0;
    uint32_t queue_sel = 0;
    std::vector<QueueState> queues;
    uint32_t interrupt_status = 0;
    uint32_t config_generation = 0;
    // Bumped on every reset: an Interrupt from an earlier activation is
    // inert, whatever a misbehaving device does with it.
    uint64_t epoch = 0;

    // Both with `mutex` held. The line follows interrupt_status != 0 and
    // is driven under the lock, so a racing raise and ack can never leave
    // it asserted with nothing pending.
    void RaiseLocked(uint32_t bits);
    void AckLocked(uint32_t bits);
    void SetNeedsResetLocked();
  };

  uint32_t ReadRegister(uint64_t offset);
  void WriteRegister(uint64_t offset, uint32_t value);
  void WriteStatus(uint8_t value);
  void ReadConfig(uint64_t offset, std::span<uint8_t> data);
  void WriteConfig(uint64_t offset, std::span<const uint8_t> data);
  void SignalNotify(uint32_t queue);
  // Status written as 0 (or the transport is going away).
  void ResetDevice();
  // DRIVER_OK: validated context, or why the queues cannot be activated.
  absl::StatusOr<ActivationContext> BuildActivationLocked();
  void DrainNotifyFds();

  const std::shared_ptr<VirtioDevice> device_;
  const MmioTransportEnv env_;
  const std::vector<UniqueFd> notify_fds_;
  const uint64_t offered_features_;
  const uint16_t max_queue_size_;
  const std::string name_;  // the device's, for logs (no device call under a lock)
  const std::shared_ptr<State> state_;
  // Serializes device->Activate and device->Reset (two vCPUs may write
  // STATUS at once). Never taken by the I/O thread, and state_->mutex is
  // never held across a call into the device: Reset may wait for back-end
  // work that is itself raising an interrupt.
  std::mutex lifecycle_mutex_;
  bool activated_ = false;  // guarded by lifecycle_mutex_
};

// The kernel command-line fragment announcing one device to Linux's
// virtio_mmio driver: "virtio_mmio.device=4K@0xd0000000:5".
std::string VirtioMmioCmdlineArg(uint64_t base, uint64_t size, uint32_t irq);

}  // namespace skiff::virtio

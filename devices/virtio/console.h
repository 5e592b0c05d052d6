// virtio-console (virtio 1.2 §5.3) with port 0 only (no MULTIPORT): the
// guest's hvc0, wired to Skiff's Console like the UART.
//
// transmitq (guest -> host): on each notification the event loop runs one
// bounded pass (kMaxChainsPerPass chains); a pass that hits the bound writes
// the notify eventfd again, so a chatty guest cannot starve other devices.
// Each chain's bytes (at most kMaxTransmitChainBytes) are copied out of
// guest memory and handed to the output sink.
//
// receiveq (host -> guest): the Console calls ReceiveInput on the I/O
// thread with typed bytes; they go into the buffers the driver posted. With
// no buffers (or before DRIVER_OK, or after reset) input is refused and
// stays in the Console; the input-ready callback fires when the driver
// posts buffers again (or the device is activated), so nothing polls.
//
// Thread model: one mutex guards everything, held by Activate, Reset, a
// whole transmit pass and a whole ReceiveInput, so Reset returns only when
// no work is running. Interrupt methods are called with it held: a
// VirtioInterrupt must not call back into the device.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "devices/virtio/queue.h"
#include "devices/virtio/virtio_device.h"

namespace skiff {
class Console;
}

namespace skiff::virtio {

using ConsoleOutputSink = std::function<void(std::span<const uint8_t>)>;

struct VirtioConsoleOptions {
  // Guest output (transmitq and emerg_wr). Called on the I/O thread for the
  // transmitq and on a vCPU thread for emerg_wr, with the device lock held:
  // it must not call back into the device.
  ConsoleOutputSink output;
  // Terminal size offered with VIRTIO_CONSOLE_F_SIZE (Console::window_size).
  uint16_t cols = 80;
  uint16_t rows = 24;
};

class VirtioConsole final : public VirtioDevice,
                            public std::enable_shared_from_this<VirtioConsole> {
  struct Passkey {};  // only Create makes one, so the device is always shared

 public:
  static constexpr uint16_t kReceiveQueue = 0;   // receiveq0
  static constexpr uint16_t kTransmitQueue = 1;  // transmitq0
  static constexpr uint16_t kQueueSize = 256;
  static constexpr int kMaxChainsPerPass = 64;
  // Linux sends at most 32 KiB per buffer; bytes past this bound in one
  // chain are dropped rather than buffered without limit.
  static constexpr uint32_t kMaxTransmitChainBytes = 64 * 1024;

  // Config space (struct virtio_console_config, little-endian).
  static constexpr uint32_t kConfigCols = 0;
  static constexpr uint32_t kConfigRows = 2;
  static constexpr uint32_t kConfigMaxNrPorts = 4;
  static constexpr uint32_t kConfigEmergWr = 8;
  static constexpr uint32_t kConfigSize = 12;

  static std::shared_ptr<VirtioConsole> Create(VirtioConsoleOptions options);
  VirtioConsole(Passkey, VirtioConsoleOptions options);
  ~VirtioConsole() override;

  uint32_t device_id() const override;
  uint64_t device_features() const override;
  uint16_t num_queues() const override { return 2; }
  uint16_t max_queue_size() const override { return kQueueSize; }
  uint32_t config_size() const override { return kConfigSize; }
  void ReadConfig(uint32_t offset, std::span<uint8_t> data) override;
  // Only emerg_wr is writable: a write starting at its offset outputs the
  // low byte, whatever the device state (the spec allows it before
  // DRIVER_OK, for early consoles).
  void WriteConfig(uint32_t offset, std::span<const uint8_t> data) override;
  absl::Status Activate(ActivationContext context) override;
  void Reset() override;
  std::string name() const override { return "virtio-console (hvc0)"; }

  // Typed input for the guest, with Console::InputSink's contract: returns
  // how many leading bytes went into receive buffers. I/O thread.
  size_t ReceiveInput(std::span<const uint8_t> bytes);
  // Called (without the device lock) when input was refused and receive
  // buffers may now be available. Typically Console::InputReady.
  void SetInputReadyCallback(std::function<void()> callback);
  // The host terminal changed size: updates the config space and, when
  // active, raises a configuration-change interrupt.
  void Resize(uint16_t cols, uint16_t rows);

  // One transmit pass, as the event loop runs it on a notification (the
  // eventfd is not read); public so tests can drive the device without a
  // loop thread. Does nothing when the device is not active.
  void ProcessTransmitQueue();

 private:
  // Everything an activation owns; gone on Reset.
  struct Active {
    GuestMemory memory;
    std::shared_ptr<VirtioInterrupt> interrupt;
    EventLoop* event_loop = nullptr;
    uint64_t features = 0;        // what the driver accepted
    std::optional<Virtqueue> rx;  // absent: the driver did not enable it
    std::optional<Virtqueue> tx;
    int rx_fd = -1;  // registered on event_loop when >= 0
    int tx_fd = -1;
    bool failed = false;  // NEEDS_RESET reported; queues are left alone
  };

  void OnReceiveNotify(uint64_t generation);
  void OnTransmitNotify(uint64_t generation);
  // With mutex_ held.
  void TransmitPassLocked(Active& active);
  absl::Status TransmitChainLocked(Active& active, const DescriptorChain& chain);
  size_t ReceiveLocked(Active& active, std::span<const uint8_t> bytes);
  void NotifyIfNeededLocked(Active& active, Virtqueue& queue, uint16_t index);
  void FailLocked(Active& active, const absl::Status& status);
  void UnregisterLocked(Active& active);
  std::function<void()> TakeInputReadyLocked();

  const ConsoleOutputSink output_;

  std::mutex mutex_;  // guards everything below
  uint16_t cols_;
  uint16_t rows_;
  std::optional<Active> active_;
  // Bumped on every Activate and Reset; a loop callback from an older
  // activation (dispatched just before Remove) finds a mismatch and leaves.
  uint64_t generation_ = 0;
  bool input_refused_ = false;
  std::function<void()> input_ready_;
  std::vector<uint8_t> transmit_buffer_;  // reused; at most kMaxTransmitChainBytes
  bool warned_oversized_ = false;
};

// Makes `device` the target of the console's typed input (instead of the
// UART) and lets it wake the console when the guest posts receive buffers.
// Both must outlive the VM's I/O thread.
void ConnectConsoleInput(Console& console, const std::shared_ptr<VirtioConsole>& device);

}  // namespace skiff::virtio

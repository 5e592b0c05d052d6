// How a virtio-pci device interrupts the driver (virtio 1.2 §4.1.4.5,
// §4.1.5.3-4): through the MSI-X vector the driver chose for the queue or
// for configuration changes while MSI-X is enabled, otherwise by setting a
// bit in the ISR status byte and asserting the level-triggered INTx line,
// which the driver's read of ISR clears.
//
// The transport owns one of these for the function's life, updates the
// vector choices and reads ISR. Each activation hands the device its own
// ForActivation() handle instead of this object: Reset() retires every
// handle issued before it, so a back-end completion still in flight on the
// I/O thread when the driver reset the device cannot set ISR, NEEDS_RESET
// or send an MSI on behalf of the next activation. Any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "devices/pci/msix_table.h"
#include "devices/virtio/virtio_device.h"
#include "vmm/irq_line.h"

namespace skiff::virtio {

inline constexpr uint16_t kNoVector = 0xffff;  // VIRTIO_MSI_NO_VECTOR
inline constexpr uint8_t kIsrQueue = 0x1;
inline constexpr uint8_t kIsrConfig = 0x2;

class VirtioPciInterrupt : public VirtioInterrupt,
                           public std::enable_shared_from_this<VirtioPciInterrupt> {
 public:
  // `msix` and `intx` may each be null (no MSI-X capability / no INTx pin).
  VirtioPciInterrupt(uint16_t num_queues, std::shared_ptr<pci::MsixTable> msix,
                     std::shared_ptr<IrqLine> intx);

  // VirtioInterrupt.
  void NotifyQueue(uint16_t queue) override;
  void NotifyConfigChange() override;
  void NeedsReset() override;
  int QueueIrqFd(uint16_t queue) override;

  // The interrupt for one activation: it acts as this object until the
  // next Reset(), then does nothing (QueueIrqFd: -1).
  std::shared_ptr<VirtioInterrupt> ForActivation();

  // Transport side.
  void SetQueueVector(uint16_t queue, uint16_t vector);
  void SetConfigVector(uint16_t vector);
  // The ISR status byte; reading it clears it and deasserts INTx.
  uint8_t ReadAndClearIsr();
  // PCI command bit 10: while set, INTx stays deasserted (ISR still counts).
  void SetIntxDisabled(bool disabled);
  // What the PCI status register's Interrupt Status bit shows.
  bool intx_pending() const;
  bool needs_reset() const { return needs_reset_.load(); }
  uint8_t config_generation() const { return config_generation_.load(); }
  // Back to the state after a device reset: no ISR bits, INTx deasserted,
  // NEEDS_RESET clear, no vectors chosen, every ForActivation() handle
  // retired. Once it returns, no retired handle's call is still running.
  void Reset();

 private:
  class Activation;

  // Sends `isr_bit`'s interrupt: MSI-X `vector` if MSI-X is on, else INTx.
  void Signal(uint8_t isr_bit, uint16_t vector);
  void UpdateLineLocked();

  const std::shared_ptr<pci::MsixTable> msix_;
  const std::shared_ptr<IrqLine> intx_;

  // Held by a handle's whole call and by Reset(), before mutex_.
  std::mutex activation_mutex_;
  uint64_t activation_epoch_ = 0;  // guarded by activation_mutex_
  std::vector<std::atomic<uint16_t>> queue_vectors_;
  std::atomic<uint16_t> config_vector_{kNoVector};
  std::atomic<bool> needs_reset_{false};
  std::atomic<uint8_t> config_generation_{0};

  mutable std::mutex mutex_;  // ISR and the INTx level change together
  uint8_t isr_ = 0;
  bool intx_disabled_ = false;
  bool line_asserted_ = false;
};

}  // namespace skiff::virtio

// A 16550A UART: the guest's first console on x86 (COM1) and an early
// console on ARM64.
//
// Register it as one 8-byte range (kRegisterCount). Transmission is
// instantaneous: a byte written to THR goes straight to the output sink (or,
// in loopback mode, back into the receiver), so THR and the transmitter are
// always empty as far as the guest can tell. Input arrives from the I/O
// thread through EnqueueInput() into a bounded receive buffer; when that
// buffer refuses input, the input-ready callback says when to try again, so
// the I/O thread never busy-polls and guest memory use never grows with host
// input.
//
// Multi-byte accesses touch only the register at `offset` (value in the low
// byte, upper bytes read as zero and are ignored on write): one access must
// not pop several received bytes. Offsets past the register file read 0xff.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>

#include "vmm/bus.h"
#include "vmm/irq_line.h"

namespace skiff {

class Serial16550 : public BusDevice {
 public:
  // Receives transmitted bytes. Called with the device lock held, so it must
  // not call back into this device; it should not block for long either (it
  // runs on a vCPU thread).
  using OutputSink = std::function<void(std::span<const uint8_t>)>;

  static constexpr uint64_t kRegisterCount = 8;     // bus registration length
  static constexpr size_t kInputBufferSize = 1024;  // receive buffer bound

  // `irq` is a level-triggered line; it is raised and lowered only on change.
  Serial16550(std::shared_ptr<IrqLine> irq, OutputSink sink);

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

  // Queues host input for the guest; returns how many leading bytes were
  // taken (fewer than offered when the buffer is full, none in loopback mode,
  // where the receiver is cut off from the outside). Bytes not taken stay
  // with the caller.
  size_t EnqueueInput(std::span<const uint8_t> bytes);

  // True when EnqueueInput would take at least one byte now.
  bool WantsInput();

  // Called (without the device lock) once room appears after input was
  // refused — EnqueueInput took less than offered or WantsInput said no.
  // "Room" means at least half the buffer, so the I/O thread is not woken
  // for every byte the guest reads. Typically it re-arms stdin polling.
  void SetInputReadyCallback(std::function<void()> callback);

 private:
  // Helpers run with mutex_ held.
  uint8_t ReadRegister(uint64_t offset);
  void WriteRegister(uint64_t offset, uint8_t value);
  void Transmit(uint8_t byte);
  void WriteModemControl(uint8_t value);
  void WriteFifoControl(uint8_t value);
  // The modem input lines (MSR bits 7:4) as the guest sees them now.
  uint8_t ModemLines() const;
  // The IIR identification code of the highest-priority pending interrupt.
  uint8_t PendingInterrupt() const;
  void UpdateIrq();
  bool loopback() const;
  // The callback to run after unlocking, if refused input now has room.
  std::function<void()> TakeInputReadyNotification();

  const std::shared_ptr<IrqLine> irq_;
  const OutputSink sink_;

  std::mutex mutex_;  // guards everything below
  std::deque<uint8_t> rx_;
  uint8_t last_rx_ = 0;
  uint8_t ier_ = 0;
  uint8_t lcr_ = 0;
  uint8_t mcr_ = 0;
  uint8_t scr_ = 0;
  uint8_t dll_ = 0x0c;  // 9600 baud at 1.8432 MHz
  uint8_t dlm_ = 0;
  uint8_t msr_deltas_ = 0;  // MSR bits 3:0
  bool fifo_enabled_ = false;
  bool overrun_ = false;
  bool thre_pending_ = false;
  bool irq_asserted_ = false;
  bool input_refused_ = false;
  std::function<void()> input_ready_;
};

}  // namespace skiff

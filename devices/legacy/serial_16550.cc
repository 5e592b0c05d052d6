#include "devices/legacy/serial_16550.h"

#include <algorithm>
#include <utility>

namespace skiff {
namespace {

// Register offsets. With LCR.DLAB set, offsets 0 and 1 are the divisor latch.
constexpr uint64_t kRbrThr = 0;  // DLL with DLAB
constexpr uint64_t kIer = 1;     // DLM with DLAB
constexpr uint64_t kIirFcr = 2;
constexpr uint64_t kLcr = 3;
constexpr uint64_t kMcr = 4;
constexpr uint64_t kLsr = 5;
constexpr uint64_t kMsr = 6;
constexpr uint64_t kScr = 7;

constexpr uint8_t kIerRxData = 0x01;       // ERBFI
constexpr uint8_t kIerThre = 0x02;         // ETBEI
constexpr uint8_t kIerLineStatus = 0x04;   // ELSI
constexpr uint8_t kIerModemStatus = 0x08;  // EDSSI
constexpr uint8_t kIerMask = 0x0f;         // bits 7:4 are always zero

// IIR identification codes, highest priority first.
constexpr uint8_t kIirLineStatus = 0x06;
constexpr uint8_t kIirRxData = 0x04;
constexpr uint8_t kIirThre = 0x02;
constexpr uint8_t kIirModemStatus = 0x00;
constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirFifoEnabled = 0xc0;

constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrClearRx = 0x02;

constexpr uint8_t kLcrDlab = 0x80;

constexpr uint8_t kMcrDtr = 0x01;
constexpr uint8_t kMcrRts = 0x02;
constexpr uint8_t kMcrOut1 = 0x04;
constexpr uint8_t kMcrOut2 = 0x08;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kMcrMask = 0x1f;

constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrOverrun = 0x02;
constexpr uint8_t kLsrThre = 0x20;
constexpr uint8_t kLsrTemt = 0x40;

constexpr uint8_t kMsrDeltaCts = 0x01;
constexpr uint8_t kMsrDeltaDsr = 0x02;
constexpr uint8_t kMsrTrailingRi = 0x04;
constexpr uint8_t kMsrDeltaDcd = 0x08;
constexpr uint8_t kMsrCts = 0x10;
constexpr uint8_t kMsrDsr = 0x20;
constexpr uint8_t kMsrRi = 0x40;
constexpr uint8_t kMsrDcd = 0x80;
// No cable and no modem: present a peer that is always ready with carrier,
// so a getty without CLOCAL does not wait forever for DCD.
constexpr uint8_t kMsrIdleLines = kMsrDcd | kMsrDsr | kMsrCts;

}  // namespace

Serial16550::Serial16550(std::shared_ptr<IrqLine> irq, OutputSink sink)
    : irq_(std::move(irq)), sink_(std::move(sink)) {}

void Serial16550::Read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  if (offset >= kRegisterCount) {
    std::fill(data.begin(), data.end(), 0xff);
    return;
  }
  std::fill(data.begin(), data.end(), 0);
  std::function<void()> ready;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    data[0] = ReadRegister(offset);
    UpdateIrq();
    ready = TakeInputReadyNotification();
  }
  if (ready) ready();
}

void Serial16550::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty() || offset >= kRegisterCount) return;
  std::function<void()> ready;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    WriteRegister(offset, data[0]);
    UpdateIrq();
    ready = TakeInputReadyNotification();
  }
  if (ready) ready();
}

size_t Serial16550::EnqueueInput(std::span<const uint8_t> bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  // In loopback mode the serial input pin is disconnected; keep the host's
  // bytes with the caller rather than mixing them into the guest's self-test.
  size_t room = loopback() ? 0 : kInputBufferSize - rx_.size();
  size_t taken = std::min(room, bytes.size());
  rx_.insert(rx_.end(), bytes.begin(), bytes.begin() + taken);
  if (taken < bytes.size()) input_refused_ = true;
  UpdateIrq();
  return taken;
}

bool Serial16550::WantsInput() {
  std::lock_guard<std::mutex> lock(mutex_);
  bool wants = !loopback() && rx_.size() < kInputBufferSize;
  if (!wants) input_refused_ = true;
  return wants;
}

void Serial16550::SetInputReadyCallback(std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  input_ready_ = std::move(callback);
}

uint8_t Serial16550::ReadRegister(uint64_t offset) {
  const bool dlab = lcr_ & kLcrDlab;
  switch (offset) {
    case kRbrThr:
      if (dlab) return dll_;
      if (!rx_.empty()) {
        last_rx_ = rx_.front();
        rx_.pop_front();
      }
      // An empty receiver still returns whatever the holding register last
      // held, as the hardware does.
      return last_rx_;
    case kIer:
      return dlab ? dlm_ : ier_;
    case kIirFcr: {
      uint8_t source = PendingInterrupt();
      // Reading IIR acknowledges a THRE interrupt, but only when THRE is
      // the source being reported (datasheet table 4; Linux relies on it).
      if (source == kIirThre) thre_pending_ = false;
      return source | (fifo_enabled_ ? kIirFifoEnabled : 0);
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr: {
      // THR and transmitter are always empty: output is instantaneous.
      uint8_t lsr = kLsrThre | kLsrTemt;
      if (!rx_.empty()) lsr |= kLsrDataReady;
      if (overrun_) lsr |= kLsrOverrun;
      overrun_ = false;  // error bits clear on read
      return lsr;
    }
    case kMsr: {
      uint8_t msr = ModemLines() | msr_deltas_;
      msr_deltas_ = 0;  // delta bits clear on read
      return msr;
    }
    case kScr:
      return scr_;
  }
  return 0xff;
}

void Serial16550::WriteRegister(uint64_t offset, uint8_t value) {
  const bool dlab = lcr_ & kLcrDlab;
  switch (offset) {
    case kRbrThr:
      if (dlab) {
        dll_ = value;
      } else {
        Transmit(value);
      }
      return;
    case kIer: {
      if (dlab) {
        dlm_ = value;
        return;
      }
      uint8_t enabled = value & kIerMask;
      // Enabling ETBEI while THR is empty raises a THRE interrupt even if an
      // earlier one was acknowledged; Linux's 8250 startup tests exactly this
      // (IER=THRI, IER=0, IER=THRI must re-assert) to decide whether the
      // port needs its "THRE bug" workaround timer.
      if ((enabled & kIerThre) && !(ier_ & kIerThre)) thre_pending_ = true;
      ier_ = enabled;
      return;
    }
    case kIirFcr:
      WriteFifoControl(value);
      return;
    case kLcr:
      lcr_ = value;
      return;
    case kMcr:
      WriteModemControl(value);
      return;
    case kLsr:
    case kMsr:
      return;  // status registers: writes are for factory test only
    case kScr:
      scr_ = value;
      return;
  }
}

void Serial16550::Transmit(uint8_t byte) {
  thre_pending_ = false;  // writing THR acknowledges THRE
  if (loopback()) {
    if (rx_.size() < kInputBufferSize) {
      rx_.push_back(byte);
    } else {
      overrun_ = true;  // the byte is lost, as on hardware
    }
  } else if (sink_) {
    sink_(std::span<const uint8_t>(&byte, 1));
  }
  // The byte left at once, so THR is empty again: a new THRE interrupt.
  thre_pending_ = true;
}

void Serial16550::WriteModemControl(uint8_t value) {
  uint8_t before = ModemLines();
  mcr_ = value & kMcrMask;
  uint8_t after = ModemLines();
  uint8_t changed = before ^ after;
  if (changed & kMsrCts) msr_deltas_ |= kMsrDeltaCts;
  if (changed & kMsrDsr) msr_deltas_ |= kMsrDeltaDsr;
  if (changed & kMsrDcd) msr_deltas_ |= kMsrDeltaDcd;
  // TERI reports only the trailing edge of ring indicate.
  if ((before & kMsrRi) && !(after & kMsrRi)) msr_deltas_ |= kMsrTrailingRi;
}

void Serial16550::WriteFifoControl(uint8_t value) {
  bool enable = value & kFcrEnable;
  // Switching FIFO mode on or off empties both FIFOs (datasheet, FCR0).
  if (enable != fifo_enabled_) rx_.clear();
  fifo_enabled_ = enable;
  // The other FCR bits are only latched while FCR0 is set. Clearing the
  // transmit FIFO has nothing to do: it is always empty.
  if (enable && (value & kFcrClearRx)) rx_.clear();
}

uint8_t Serial16550::ModemLines() const {
  if (!loopback()) return kMsrIdleLines;
  // Loopback wires the modem outputs to the inputs: RTS->CTS, DTR->DSR,
  // OUT1->RI, OUT2->DCD. Linux's autoconfig checks this mapping.
  uint8_t lines = 0;
  if (mcr_ & kMcrRts) lines |= kMsrCts;
  if (mcr_ & kMcrDtr) lines |= kMsrDsr;
  if (mcr_ & kMcrOut1) lines |= kMsrRi;
  if (mcr_ & kMcrOut2) lines |= kMsrDcd;
  return lines;
}

uint8_t Serial16550::PendingInterrupt() const {
  if ((ier_ & kIerLineStatus) && overrun_) return kIirLineStatus;
  // With no trigger levels or character timeouts to model, "data available"
  // covers both; Linux treats IIR 0x04 and 0x0c alike.
  if ((ier_ & kIerRxData) && !rx_.empty()) return kIirRxData;
  if ((ier_ & kIerThre) && thre_pending_) return kIirThre;
  if ((ier_ & kIerModemStatus) && msr_deltas_) return kIirModemStatus;
  return kIirNone;
}

void Serial16550::UpdateIrq() {
  bool pending = PendingInterrupt() != kIirNone;
  if (pending == irq_asserted_) return;
  irq_asserted_ = pending;
  if (irq_) irq_->SetLevel(pending);
}

bool Serial16550::loopback() const { return mcr_ & kMcrLoop; }

std::function<void()> Serial16550::TakeInputReadyNotification() {
  if (!input_refused_ || loopback() || rx_.size() > kInputBufferSize / 2) {
    return nullptr;
  }
  input_refused_ = false;
  return input_ready_;
}

}  // namespace skiff

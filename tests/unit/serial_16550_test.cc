#include "devices/legacy/serial_16550.h"

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/fake_irq_line.h"

namespace skiff {
namespace {

constexpr uint64_t kData = 0, kIer = 1, kIir = 2, kFcr = 2, kLcr = 3, kMcr = 4,
                   kLsr = 5, kMsr = 6, kScr = 7;

class Serial16550Test : public ::testing::Test {
 protected:
  Serial16550Test()
      : irq_(std::make_shared<FakeIrqLine>()),
        uart_(irq_, [this](std::span<const uint8_t> bytes) {
          std::lock_guard<std::mutex> lock(out_mutex_);
          out_.insert(out_.end(), bytes.begin(), bytes.end());
        }) {}

  uint8_t In(uint64_t offset) {
    uint8_t value = 0;
    uart_.Read(offset, std::span<uint8_t>(&value, 1));
    return value;
  }
  void Out(uint64_t offset, uint8_t value) {
    uart_.Write(offset, std::span<const uint8_t>(&value, 1));
  }
  size_t Enqueue(const std::vector<uint8_t>& bytes) {
    return uart_.EnqueueInput(bytes);
  }
  std::vector<uint8_t> output() {
    std::lock_guard<std::mutex> lock(out_mutex_);
    return out_;
  }

  std::shared_ptr<FakeIrqLine> irq_;
  std::mutex out_mutex_;
  std::vector<uint8_t> out_;
  Serial16550 uart_;
};

TEST_F(Serial16550Test, ResetStateIsIdle) {
  EXPECT_EQ(In(kIir), 0x01);  // no interrupt, FIFOs off
  EXPECT_EQ(In(kLsr), 0x60);  // THRE | TEMT
  EXPECT_EQ(In(kIer), 0x00);
  EXPECT_EQ(In(kMsr) & 0xf0, 0xb0);  // DCD | DSR | CTS
  EXPECT_EQ(irq_->set_level_calls(), 0u);
}

TEST_F(Serial16550Test, DivisorLatchRoundTrip) {
  Out(kIer, 0x05);
  Out(kLcr, 0x83);  // DLAB | 8N1
  Out(kData, 0x01);
  Out(kIer, 0x02);
  EXPECT_EQ(In(kData), 0x01);
  EXPECT_EQ(In(kIer), 0x02);
  EXPECT_EQ(In(kLcr), 0x83);
  Out(kLcr, 0x03);
  // Offsets 0/1 are THR/IER again; the latch did not clobber IER and the
  // divisor write did not transmit anything.
  EXPECT_EQ(In(kIer), 0x05);
  EXPECT_TRUE(output().empty());
  Out(kLcr, 0x83);
  EXPECT_EQ(In(kData), 0x01);
  EXPECT_EQ(In(kIer), 0x02);
}

TEST_F(Serial16550Test, ScratchRegisterHoldsAnyByte) {
  for (int v : {0x00, 0x55, 0xaa, 0xff}) {
    Out(kScr, static_cast<uint8_t>(v));
    EXPECT_EQ(In(kScr), v);
  }
}

TEST_F(Serial16550Test, IerKeepsOnlyLowNibble) {
  // Linux's existence test: IER=0x0f must read back 0x0f.
  Out(kIer, 0xff);
  EXPECT_EQ(In(kIer), 0x0f);
}

TEST_F(Serial16550Test, TransmittedBytesReachTheSink) {
  for (uint8_t c : {'h', 'i', '\n'}) Out(kData, c);
  EXPECT_EQ(output(), (std::vector<uint8_t>{'h', 'i', '\n'}));
  EXPECT_EQ(In(kLsr) & 0x60, 0x60);  // always ready for more
}

TEST_F(Serial16550Test, ReceivedDataSetsDataReady) {
  EXPECT_EQ(Enqueue({'a', 'b'}), 2u);
  EXPECT_EQ(In(kLsr) & 0x01, 0x01);
  EXPECT_EQ(In(kData), 'a');
  EXPECT_EQ(In(kLsr) & 0x01, 0x01);
  EXPECT_EQ(In(kData), 'b');
  EXPECT_EQ(In(kLsr) & 0x01, 0x00);
  // Without ERBFI the line never moved.
  EXPECT_EQ(irq_->set_level_calls(), 0u);
}

TEST_F(Serial16550Test, ReceiveInterruptOnlyWhenEnabled) {
  Enqueue({'x'});
  EXPECT_FALSE(irq_->level());
  Out(kIer, 0x01);  // ERBFI
  EXPECT_TRUE(irq_->level());
  EXPECT_EQ(In(kIir), 0x04);
  EXPECT_TRUE(irq_->level());  // reading IIR does not ack received data
  EXPECT_EQ(In(kData), 'x');
  EXPECT_FALSE(irq_->level());
  EXPECT_EQ(In(kIir), 0x01);
  EXPECT_EQ(irq_->levels(), (std::vector<bool>{true, false}));

  Enqueue({'y'});
  EXPECT_TRUE(irq_->level());
  Out(kIer, 0x00);
  EXPECT_FALSE(irq_->level());
}

TEST_F(Serial16550Test, IrqLevelChangesOnlyOnTransitions) {
  Out(kIer, 0x01);
  Enqueue({'1'});
  Enqueue({'2'});
  Enqueue({'3'});
  In(kLsr);
  In(kIir);
  In(kData);
  In(kData);
  EXPECT_EQ(irq_->levels(), (std::vector<bool>{true}));
  In(kData);
  In(kData);  // empty receiver: no further change
  EXPECT_EQ(irq_->levels(), (std::vector<bool>{true, false}));
}

TEST_F(Serial16550Test, ThreInterruptOnEnableAndAckByIirRead) {
  Out(kIer, 0x02);  // ETBEI while THR is empty
  EXPECT_TRUE(irq_->level());
  EXPECT_EQ(In(kIir), 0x02);
  EXPECT_FALSE(irq_->level());  // acknowledged by the IIR read
  EXPECT_EQ(In(kIir), 0x01);
  // Rewriting IER with ETBEI still set is no new edge.
  Out(kIer, 0x02);
  EXPECT_EQ(In(kIir), 0x01);
}

TEST_F(Serial16550Test, ThreReassertsWhenReenabled) {
  // Linux serial8250_do_startup: IER=THRI; read IIR; IER=0; IER=THRI; read
  // IIR. A real 16550 reports THRE both times.
  Out(kIer, 0x02);
  uint8_t iir1 = In(kIir);
  Out(kIer, 0x00);
  Out(kIer, 0x02);
  uint8_t iir2 = In(kIir);
  Out(kIer, 0x00);
  EXPECT_EQ(iir1 & 0x01, 0);
  EXPECT_EQ(iir2 & 0x01, 0);
  EXPECT_FALSE(irq_->level());
}

TEST_F(Serial16550Test, WritingThrAcksThenRaisesThre) {
  Out(kIer, 0x02);
  EXPECT_EQ(In(kIir), 0x02);
  EXPECT_FALSE(irq_->level());
  Out(kData, 'z');  // sent at once, THR empty again
  EXPECT_TRUE(irq_->level());
  EXPECT_EQ(In(kIir), 0x02);
  EXPECT_FALSE(irq_->level());
  EXPECT_EQ(output(), std::vector<uint8_t>{'z'});
}

TEST_F(Serial16550Test, ThreNotAckedWhenHigherPriorityReported) {
  Out(kIer, 0x03);  // ERBFI | ETBEI
  Enqueue({'r'});
  EXPECT_EQ(In(kIir), 0x04);  // receive data outranks THRE
  EXPECT_EQ(In(kIir), 0x04);
  EXPECT_EQ(In(kData), 'r');
  EXPECT_EQ(In(kIir), 0x02);  // THRE was not consumed by the reads above
  EXPECT_EQ(In(kIir), 0x01);
}

TEST_F(Serial16550Test, InterruptPriorities) {
  Out(kIer, 0x0f);
  // Cause all four: overrun via loopback, data, THRE, modem status deltas.
  Out(kMcr, 0x10);  // loop: modem lines drop -> deltas
  for (size_t i = 0; i < Serial16550::kInputBufferSize + 1; ++i) {
    Out(kData, 'L');
  }
  EXPECT_EQ(In(kIir), 0x06);         // line status (overrun) first
  EXPECT_EQ(In(kLsr) & 0x03, 0x03);  // OE | DR; OE clears on this read
  EXPECT_EQ(In(kIir), 0x04);         // then received data
  for (size_t i = 0; i < Serial16550::kInputBufferSize; ++i) In(kData);
  EXPECT_EQ(In(kIir), 0x02);  // then THRE, acked by this read
  EXPECT_EQ(In(kIir), 0x00);  // then modem status
  EXPECT_TRUE(irq_->level());
  In(kMsr);
  EXPECT_EQ(In(kIir), 0x01);
  EXPECT_FALSE(irq_->level());
}

TEST_F(Serial16550Test, FifoEnableShowsInIir) {
  Out(kFcr, 0x01);
  EXPECT_EQ(In(kIir), 0xc1);
  Out(kFcr, 0x07);  // enable + clear RX/TX
  EXPECT_EQ(In(kIir), 0xc1);
  Out(kFcr, 0x00);
  EXPECT_EQ(In(kIir), 0x01);
}

TEST_F(Serial16550Test, FcrClearsReceiver) {
  Out(kFcr, 0x01);
  Enqueue({'a', 'b', 'c'});
  Out(kFcr, 0x03);  // clear RX
  EXPECT_EQ(In(kLsr) & 0x01, 0);
  Enqueue({'d'});
  Out(kFcr, 0x00);  // leaving FIFO mode empties the FIFOs too
  EXPECT_EQ(In(kLsr) & 0x01, 0);
}

TEST_F(Serial16550Test, LinuxLoopbackAutoconfig) {
  // drivers/tty/serial/8250/8250_port.c autoconfig(): save MCR, set
  // LOOP|0x0A (RTS|OUT2), expect MSR status bits == DCD|CTS, restore.
  Out(kMcr, 0x0b);  // what a running port has: DTR|RTS|OUT2
  uint8_t save_mcr = In(kMcr);
  Out(kMcr, 0x10 | 0x0a);
  EXPECT_EQ(In(kMsr) & 0xf0, 0x90);
  Out(kMcr, 0x1a);
  EXPECT_EQ(In(kMsr) & 0xf0, 0x90);
  Out(kMcr, save_mcr);
  EXPECT_EQ(In(kMcr), 0x0b);
  EXPECT_EQ(In(kMsr) & 0xf0, 0xb0);
}

TEST_F(Serial16550Test, LoopbackMapsEveryModemLine) {
  struct Case {
    uint8_t mcr;
    uint8_t msr;
  };
  for (Case c : {Case{0x10, 0x00}, Case{0x11, 0x20}, Case{0x12, 0x10},
                 Case{0x14, 0x40}, Case{0x18, 0x80}, Case{0x1f, 0xf0}}) {
    Out(kMcr, c.mcr);
    EXPECT_EQ(In(kMsr) & 0xf0, c.msr) << "mcr " << int{c.mcr};
  }
}

TEST_F(Serial16550Test, LoopbackDeltaBits) {
  Out(kMcr, 0x10);
  In(kMsr);  // clear deltas from entering loop mode
  Out(kMcr, 0x1f);
  EXPECT_EQ(In(kMsr), 0xf0 | 0x0b);  // DCTS, DDSR, DDCD; RI rose: no TERI
  EXPECT_EQ(In(kMsr), 0xf0);         // deltas clear on read
  Out(kMcr, 0x10 | 0x0b);            // RI falls
  EXPECT_EQ(In(kMsr) & 0x0f, 0x04);  // TERI
}

TEST_F(Serial16550Test, LoopbackReturnsTransmittedBytes) {
  Out(kMcr, 0x10);
  Out(kData, 0x5a);
  EXPECT_TRUE(output().empty());
  EXPECT_EQ(In(kLsr) & 0x01, 0x01);
  EXPECT_EQ(In(kData), 0x5a);
  // Host input waits while the receiver is looped back.
  EXPECT_FALSE(uart_.WantsInput());
  EXPECT_EQ(Enqueue({'h'}), 0u);
  Out(kMcr, 0x00);
  EXPECT_TRUE(uart_.WantsInput());
  Out(kData, 'o');
  EXPECT_EQ(output(), std::vector<uint8_t>{'o'});
  EXPECT_EQ(In(kLsr) & 0x01, 0x00);
}

TEST_F(Serial16550Test, InputBufferIsBounded) {
  std::vector<uint8_t> big(Serial16550::kInputBufferSize + 100, 'q');
  EXPECT_EQ(Enqueue(big), Serial16550::kInputBufferSize);
  EXPECT_FALSE(uart_.WantsInput());
  EXPECT_EQ(Enqueue({'r'}), 0u);
  In(kData);
  EXPECT_TRUE(uart_.WantsInput());
  EXPECT_EQ(Enqueue({'r', 's'}), 1u);
  EXPECT_EQ(In(kLsr) & 0x02, 0);  // refusing host input is not an overrun
}

TEST_F(Serial16550Test, InputReadyCallbackFiresOnceRoomReturns) {
  int calls = 0;
  uart_.SetInputReadyCallback([&] {
    ++calls;
    // Runs without the device lock: calling back in must not deadlock.
    EXPECT_TRUE(uart_.WantsInput());
  });
  std::vector<uint8_t> big(Serial16550::kInputBufferSize + 1, 'q');
  EXPECT_EQ(Enqueue(big), Serial16550::kInputBufferSize);
  // Draining a little is not enough to wake the I/O thread.
  for (int i = 0; i < 10; ++i) In(kData);
  EXPECT_EQ(calls, 0);
  while (In(kLsr) & 0x01) In(kData);
  EXPECT_EQ(calls, 1);
  Enqueue({'a'});
  In(kData);
  EXPECT_EQ(calls, 1);  // nothing was refused since
}

TEST_F(Serial16550Test, InputReadyAfterLeavingLoopback) {
  int calls = 0;
  uart_.SetInputReadyCallback([&] { ++calls; });
  Out(kMcr, 0x10);
  EXPECT_EQ(Enqueue({'a'}), 0u);
  EXPECT_EQ(calls, 0);
  Out(kMcr, 0x00);
  EXPECT_EQ(calls, 1);
}

TEST_F(Serial16550Test, OddAccessesDoNotCrash) {
  uint8_t wide[8];
  std::fill(std::begin(wide), std::end(wide), 0x77);
  Out(kScr, 0x42);
  uart_.Read(kScr, wide);
  EXPECT_EQ(wide[0], 0x42);
  for (int i = 1; i < 8; ++i) EXPECT_EQ(wide[i], 0);

  // A wide read of RBR consumes one byte, not several.
  Enqueue({'a', 'b'});
  uint8_t two[2];
  uart_.Read(kData, two);
  EXPECT_EQ(two[0], 'a');
  EXPECT_EQ(In(kData), 'b');

  const uint8_t bytes[4] = {'w', 'x', 'y', 'z'};
  uart_.Write(kData, bytes);
  EXPECT_EQ(output(), std::vector<uint8_t>{'w'});

  uart_.Write(8, bytes);
  uart_.Write(~0ull, bytes);
  uart_.Write(0, std::span<const uint8_t>());
  uart_.Read(0, std::span<uint8_t>());
  uint8_t value = 0;
  uart_.Read(100, std::span<uint8_t>(&value, 1));
  EXPECT_EQ(value, 0xff);
  EXPECT_EQ(output().size(), 1u);
}

TEST_F(Serial16550Test, ConcurrentWritersAndInput) {
  Out(kIer, 0x01);
  constexpr int kPerThread = 500;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) Out(kData, 'a');
    });
  }
  std::thread reader([&] {
    while (!stop) {
      In(kIir);
      In(kData);
    }
  });
  std::thread feeder([&] {
    for (int i = 0; i < kPerThread; ++i) Enqueue({'k'});
  });
  for (auto& t : threads) t.join();
  feeder.join();
  stop = true;
  reader.join();
  EXPECT_EQ(output().size(), 3u * kPerThread);
  // The recorded levels must alternate: never two raises in a row.
  auto levels = irq_->levels();
  for (size_t i = 1; i < levels.size(); ++i)
    EXPECT_NE(levels[i], levels[i - 1]);
}

}  // namespace
}  // namespace skiff

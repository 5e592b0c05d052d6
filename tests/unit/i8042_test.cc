#include "devices/legacy/i8042.h"

#include <memory>

#include "gtest/gtest.h"
#include "vmm/bus.h"

namespace skiff {
namespace {

constexpr uint8_t kObf = 0x01, kIbf = 0x02;

class I8042Test : public ::testing::Test {
 protected:
  I8042Test() : kbc_(std::make_shared<I8042>([this] { ++resets_; })) {
    // Registered the way the machine does it: two 1-byte ports.
    EXPECT_TRUE(bus_.Register(0x60, 1, I8042::DataPort(kbc_), "data").ok());
    EXPECT_TRUE(bus_.Register(0x64, 1, I8042::CommandPort(kbc_), "cmd").ok());
  }

  uint8_t In(uint16_t port) {
    uint8_t value = 0;
    EXPECT_TRUE(bus_.Read(port, std::span<uint8_t>(&value, 1)));
    return value;
  }
  void Out(uint16_t port, uint8_t value) {
    EXPECT_TRUE(bus_.Write(port, std::span<const uint8_t>(&value, 1)));
  }
  // A controller command with an optional parameter, as Linux's
  // i8042_command does it: wait for IBF clear, write, read if OBF.
  void Command(uint8_t command) {
    ASSERT_EQ(In(0x64) & kIbf, 0);
    Out(0x64, command);
  }
  uint8_t Response() {
    EXPECT_EQ(In(0x64) & kObf, kObf);
    return In(0x60);
  }

  Bus bus_{"pio"};
  int resets_ = 0;
  std::shared_ptr<I8042> kbc_;
};

TEST_F(I8042Test, IdleStatusHasNothingPending) {
  uint8_t status = In(0x64);
  EXPECT_EQ(status & (kObf | kIbf), 0);
  EXPECT_EQ(status & 0x04, 0x04);  // system flag: POST passed
  EXPECT_EQ(resets_, 0);
}

TEST_F(I8042Test, PulseResetCallsResetOnce) {
  Out(0x64, 0xfe);
  EXPECT_EQ(resets_, 1);
  // Reading status (Linux's kb_wait between attempts) does not reset.
  In(0x64);
  In(0x60);
  EXPECT_EQ(resets_, 1);
}

TEST_F(I8042Test, LinuxRebootKLoopStaysResponsive) {
  // arch/x86/kernel/reboot.c: up to ten rounds of kb_wait(); outb(0xfe).
  for (int i = 0; i < 10; ++i) {
    int spins = 0;
    while ((In(0x64) & kIbf) && spins < 0x10000) ++spins;
    EXPECT_EQ(spins, 0);
    Out(0x64, 0xfe);
  }
  EXPECT_EQ(resets_, 10);  // each pulse reported; the VMM stops at the first
}

TEST_F(I8042Test, OtherPulseCommandsOnlyResetWhenBit0Clear) {
  Out(0x64, 0xff);  // pulse nothing
  Out(0x64, 0xfd);  // pulse line 1 (A20), not reset
  EXPECT_EQ(resets_, 0);
  Out(0x64, 0xf0);  // pulses all four lines, reset included
  EXPECT_EQ(resets_, 1);
}

TEST_F(I8042Test, WriteOutputPortWithResetBitClear) {
  Command(0xd1);
  EXPECT_EQ(resets_, 0);
  Out(0x60, 0x03);  // reset line high: nothing happens
  EXPECT_EQ(resets_, 0);
  Command(0xd0);
  EXPECT_EQ(Response(), 0x03);
  Command(0xd1);
  Out(0x60, 0x02);  // bit 0 low: reset
  EXPECT_EQ(resets_, 1);
}

TEST_F(I8042Test, DataWithoutPendingCommandIsNotAnOutputPortWrite) {
  Out(0x60, 0x00);
  EXPECT_EQ(resets_, 0);
  // A new command abandons a half-written one.
  Command(0xd1);
  Command(0x20);
  EXPECT_EQ(Response(), 0x45);
  Out(0x60, 0x00);
  EXPECT_EQ(resets_, 0);
}

TEST_F(I8042Test, SelfTestAndInterfaceTest) {
  Command(0xaa);
  EXPECT_EQ(Response(), 0x55);
  EXPECT_EQ(In(0x64) & kObf, 0);  // reading the data port emptied it
  Command(0xab);
  EXPECT_EQ(Response(), 0x00);
}

TEST_F(I8042Test, CommandByteRoundTrip) {
  Command(0x20);
  EXPECT_EQ(Response(), 0x45);
  Command(0x60);
  Out(0x60, 0x30);  // both ports disabled, no interrupts, no system flag
  EXPECT_EQ(In(0x64) & 0x04, 0);
  Command(0x20);
  EXPECT_EQ(Response(), 0x30);
  Command(0xae);  // enable keyboard clears bit 4
  Command(0xa8);  // enable aux clears bit 5
  Command(0x20);
  EXPECT_EQ(Response(), 0x00);
}

TEST_F(I8042Test, LinuxProbeFinishesWithoutTimeouts) {
  // i8042_flush: drain while OBF, at most 16 reads.
  int reads = 0;
  while ((In(0x64) & kObf) && reads < 16) {
    In(0x60);
    ++reads;
  }
  EXPECT_LT(reads, 16);
  // Aux loopback: the byte must NOT come back flagged as aux data (0x20),
  // so the driver decides at once that there is no mouse port.
  Command(0xd3);
  Out(0x60, 0x5a);
  uint8_t status = In(0x64);
  EXPECT_EQ(status & kObf, kObf);
  EXPECT_EQ(status & 0x20, 0);
  Command(0xa9);
  uint8_t aux_test = Response();
  EXPECT_NE(aux_test, 0x00);
  EXPECT_NE(aux_test, 0xfa);
  EXPECT_NE(aux_test, 0xff);
}

TEST_F(I8042Test, StatusReportsLastWriteTarget) {
  Out(0x64, 0x20);
  EXPECT_EQ(In(0x64) & 0x08, 0x08);
  In(0x60);
  Out(0x60, 0xf4);  // a keyboard command: dropped
  EXPECT_EQ(In(0x64) & 0x08, 0);
  EXPECT_EQ(In(0x64) & kObf, 0);
}

TEST_F(I8042Test, OddOffsetsAndSizesDoNotCrash) {
  uint8_t wide[4] = {1, 2, 3, 4};
  kbc_->Read(2, wide);
  EXPECT_EQ(wide[0], 0xff);
  kbc_->Write(~0ull, wide);
  kbc_->Write(0, std::span<const uint8_t>());
  kbc_->Read(0, std::span<uint8_t>());
  const uint8_t cmd[2] = {0xaa, 0xfe};  // wide write: only the low byte
  kbc_->Write(I8042::kCommandOffset, cmd);
  EXPECT_EQ(resets_, 0);
  kbc_->Read(I8042::kDataOffset, wide);
  EXPECT_EQ(wide[0], 0x55);
  EXPECT_EQ(wide[1], 0);
  auto view = I8042::DataPort(kbc_);
  view->Read(1, wide);
  EXPECT_EQ(wide[0], 0xff);
  view->Write(1, cmd);
}

}  // namespace
}  // namespace skiff

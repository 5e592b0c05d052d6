#include "devices/legacy/pvpanic.h"

#include "gtest/gtest.h"

namespace skiff {
namespace {

class PvpanicTest : public ::testing::Test {
 protected:
  void Out(uint8_t value) {
    device_.Write(0, std::span<const uint8_t>(&value, 1));
  }

  int panics_ = 0;
  int crash_loaded_ = 0;
  Pvpanic device_{[this] { ++panics_; }, [this] { ++crash_loaded_; }};
};

TEST_F(PvpanicTest, ReadsSupportedEvents) {
  uint8_t value = 0;
  device_.Read(0, std::span<uint8_t>(&value, 1));
  EXPECT_EQ(value, 0x03);  // PANICKED | CRASH_LOADED, as QEMU advertises
  EXPECT_EQ(panics_ + crash_loaded_, 0);
}

TEST_F(PvpanicTest, PanicBitCallsPanic) {
  Out(0x01);
  EXPECT_EQ(panics_, 1);
  EXPECT_EQ(crash_loaded_, 0);
}

TEST_F(PvpanicTest, CrashLoadedBitCallsCrashLoaded) {
  Out(0x02);
  EXPECT_EQ(panics_, 0);
  EXPECT_EQ(crash_loaded_, 1);
}

TEST_F(PvpanicTest, PanicWinsOverCrashLoaded) {
  Out(0x03);
  EXPECT_EQ(panics_, 1);
  EXPECT_EQ(crash_loaded_, 0);
}

TEST_F(PvpanicTest, OtherWritesAreIgnored) {
  Out(0x00);
  Out(0x04);  // "shutdown" in newer QEMU; never advertised here
  Out(0xf0);
  EXPECT_EQ(panics_ + crash_loaded_, 0);
}

TEST_F(PvpanicTest, OddAccessesDoNotCrash) {
  uint8_t wide[4] = {9, 9, 9, 9};
  device_.Read(0, wide);
  EXPECT_EQ(wide[0], 0x03);
  EXPECT_EQ(wide[1], 0);
  device_.Read(1, wide);
  EXPECT_EQ(wide[0], 0xff);
  device_.Read(0, std::span<uint8_t>());
  const uint8_t panic[2] = {0x01, 0x00};
  device_.Write(1, panic);
  device_.Write(0, std::span<const uint8_t>());
  EXPECT_EQ(panics_, 0);
  device_.Write(0, panic);
  EXPECT_EQ(panics_, 1);
}

TEST(PvpanicNoCrashCallbackTest, CrashLoadedWithoutCallbackIsANoOp) {
  int panics = 0;
  Pvpanic device([&] { ++panics; });
  const uint8_t crash_loaded = 0x02;
  device.Write(0, std::span<const uint8_t>(&crash_loaded, 1));
  EXPECT_EQ(panics, 0);
}

}  // namespace
}  // namespace skiff

#include "vmm/bus.h"

#include <vector>

#include "gtest/gtest.h"

namespace skiff {
namespace {

class RecordingDevice : public BusDevice {
 public:
  void Read(uint64_t offset, std::span<uint8_t> data) override {
    last_read_offset = offset;
    for (auto& b : data) b = 0xAB;
  }
  void Write(uint64_t offset, std::span<const uint8_t> data) override {
    last_write_offset = offset;
    written.assign(data.begin(), data.end());
  }
  uint64_t last_read_offset = ~0ull;
  uint64_t last_write_offset = ~0ull;
  std::vector<uint8_t> written;
};

TEST(BusTest, DispatchesWithOffsetRelativeToBase) {
  Bus bus("pio");
  auto dev = std::make_shared<RecordingDevice>();
  ASSERT_TRUE(bus.Register(0x3f8, 8, dev, "uart").ok());
  uint8_t value = 0x41;
  EXPECT_TRUE(bus.Write(0x3fb, std::span<const uint8_t>(&value, 1)));
  EXPECT_EQ(dev->last_write_offset, 3u);
  EXPECT_EQ(dev->written, std::vector<uint8_t>{0x41});
  uint8_t out[2] = {};
  EXPECT_TRUE(bus.Read(0x3f8, out));
  EXPECT_EQ(dev->last_read_offset, 0u);
  EXPECT_EQ(out[0], 0xAB);
}

TEST(BusTest, MissesOutsideAndStraddlingAccesses) {
  Bus bus("pio");
  auto dev = std::make_shared<RecordingDevice>();
  ASSERT_TRUE(bus.Register(0x100, 4, dev, "dev").ok());
  uint8_t out[4] = {};
  EXPECT_FALSE(bus.Read(0xff, std::span<uint8_t>(out, 1)));
  EXPECT_FALSE(bus.Read(0x104, std::span<uint8_t>(out, 1)));
  EXPECT_FALSE(bus.Read(0x102, std::span<uint8_t>(out, 4)));  // straddles end
  EXPECT_TRUE(bus.Read(0x100, std::span<uint8_t>(out, 4)));
  EXPECT_FALSE(bus.Read(0x100, std::span<uint8_t>(out, 0)));
}

TEST(BusTest, RefusesEmptyOverflowingAndOverlappingRanges) {
  Bus bus("mmio");
  auto dev = std::make_shared<RecordingDevice>();
  EXPECT_FALSE(bus.Register(0x1000, 0, dev, "empty").ok());
  EXPECT_FALSE(bus.Register(~0ull - 1, 4, dev, "wraps").ok());
  EXPECT_TRUE(bus.Register(~0ull - 3, 4, dev, "top").ok());  // ends at 2^64-1
  ASSERT_TRUE(bus.Register(0x1000, 0x100, dev, "a").ok());
  EXPECT_FALSE(bus.Register(0x10ff, 1, dev, "tail").ok());
  EXPECT_FALSE(bus.Register(0xf00, 0x101, dev, "head").ok());
  EXPECT_FALSE(bus.Register(0x1000, 0x100, dev, "same").ok());
  EXPECT_FALSE(bus.Register(0x800, 0x1000, dev, "covers").ok());
  EXPECT_TRUE(bus.Register(0x1100, 0x10, dev, "adjacent").ok());
  EXPECT_TRUE(bus.Register(0xf00, 0x100, dev, "below").ok());
  EXPECT_FALSE(bus.Register(0x2000, 1, nullptr, "null").ok());
}

TEST(BusTest, UnregisterFreesTheRange) {
  Bus bus("mmio");
  auto dev = std::make_shared<RecordingDevice>();
  ASSERT_TRUE(bus.Register(0x1000, 0x10, dev, "a").ok());
  EXPECT_TRUE(bus.Unregister(0x1000).ok());
  EXPECT_FALSE(bus.Unregister(0x1000).ok());
  uint8_t b = 0;
  EXPECT_FALSE(bus.Read(0x1000, std::span<uint8_t>(&b, 1)));
}

}  // namespace
}  // namespace skiff

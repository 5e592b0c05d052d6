#include "vmm/guest_memory.h"

#include <vector>

#include "gtest/gtest.h"

namespace skiff {
namespace {

class GuestMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    low_.resize(0x1000);
    high_.resize(0x2000);
    auto mem = GuestMemory::Create({{0x10000, high_.size(), high_.data()},
                                    {0x0, low_.size(), low_.data()}});
    ASSERT_TRUE(mem.ok()) << mem.status();
    mem_ = *std::move(mem);
  }
  std::vector<uint8_t> low_, high_;
  GuestMemory mem_;
};

TEST_F(GuestMemoryTest, ReadsAndWritesInsideRegions) {
  ASSERT_TRUE(mem_.WriteObj<uint32_t>(0x10010, 0xdeadbeef).ok());
  EXPECT_EQ(high_[0x10], 0xef);
  auto v = mem_.ReadObj<uint32_t>(0x10010);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 0xdeadbeefu);
  EXPECT_TRUE(mem_.Contains(0xfff, 1));
  EXPECT_TRUE(mem_.Contains(0x11fff, 1));
  EXPECT_EQ(mem_.TotalSize(), 0x3000u);
}

TEST_F(GuestMemoryTest, RejectsStraddlingGapAndEnd) {
  EXPECT_FALSE(mem_.ReadObj<uint32_t>(0xffe).ok());    // straddles low end
  EXPECT_FALSE(mem_.ReadObj<uint8_t>(0x1000).ok());    // in the gap
  EXPECT_FALSE(mem_.ReadObj<uint8_t>(0xffff).ok());    // just below high
  EXPECT_FALSE(mem_.ReadObj<uint16_t>(0x11fff).ok());  // straddles high end
  EXPECT_FALSE(mem_.GetSpan(0x0, 0x3000).ok());        // spans two regions
  EXPECT_FALSE(mem_.GetSpan(0x0, 0).ok());
}

TEST_F(GuestMemoryTest, RejectsOverflowingRanges) {
  EXPECT_FALSE(mem_.GetSpan(~0ull, 2).ok());
  EXPECT_FALSE(mem_.GetSpan(0x10000, ~0ull).ok());
  EXPECT_FALSE(mem_.GetSpan(0x10001, ~0ull - 0x10000).ok());
  uint8_t buf[4];
  EXPECT_FALSE(mem_.Read(~0ull - 1, buf).ok());
}

TEST(GuestMemoryCreateTest, RejectsOverlappingAndEmptyRegions) {
  std::vector<uint8_t> a(0x1000), b(0x1000);
  EXPECT_FALSE(GuestMemory::Create({{0, 0x1000, a.data()},
                                    {0x800, 0x1000, b.data()}})
                   .ok());
  EXPECT_FALSE(GuestMemory::Create({{0, 0, a.data()}}).ok());
  EXPECT_FALSE(GuestMemory::Create({{~0ull - 10, 0x1000, a.data()}}).ok());
  EXPECT_TRUE(GuestMemory::Create({{0, 0x1000, a.data()},
                                   {0x1000, 0x1000, b.data()}})
                  .ok());
}

}  // namespace
}  // namespace skiff

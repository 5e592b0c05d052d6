#include "devices/legacy/pl031.h"

#include <vector>

#include "gtest/gtest.h"

namespace skiff {
namespace {

uint32_t Read32(Pl031& rtc, uint64_t offset) {
  uint8_t b[4];
  rtc.Read(offset, b);
  return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
}

void Write32(Pl031& rtc, uint64_t offset, uint32_t value) {
  uint8_t b[4] = {static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8),
                  static_cast<uint8_t>(value >> 16), static_cast<uint8_t>(value >> 24)};
  rtc.Write(offset, b);
}

TEST(Pl031Test, PrimeCellIdsIdentifyAPl031) {
  Pl031 rtc([] { return int64_t{0}; });
  // What Linux's AMBA bus assembles: periphid 0x00141031 (mask 0x000fffff
  // matches rtc-pl031's 0x00041031), cid 0xb105f00d.
  uint32_t periph = 0, cell = 0;
  for (int i = 0; i < 4; ++i) {
    periph |= (Read32(rtc, 0xfe0 + 4 * i) & 0xff) << (8 * i);
    cell |= (Read32(rtc, 0xff0 + 4 * i) & 0xff) << (8 * i);
  }
  EXPECT_EQ(periph & 0x000fffff, 0x00041031u);
  EXPECT_EQ(cell, 0xb105f00du);
}

TEST(Pl031Test, CounterFollowsTheClockAndLoadSetsIt) {
  int64_t now = 1700000000;
  Pl031 rtc([&now] { return now; });
  EXPECT_EQ(Read32(rtc, 0x000), 1700000000u);
  now += 5;
  EXPECT_EQ(Read32(rtc, 0x000), 1700000005u);
  Write32(rtc, 0x008, 1000);  // RTCLR
  EXPECT_EQ(Read32(rtc, 0x000), 1000u);
  now += 3;
  EXPECT_EQ(Read32(rtc, 0x000), 1003u);
  Write32(rtc, 0x000, 5);  // RTCDR is read-only
  EXPECT_EQ(Read32(rtc, 0x000), 1003u);
  EXPECT_EQ(Read32(rtc, 0x00c), 1u);  // started
}

TEST(Pl031Test, MatchAndMaskAreKeptStatusStaysClear) {
  Pl031 rtc([] { return int64_t{100}; });
  Write32(rtc, 0x004, 150);
  Write32(rtc, 0x010, 0xffffffff);
  EXPECT_EQ(Read32(rtc, 0x004), 150u);
  EXPECT_EQ(Read32(rtc, 0x010), 1u);
  EXPECT_EQ(Read32(rtc, 0x014), 0u);
  EXPECT_EQ(Read32(rtc, 0x018), 0u);
}

TEST(Pl031Test, NarrowOrMisalignedAccessesDoNothing) {
  int64_t now = 100;
  Pl031 rtc([&now] { return now; });
  uint8_t one[1] = {0xff};
  rtc.Read(0x000, one);
  EXPECT_EQ(one[0], 0);
  uint8_t four[4] = {1, 2, 3, 4};
  rtc.Write(0x00a, four);  // misaligned RTCLR
  EXPECT_EQ(Read32(rtc, 0x000), 100u);
  EXPECT_EQ(Read32(rtc, 0x800), 0u);  // nothing there
}

}  // namespace
}  // namespace skiff

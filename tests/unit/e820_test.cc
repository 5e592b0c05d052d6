#include "arch/x86_64/e820.h"

#include <vector>

#include "arch/x86_64/layout.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace skiff::x86 {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;
const uint64_t kLowReserved = kHighMemoryStart - kEbdaStart;

// The reserved ranges every map carries inside the MMIO hole.
const E820Entry kEcam = {kPciEcamBase, kPciEcamSize, kE820Reserved};
const E820Entry kKvmPages = {kKvmIdentityMapAddress, 0x4000, kE820Reserved};

TEST(E820Test, Layout256MiB) {
  auto map = BuildE820Map(256 * kMiB);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_THAT(
      *map,
      ElementsAre(E820Entry{0, kEbdaStart, kE820Ram},
                  E820Entry{kEbdaStart, kLowReserved, kE820Reserved},
                  E820Entry{kMiB, 255 * kMiB, kE820Ram}, kEcam, kKvmPages));
  auto regions = GuestRamRegions(256 * kMiB);
  ASSERT_TRUE(regions.ok());
  EXPECT_THAT(*regions, ElementsAre(RamRegion{0, 256 * kMiB}));
}

TEST(E820Test, LayoutExactly3GiB) {
  auto map = BuildE820Map(3 * kGiB);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_THAT(*map,
              ElementsAre(E820Entry{0, kEbdaStart, kE820Ram},
                          E820Entry{kEbdaStart, kLowReserved, kE820Reserved},
                          E820Entry{kMiB, 3 * kGiB - kMiB, kE820Ram}, kEcam,
                          kKvmPages));
  auto regions = GuestRamRegions(3 * kGiB);
  ASSERT_TRUE(regions.ok());
  EXPECT_THAT(*regions, ElementsAre(RamRegion{0, 3 * kGiB}));
}

TEST(E820Test, Layout4GiBPutsLastGiBAbove4GiB) {
  auto map = BuildE820Map(4 * kGiB);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_THAT(*map,
              ElementsAre(E820Entry{0, kEbdaStart, kE820Ram},
                          E820Entry{kEbdaStart, kLowReserved, kE820Reserved},
                          E820Entry{kMiB, 3 * kGiB - kMiB, kE820Ram}, kEcam,
                          kKvmPages, E820Entry{4 * kGiB, kGiB, kE820Ram}));
  auto regions = GuestRamRegions(4 * kGiB);
  ASSERT_TRUE(regions.ok());
  EXPECT_THAT(*regions,
              ElementsAre(RamRegion{0, 3 * kGiB}, RamRegion{4 * kGiB, kGiB}));
}

TEST(E820Test, Layout8GiB) {
  auto map = BuildE820Map(8 * kGiB);
  ASSERT_TRUE(map.ok()) << map.status();
  ASSERT_EQ(map->size(), 6u);
  EXPECT_EQ(map->back(), (E820Entry{4 * kGiB, 5 * kGiB, kE820Ram}));
  auto regions = GuestRamRegions(8 * kGiB);
  ASSERT_TRUE(regions.ok());
  EXPECT_THAT(*regions, ElementsAre(RamRegion{0, 3 * kGiB},
                                    RamRegion{4 * kGiB, 5 * kGiB}));
}

// Across sizes: sorted, non-overlapping, no RAM in the MMIO hole, and the
// RAM the guest is told about is exactly what the slots back, minus the
// reserved BIOS area.
TEST(E820Test, InvariantsAcrossSizes) {
  for (uint64_t ram : {16 * kMiB, 256 * kMiB, 3 * kGiB - 4096, 3 * kGiB,
                       3 * kGiB + 4096, 4 * kGiB, 8 * kGiB, 1024 * kGiB}) {
    SCOPED_TRACE(ram);
    auto map = BuildE820Map(ram);
    auto regions = GuestRamRegions(ram);
    ASSERT_TRUE(map.ok()) << map.status();
    ASSERT_TRUE(regions.ok()) << regions.status();
    uint64_t e820_ram = 0;
    for (size_t i = 0; i < map->size(); ++i) {
      const E820Entry& e = (*map)[i];
      EXPECT_GT(e.size, 0u);
      if (i > 0) {
        EXPECT_LE((*map)[i - 1].addr + (*map)[i - 1].size, e.addr);
      }
      if (e.type == kE820Ram) {
        e820_ram += e.size;
        EXPECT_TRUE(e.addr + e.size <= kMmioHoleStart || e.addr >= kFourGiB);
      }
    }
    uint64_t slot_ram = 0;
    for (const RamRegion& r : *regions) {
      slot_ram += r.size;
      EXPECT_TRUE(r.gpa + r.size <= kMmioHoleStart || r.gpa >= kFourGiB);
    }
    EXPECT_EQ(slot_ram, ram);
    EXPECT_EQ(e820_ram, ram - kLowReserved);
  }
}

TEST(E820Test, RejectsTooLittleMemory) {
  absl::Status status = ValidateRamSize(8 * kMiB);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("8 MiB is too small"));
  EXPECT_THAT(status.message(), HasSubstr("16 MiB"));
  EXPECT_FALSE(BuildE820Map(8 * kMiB).ok());
  EXPECT_FALSE(GuestRamRegions(0).ok());
}

TEST(E820Test, RejectsTooMuchMemory) {
  absl::Status status = ValidateRamSize(2048 * kGiB);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("2048 GiB is too large"));
  EXPECT_FALSE(BuildE820Map(UINT64_MAX).ok());
}

TEST(E820Test, RejectsUnalignedSize) {
  EXPECT_THAT(ValidateRamSize(256 * kMiB + 1).message(),
              HasSubstr("multiple of 4 KiB"));
}

}  // namespace
}  // namespace skiff::x86

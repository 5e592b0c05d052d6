// arch::RamLayout on arm64 (arm64 build only: it is arch/arm64's): what
// `--memory` becomes, and the one-line error past the cap below the 64-bit
// PCI window.
#include "arch/arch.h"
#include "arch/arm64/layout.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace skiff {
namespace {

using ::testing::HasSubstr;

TEST(Arm64RamLayoutTest, RamIsOneRegionAtOneGib) {
  auto regions = arch::RamLayout(256ull << 20);
  ASSERT_TRUE(regions.ok()) << regions.status();
  EXPECT_EQ(*regions, (std::vector<RamRegion>{{arm64::kRamBase, 256ull << 20}}));
  EXPECT_TRUE(arch::RamLayout(arm64::kMaxRamSize).ok());
}

TEST(Arm64RamLayoutTest, MemoryBeyondTheCapIsOneClearLine) {
  absl::Status status = arch::RamLayout(arm64::kMaxRamSize + (1ull << 30)).status();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "--memory: 512 GiB is too large for the arm64 memory map: RAM starts at 0x40000000 "
            "and must end at the 64-bit PCI window (0x8000000000), so at most 511 GiB");
  EXPECT_THAT(arch::RamLayout(1ull << 40).status().message(), HasSubstr("at most 511 GiB"));
}

}  // namespace
}  // namespace skiff

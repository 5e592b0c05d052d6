#include "vmm/hugepages.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/temp_dir.h"

namespace skiff {
namespace {

using ::testing::HasSubstr;

TEST(HugepagesTest, ParsesSizes) {
  EXPECT_EQ(*ParseHugepageSize("2M"), 2ull << 20);
  EXPECT_EQ(*ParseHugepageSize("2MiB"), 2ull << 20);
  EXPECT_EQ(*ParseHugepageSize("1G"), 1ull << 30);
  EXPECT_EQ(*ParseHugepageSize("2048K"), 2ull << 20);
  for (const char* bad : {"", "3M", "4K", "huge", "0", "1T1"}) {
    auto size = ParseHugepageSize(bad);
    ASSERT_FALSE(size.ok()) << bad;
    EXPECT_THAT(std::string(size.status().message()), HasSubstr("--hugepages")) << bad;
  }
  EXPECT_EQ(FormatPageSize(2ull << 20), "2M");
  EXPECT_EQ(FormatPageSize(1ull << 30), "1G");
  EXPECT_EQ(FormatPageSize(64ull << 10), "64K");
}

class HugepageSupplyTest : public ::testing::Test {
 protected:
  void Pool(const std::string& name, int total, int free) {
    const std::string dir = temp_.File(name);
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/nr_hugepages") << total << "\n";
    std::ofstream(dir + "/free_hugepages") << free << "\n";
  }
  testing::TempDir temp_;
};

TEST_F(HugepageSupplyTest, EnoughFreePages) {
  Pool("hugepages-2048kB", 200, 128);
  EXPECT_TRUE(CheckHugepageSupply(2ull << 20, 256ull << 20, temp_.path()).ok());
}

TEST_F(HugepageSupplyTest, TooFewSaysHowToReserve) {
  Pool("hugepages-2048kB", 10, 4);
  absl::Status status = CheckHugepageSupply(2ull << 20, 256ull << 20, temp_.path());
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  // 128 needed, 4 free of 10: the pool must grow to 134.
  EXPECT_EQ(status.message(),
            "--hugepages 2M: guest RAM needs 128 free 2M pages but the host has 4; reserve "
            "them first (as root): echo 134 > " +
                temp_.path() + "/hugepages-2048kB/nr_hugepages");
}

TEST_F(HugepageSupplyTest, UnknownPageSize) {
  Pool("hugepages-2048kB", 0, 0);
  absl::Status status = CheckHugepageSupply(1ull << 30, 1ull << 30, temp_.path());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("--hugepages 1G: this host has no 1G hugepages"));
}

}  // namespace
}  // namespace skiff

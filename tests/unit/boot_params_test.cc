#include "arch/x86_64/boot_params.h"

#include <string>
#include <vector>

#include "arch/x86_64/layout.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace skiff::x86 {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;

uint64_t Get(const std::array<uint8_t, kBootParamsSize>& page, size_t offset,
             int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | page[offset + i];
  return value;
}

// A parsed image as a stock 2.15 kernel would yield: relocatable, 2 MiB
// aligned, pref_address 16 MiB, init_size 32 MiB.
class BootParamsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    payload_.assign(4096, 0x5a);
    image_.protocol_version = 0x020f;
    image_.setup_size = 1024;
    image_.payload = payload_;
    // Header bytes 0x1F1..0x26B, each holding its own offset's low byte so a
    // misplaced copy shows.
    for (size_t off = 0x1f1; off < 0x26c; ++off) {
      image_.setup_header.push_back(static_cast<uint8_t>(off));
    }
    image_.loadflags = 0x01;
    image_.xloadflags = 0x03;
    image_.initrd_addr_max = 0x7fffffff;
    image_.kernel_alignment = 0x200000;
    image_.relocatable_kernel = true;
    image_.cmdline_size = 2047;
    image_.pref_address = 0x1000000;
    image_.init_size = 0x2000000;
  }
  std::vector<uint8_t> payload_;
  boot::BzImage image_;
};

TEST_F(BootParamsTest, WritesFieldsAtDocumentedOffsets) {
  const std::vector<E820Entry> e820 = {{0, 0x9fc00, kE820Ram},
                                       {0x100000, 0x7f00000, kE820Ram}};
  BootParamsInput input;
  input.cmdline_addr = kCmdlineAddress;
  input.initrd_addr = 0xf000000;
  input.initrd_size = 0x123456;
  input.e820 = e820;
  input.acpi_rsdp_addr = kAcpiTablesAddress;
  auto page = BuildBootParams(image_, input);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->size(), 4096u);

  // The setup header is copied verbatim except for the fields Skiff owns.
  for (size_t off : {0x1f1, 0x1fa, 0x202, 0x206, 0x211, 0x236, 0x260, 0x26b}) {
    EXPECT_EQ((*page)[off], static_cast<uint8_t>(off)) << "offset " << off;
  }
  EXPECT_EQ((*page)[0x26c], 0);            // past the header: untouched
  EXPECT_EQ(Get(*page, 0x210, 1), 0xffu);  // type_of_loader
  EXPECT_EQ(Get(*page, 0x228, 4), kCmdlineAddress);
  EXPECT_EQ(Get(*page, 0x0c8, 4), 0u);
  EXPECT_EQ(Get(*page, 0x218, 4), 0xf000000u);
  EXPECT_EQ(Get(*page, 0x21c, 4), 0x123456u);
  EXPECT_EQ(Get(*page, 0x0c0, 4), 0u);
  EXPECT_EQ(Get(*page, 0x0c4, 4), 0u);
  EXPECT_EQ(Get(*page, 0x070, 8), kAcpiTablesAddress);
  EXPECT_EQ(Get(*page, 0x1e8, 1), 2u);
  EXPECT_EQ(Get(*page, 0x2d0, 8), 0u);
  EXPECT_EQ(Get(*page, 0x2d8, 8), 0x9fc00u);
  EXPECT_EQ(Get(*page, 0x2e0, 4), kE820Ram);
  EXPECT_EQ(Get(*page, 0x2e4, 8), 0x100000u);
  EXPECT_EQ(Get(*page, 0x2ec, 8), 0x7f00000u);
  EXPECT_EQ(Get(*page, 0x2f4, 4), kE820Ram);
  for (size_t off = 0x2f8; off < 0x2f8 + 20; ++off) {
    EXPECT_EQ((*page)[off], 0) << "third e820 slot, offset " << off;
  }
  EXPECT_EQ(Get(*page, 0x1ef, 1), 0u);  // sentinel
}

TEST_F(BootParamsTest, SplitsAddressesAbove4GiBIntoExtFields) {
  BootParamsInput input;
  input.cmdline_addr = 0x123456000;
  input.initrd_addr = 0x200000000;
  input.initrd_size = 0x100001000;
  auto page = BuildBootParams(image_, input);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(Get(*page, 0x228, 4), 0x23456000u);
  EXPECT_EQ(Get(*page, 0x0c8, 4), 0x1u);
  EXPECT_EQ(Get(*page, 0x218, 4), 0u);
  EXPECT_EQ(Get(*page, 0x0c0, 4), 0x2u);
  EXPECT_EQ(Get(*page, 0x21c, 4), 0x1000u);
  EXPECT_EQ(Get(*page, 0x0c4, 4), 0x1u);
}

TEST_F(BootParamsTest, NoRsdpAddrBeforeProtocol214) {
  image_.protocol_version = 0x020d;
  BootParamsInput input;
  input.acpi_rsdp_addr = kAcpiTablesAddress;
  auto page = BuildBootParams(image_, input);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Get(*page, 0x070, 8), 0u);
}

TEST_F(BootParamsTest, RejectsMoreThan128E820Entries) {
  std::vector<E820Entry> e820(129, {0, 4096, kE820Ram});
  BootParamsInput input;
  input.e820 = e820;
  auto page = BuildBootParams(image_, input);
  ASSERT_FALSE(page.ok());
  EXPECT_THAT(page.status().message(), HasSubstr("at most 128"));
}

TEST_F(BootParamsTest, KernelEndUsesRuntimeStartPlusInitSize) {
  // Relocatable: max(1 MiB aligned up to 2 MiB, 16 MiB) + 32 MiB.
  EXPECT_EQ(*KernelEnd(image_), 48 * kMiB);
  image_.pref_address = 0x100000;
  EXPECT_EQ(*KernelEnd(image_), 2 * kMiB + 32 * kMiB);
  image_.relocatable_kernel = false;
  EXPECT_EQ(*KernelEnd(image_), 1 * kMiB + 32 * kMiB);
  // A payload larger than init_size still counts, page-aligned.
  image_.init_size = 0;
  EXPECT_EQ(*KernelEnd(image_), 1 * kMiB + 4096);
  image_.pref_address = UINT64_MAX - 10;
  image_.init_size = 100;
  EXPECT_FALSE(KernelEnd(image_).ok());
}

TEST_F(BootParamsTest, PlacesInitrdAtTopOfLowRam) {
  auto addr = PlaceInitrd(image_, 10 * kMiB, 256 * kMiB);
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(*addr, 246 * kMiB);
  // An odd size is rounded down to a page boundary, still ending in RAM.
  addr = PlaceInitrd(image_, 10 * kMiB + 5, 256 * kMiB);
  ASSERT_TRUE(addr.ok());
  EXPECT_EQ(*addr, 246 * kMiB - 4096);
}

TEST_F(BootParamsTest, InitrdRespectsInitrdAddrMaxAndTheMmioHole) {
  auto addr = PlaceInitrd(image_, 10 * kMiB, 8 * kGiB);
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(*addr, 2 * kGiB - 10 * kMiB);  // initrd_addr_max 0x7fffffff
  image_.initrd_addr_max = 0xffffffff;
  addr = PlaceInitrd(image_, 10 * kMiB, 8 * kGiB);
  ASSERT_TRUE(addr.ok());
  EXPECT_EQ(*addr, kMmioHoleStart - 10 * kMiB);
}

TEST_F(BootParamsTest, InitrdJustFitsAboveTheKernel) {
  auto addr = PlaceInitrd(image_, 208 * kMiB, 256 * kMiB);
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(*addr, 48 * kMiB);
  EXPECT_FALSE(PlaceInitrd(image_, 208 * kMiB + 1, 256 * kMiB).ok());
}

TEST_F(BootParamsTest, RejectsInitrdTooBig) {
  auto addr = PlaceInitrd(image_, 300 * kMiB, 256 * kMiB);
  ASSERT_FALSE(addr.ok());
  EXPECT_THAT(addr.status().message(),
              HasSubstr("initramfs (300 MiB) does not fit in guest memory "
                        "(256 MiB) above the kernel"));
  image_.initrd_addr_max = 0x37ffffff;
  addr = PlaceInitrd(image_, 900 * kMiB, 2 * kGiB);
  ASSERT_FALSE(addr.ok());
  EXPECT_THAT(addr.status().message(), HasSubstr("initrd_addr_max 0x37FFFFFF"));
  EXPECT_FALSE(PlaceInitrd(image_, 0, 256 * kMiB).ok());
  EXPECT_FALSE(PlaceInitrd(image_, UINT64_MAX, 256 * kMiB).ok());
}

TEST_F(BootParamsTest, KernelMustFitInRam) {
  EXPECT_TRUE(CheckKernelFits(image_, 48 * kMiB).ok());
  absl::Status status = CheckKernelFits(image_, 32 * kMiB);
  EXPECT_THAT(status.message(), HasSubstr("48 MiB"));
}

TEST_F(BootParamsTest, ValidatesCmdlineLength) {
  EXPECT_TRUE(ValidateCmdline(std::string(2047, 'a'), image_).ok());
  absl::Status status = ValidateCmdline(std::string(2048, 'a'), image_);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("2048 bytes"));
  EXPECT_THAT(status.message(), HasSubstr("at most 2047"));
  EXPECT_FALSE(ValidateCmdline(std::string("a\0b", 3), image_).ok());
  image_.cmdline_size = 0xffffffff;
  status = ValidateCmdline(std::string(kCmdlineMaxSize, 'a'), image_);
  EXPECT_THAT(status.message(), HasSubstr("Skiff passes at most 65535"));
}

}  // namespace
}  // namespace skiff::x86

#include "boot/bzimage.h"

#include <cstring>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/gzip_test_util.h"

namespace skiff::boot {
namespace {

using ::testing::HasSubstr;

void Put(std::vector<uint8_t>& f, size_t offset, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) f[offset + i] = (value >> (8 * i)) & 0xff;
}

constexpr size_t kPayloadSize = 4096;

// A minimal bzImage: one setup sector after the boot sector, then a payload
// of 0x5A bytes; header fields as a 2.15 x86-64 kernel sets them.
std::vector<uint8_t> MakeBzImage() {
  std::vector<uint8_t> f(2 * 512 + kPayloadSize, 0);
  f[0x1f1] = 1;                         // setup_sects
  Put(f, 0x1f4, kPayloadSize / 16, 4);  // syssize
  Put(f, 0x1fe, 0xaa55, 2);             // boot_flag
  f[0x200] = 0xeb;                      // jmp short
  f[0x201] = 0x6a;                      //   header ends at 0x26c
  std::memcpy(&f[0x202], "HdrS", 4);
  Put(f, 0x206, 0x020f, 2);      // version 2.15
  f[0x211] = 0x01;               // loadflags: LOADED_HIGH
  Put(f, 0x22c, 0x7fffffff, 4);  // initrd_addr_max
  Put(f, 0x230, 0x200000, 4);    // kernel_alignment
  f[0x234] = 1;                  // relocatable_kernel
  Put(f, 0x236, 0x03, 2);        // XLF_KERNEL_64 | CAN_BE_LOADED_ABOVE_4G
  Put(f, 0x238, 2047, 4);        // cmdline_size
  Put(f, 0x258, 0x1000000, 8);   // pref_address
  Put(f, 0x260, 0x2000000, 4);   // init_size
  std::memset(&f[1024], 0x5a, kPayloadSize);
  return f;
}

TEST(BzImageTest, ParsesMinimalValidHeader) {
  std::vector<uint8_t> file = MakeBzImage();
  auto image = ParseBzImage(file);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->protocol_version, 0x020f);
  EXPECT_EQ(image->setup_size, 1024u);
  EXPECT_EQ(image->payload.data(), file.data() + 1024);
  EXPECT_EQ(image->payload.size(), kPayloadSize);
  EXPECT_EQ(image->loadflags, 0x01);
  EXPECT_EQ(image->xloadflags, 0x03);
  EXPECT_EQ(image->initrd_addr_max, 0x7fffffffu);
  EXPECT_EQ(image->kernel_alignment, 0x200000u);
  EXPECT_TRUE(image->relocatable_kernel);
  EXPECT_EQ(image->cmdline_size, 2047u);
  EXPECT_EQ(image->pref_address, 0x1000000u);
  EXPECT_EQ(image->init_size, 0x2000000u);
  ASSERT_EQ(image->setup_header.size(), 0x26cu - 0x1f1u);
  EXPECT_TRUE(std::equal(image->setup_header.begin(), image->setup_header.end(),
                         file.begin() + 0x1f1));
}

TEST(BzImageTest, ZeroSetupSectsMeansFour) {
  std::vector<uint8_t> file = MakeBzImage();
  file[0x1f1] = 0;
  file.insert(file.begin() + 1024, 3 * 512, 0);  // setup grows to 5 sectors
  auto image = ParseBzImage(file);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->setup_size, 5u * 512);
  EXPECT_EQ(image->payload.size(), kPayloadSize);
}

TEST(BzImageTest, RejectsElfWithAHint) {
  std::vector<uint8_t> file(8192, 0);
  std::memcpy(file.data(),
              "\x7f"
              "ELF",
              4);
  auto image = ParseBzImage(file);
  ASSERT_FALSE(image.ok());
  EXPECT_THAT(image.status().message(), HasSubstr("ELF"));
  EXPECT_THAT(image.status().message(), HasSubstr("vmlinux"));
  EXPECT_THAT(image.status().message(), HasSubstr("bzImage"));
}

TEST(BzImageTest, RejectsArm64ImageNamingIt) {
  std::vector<uint8_t> file(4096, 0);
  std::memcpy(&file[56], "ARM\x64", 4);
  auto image = ParseBzImage(file);
  ASSERT_FALSE(image.ok());
  EXPECT_THAT(image.status().message(),
              HasSubstr("is an arm64 Image; this skiff runs x86-64 guests"));
  auto gz = ParseBzImage(skiff::testing::GzipForTest(file));
  ASSERT_FALSE(gz.ok());
  EXPECT_THAT(gz.status().message(), HasSubstr("gzip-compressed arm64 Image"));
}

TEST(BzImageTest, RejectsRandomBytes) {
  std::mt19937 rng(1234);
  std::vector<uint8_t> file(65536);
  for (uint8_t& b : file) b = static_cast<uint8_t>(rng());
  auto image = ParseBzImage(file);
  ASSERT_FALSE(image.ok());
  EXPECT_THAT(image.status().message(), HasSubstr("0xAA55"));
}

TEST(BzImageTest, RejectsMissingHdrS) {
  std::vector<uint8_t> file = MakeBzImage();
  file[0x202] = 'X';
  auto image = ParseBzImage(file);
  ASSERT_FALSE(image.ok());
  EXPECT_THAT(image.status().message(), HasSubstr("HdrS"));
}

TEST(BzImageTest, RejectsTooSmallFile) {
  std::vector<uint8_t> file = MakeBzImage();
  file.resize(0x200);
  auto image = ParseBzImage(file);
  ASSERT_FALSE(image.ok());
  EXPECT_THAT(image.status().message(), HasSubstr("too small"));
}

TEST(BzImageTest, RejectsTruncatedPayload) {
  std::vector<uint8_t> file = MakeBzImage();
  file.resize(file.size() - 100);
  auto image = ParseBzImage(file);
  ASSERT_FALSE(image.ok());
  EXPECT_THAT(image.status().message(), HasSubstr("truncated"));
}

TEST(BzImageTest, RejectsSetupBeyondFile) {
  std::vector<uint8_t> file = MakeBzImage();
  file[0x1f1] = 200;  // 201 sectors of setup > 5 KiB file
  auto image = ParseBzImage(file);
  ASSERT_FALSE(image.ok());
  EXPECT_THAT(image.status().message(), HasSubstr("setup_sects 200"));
}

TEST(BzImageTest, RejectsEmptyPayload) {
  std::vector<uint8_t> file = MakeBzImage();
  file.resize(1024);
  Put(file, 0x1f4, 0, 4);
  auto image = ParseBzImage(file);
  ASSERT_FALSE(image.ok());
  EXPECT_THAT(image.status().message(), HasSubstr("no protected-mode kernel"));
}

TEST(BzImageTest, RejectsOldProtocol) {
  std::vector<uint8_t> file = MakeBzImage();
  Put(file, 0x206, 0x020a, 2);
  auto image = ParseBzImage(file);
  ASSERT_FALSE(image.ok());
  EXPECT_THAT(image.status().message(), HasSubstr("2.10 is too old"));
  EXPECT_THAT(image.status().message(), HasSubstr("2.12"));
}

TEST(BzImageTest, RejectsMissing64BitEntry) {
  std::vector<uint8_t> file = MakeBzImage();
  Put(file, 0x236, 0x02, 2);
  auto image = ParseBzImage(file);
  ASSERT_FALSE(image.ok());
  EXPECT_THAT(image.status().message(), HasSubstr("XLF_KERNEL_64"));
}

TEST(BzImageTest, RejectsHeaderRunningPastBootParamsArea) {
  std::vector<uint8_t> file = MakeBzImage();
  file[0x201] = 0xff;  // header would end at 0x301
  auto image = ParseBzImage(file);
  ASSERT_FALSE(image.ok());
  EXPECT_THAT(image.status().message(), HasSubstr("setup header ends"));
}

TEST(BzImageTest, RejectsNonPowerOfTwoAlignment) {
  std::vector<uint8_t> file = MakeBzImage();
  Put(file, 0x230, 0x300000, 4);
  EXPECT_FALSE(ParseBzImage(file).ok());
}

// Every prefix of a valid image must be rejected or parsed, never crash.
TEST(BzImageTest, EveryTruncationIsHandled) {
  const std::vector<uint8_t> file = MakeBzImage();
  for (size_t n = 0; n < file.size(); ++n) {
    auto image = ParseBzImage(std::span(file).first(n));
    EXPECT_FALSE(image.ok()) << "prefix of " << n << " bytes parsed";
  }
}

}  // namespace
}  // namespace skiff::boot

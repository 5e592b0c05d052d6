#include "boot/arm64_image.h"

#include <cstring>
#include <vector>

#include "boot/gunzip.h"
#include "boot/kernel_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/gzip_test_util.h"

namespace skiff::boot {
namespace {

using ::testing::HasSubstr;
using ::skiff::testing::GzipForTest;

void Put64(std::vector<uint8_t>& f, size_t offset, uint64_t value) {
  for (int i = 0; i < 8; ++i) f[offset + i] = (value >> (8 * i)) & 0xff;
}

// A 64 KiB Image as a 6.x kernel writes it: text_offset 0, image_size
// 1 MiB (file + BSS), flags LE | 4K pages | anywhere.
std::vector<uint8_t> MakeImage(uint64_t file_size = 64 * 1024) {
  std::vector<uint8_t> f(file_size, 0x11);
  std::memset(f.data(), 0, 64);
  Put64(f, 8, 0);         // text_offset
  Put64(f, 16, 1 << 20);  // image_size
  Put64(f, 24, (1 << 1) | (1 << 3));
  std::memcpy(&f[56], "ARM\x64", 4);
  return f;
}

std::vector<uint8_t> MakeBzImageHeader() {
  std::vector<uint8_t> f(4096, 0);
  f[0x1fe] = 0x55;
  f[0x1ff] = 0xaa;
  std::memcpy(&f[0x202], "HdrS", 4);
  return f;
}

TEST(Arm64ImageTest, ParsesHeader) {
  std::vector<uint8_t> file = MakeImage();
  auto image = ParseArm64Image(file);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->text_offset, 0u);
  EXPECT_EQ(image->image_size, 1u << 20);
  EXPECT_EQ(image->page_size, 4096u);
  EXPECT_EQ(image->payload.data(), file.data());
  EXPECT_EQ(image->payload.size(), file.size());
}

TEST(Arm64ImageTest, PageSizesFromFlags) {
  std::vector<uint8_t> file = MakeImage();
  Put64(file, 24, 3 << 1);
  auto image = ParseArm64Image(file);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->page_size, 65536u);
}

TEST(Arm64ImageTest, LegacyHeaderAssumesTextOffset0x80000) {
  std::vector<uint8_t> file = MakeImage();
  Put64(file, 8, 0x12345678);  // unreliable before 3.17
  Put64(file, 16, 0);          // image_size 0
  auto image = ParseArm64Image(file);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->text_offset, 0x80000u);
  EXPECT_GE(image->image_size, file.size());
}

TEST(Arm64ImageTest, TrailingDataPastImageSizeIsNotLoaded) {
  std::vector<uint8_t> file = MakeImage(2 << 20);  // file larger than image_size 1 MiB
  auto image = ParseArm64Image(file);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->payload.size(), 1u << 20);
}

TEST(Arm64ImageTest, RejectsBzImageNamingIt) {
  auto image = ParseArm64Image(MakeBzImageHeader());
  ASSERT_FALSE(image.ok());
  EXPECT_THAT(image.status().message(),
              HasSubstr("is an x86 bzImage; this skiff runs arm64 guests"));
}

TEST(Arm64ImageTest, RejectsNonImages) {
  std::vector<uint8_t> junk(4096, 0x42);
  auto image = ParseArm64Image(junk);
  ASSERT_FALSE(image.ok());
  EXPECT_THAT(image.status().message(), HasSubstr("not an arm64 Image"));
  EXPECT_FALSE(ParseArm64Image(std::vector<uint8_t>(10, 0)).ok());
  std::vector<uint8_t> elf(4096, 0);
  std::memcpy(elf.data(), "\x7f" "ELF", 4);
  EXPECT_THAT(ParseArm64Image(elf).status().message(), HasSubstr("vmlinux"));
}

TEST(Arm64ImageTest, RejectsBigEndianAndBadTextOffset) {
  std::vector<uint8_t> be = MakeImage();
  Put64(be, 24, 1);
  EXPECT_THAT(ParseArm64Image(be).status().message(), HasSubstr("big-endian"));
  std::vector<uint8_t> far = MakeImage();
  Put64(far, 8, 4ull << 20);
  EXPECT_THAT(ParseArm64Image(far).status().message(), HasSubstr("text_offset"));
  std::vector<uint8_t> huge = MakeImage();
  Put64(huge, 16, 1ull << 40);
  EXPECT_THAT(ParseArm64Image(huge).status().message(), HasSubstr("image_size"));
}

TEST(KernelFormatTest, TellsFormatsApart) {
  EXPECT_EQ(DetectKernelFormat(MakeImage()), KernelFormat::kArm64Image);
  EXPECT_EQ(DetectKernelFormat(MakeBzImageHeader()), KernelFormat::kBzImage);
  EXPECT_EQ(DetectKernelFormat(GzipForTest(MakeImage())), KernelFormat::kArm64ImageGz);
  EXPECT_EQ(DetectKernelFormat(GzipForTest(MakeBzImageHeader())), KernelFormat::kGzip);
  EXPECT_EQ(DetectKernelFormat(std::vector<uint8_t>(100, 0)), KernelFormat::kUnknown);
  EXPECT_EQ(DetectKernelFormat({}), KernelFormat::kUnknown);
}

TEST(GunzipTest, RoundTrips) {
  std::vector<uint8_t> image = MakeImage(3 << 20);
  for (size_t i = 0; i < image.size(); ++i) image[i] ^= static_cast<uint8_t>(i * 7);
  auto out = Gunzip(GzipForTest(image), 8 << 20);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, image);
}

TEST(GunzipTest, ExactlyAtTheBoundIsAccepted) {
  std::vector<uint8_t> data(4096, 0x33);
  auto out = Gunzip(GzipForTest(data), data.size());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->size(), data.size());
}

TEST(GunzipTest, OutputBeyondTheBoundIsRefused) {
  // 64 MiB of zeros compress to ~64 KiB: the bound, not the input size,
  // must stop it.
  std::vector<uint8_t> zeros(64 << 20, 0);
  std::vector<uint8_t> bomb = GzipForTest(zeros);
  ASSERT_LT(bomb.size(), 1u << 20);
  auto out = Gunzip(bomb, 1 << 20);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("more than 1048576 bytes"));
}

TEST(GunzipTest, NeverAllocatesPastTheBound) {
  // 9 MiB + 1 inflates in 4 MiB steps; left to std::vector's doubling the
  // buffer would end at 16 MiB capacity, and a stream just over a 512 MiB
  // bound at 1 GiB (plus the old 512 MiB during the copy).
  constexpr uint64_t kBound = 10 << 20;
  std::vector<uint8_t> data((9 << 20) + 1, 0x5a);
  auto out = Gunzip(GzipForTest(data), kBound);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->size(), data.size());
  EXPECT_LE(out->capacity(), kBound);
}

TEST(GunzipTest, RejectsTruncatedAndCorruptStreams) {
  std::vector<uint8_t> gz = GzipForTest(MakeImage());
  std::vector<uint8_t> cut(gz.begin(), gz.begin() + gz.size() / 2);
  EXPECT_THAT(Gunzip(cut, 1 << 20).status().message(), HasSubstr("truncated"));
  std::vector<uint8_t> bad = gz;
  for (size_t i = 10; i < 40 && i < bad.size(); ++i) bad[i] ^= 0xa5;
  EXPECT_FALSE(Gunzip(bad, 1 << 20).ok());
  EXPECT_FALSE(Gunzip(std::vector<uint8_t>{1, 2, 3}, 100).ok());
}

TEST(GunzipTest, PrefixInflatesOnlyWhatIsAsked) {
  std::vector<uint8_t> image = MakeImage();
  auto head = GunzipPrefix(GzipForTest(image), 64);
  ASSERT_TRUE(head.ok()) << head.status();
  ASSERT_EQ(head->size(), 64u);
  EXPECT_TRUE(std::equal(head->begin(), head->end(), image.begin()));
}

TEST(PlaceArm64BootTest, KernelAtRamBaseDtbAndInitrdAfterIt) {
  std::vector<uint8_t> file = MakeImage();
  auto image = ParseArm64Image(file);
  ASSERT_TRUE(image.ok());
  auto layout = PlaceArm64Boot(*image, 0x40000000, 256 << 20, 5 << 20);
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->kernel, 0x40000000u);
  EXPECT_EQ(layout->dtb % kArm64ImageAlignment, 0u);
  EXPECT_GE(layout->dtb, 0x40000000u + image->image_size);
  EXPECT_LT(layout->dtb, 0x40000000u + (512u << 20));  // pre-4.2 kernels
  ASSERT_TRUE(layout->initrd.has_value());
  EXPECT_GE(*layout->initrd, layout->dtb + kArm64DtbMaxSize);
  EXPECT_LE(*layout->initrd + (5 << 20), 0x40000000u + (256u << 20));
}

TEST(PlaceArm64BootTest, HonoursTextOffset) {
  std::vector<uint8_t> file = MakeImage();
  Put64(file, 8, 0x80000);
  auto image = ParseArm64Image(file);
  ASSERT_TRUE(image.ok());
  auto layout = PlaceArm64Boot(*image, 0x40000000, 64 << 20, std::nullopt);
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ(layout->kernel, 0x40080000u);
  EXPECT_FALSE(layout->initrd.has_value());
}

TEST(PlaceArm64BootTest, TooLittleRamIsAClearError) {
  std::vector<uint8_t> file = MakeImage();
  Put64(file, 16, 60 << 20);
  auto image = ParseArm64Image(file);
  ASSERT_TRUE(image.ok());
  auto small = PlaceArm64Boot(*image, 0x40000000, 32 << 20, std::nullopt);
  EXPECT_THAT(small.status().message(), HasSubstr("raise --memory"));
  auto initrd = PlaceArm64Boot(*image, 0x40000000, 128 << 20, 100 << 20);
  EXPECT_THAT(initrd.status().message(), HasSubstr("initramfs"));
}

TEST(ReadArm64KernelTest, ParsesAPlainImageInPlace) {
  std::vector<uint8_t> file = MakeImage();
  std::vector<uint8_t> storage;
  auto image = ReadArm64Kernel(file, 1 << 20, storage);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->payload.data(), file.data());
  EXPECT_TRUE(storage.empty());
}

TEST(ReadArm64KernelTest, InflatesImageGzIntoStorage) {
  std::vector<uint8_t> file = MakeImage();
  std::vector<uint8_t> storage;
  auto image = ReadArm64Kernel(GzipForTest(file), 1 << 20, storage);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(storage, file);
  EXPECT_EQ(image->payload.data(), storage.data());
  EXPECT_EQ(image->payload.size(), file.size());
}

TEST(ReadArm64KernelTest, RefusesImageGzPastTheBound) {
  std::vector<uint8_t> file = MakeImage(2 << 20);
  std::vector<uint8_t> storage;
  auto image = ReadArm64Kernel(GzipForTest(file), 1 << 20, storage);
  ASSERT_FALSE(image.ok());
  EXPECT_THAT(image.status().message(), HasSubstr("more than 1048576 bytes"));
  EXPECT_TRUE(storage.empty());
  // A gzip of something else is named as such after inflating.
  EXPECT_THAT(ReadArm64Kernel(GzipForTest(MakeBzImageHeader()), 1 << 20, storage)
                  .status()
                  .message(),
              HasSubstr("x86 bzImage"));
}

TEST(ReadArm64KernelTest, BoundIsGuestRamUpTo512MiB) {
  EXPECT_EQ(Arm64MaxInflatedSize(64 << 20), 64u << 20);
  EXPECT_EQ(Arm64MaxInflatedSize(512ull << 20), 512u << 20);
  EXPECT_EQ(Arm64MaxInflatedSize(8ull << 30), kArm64MaxImageSize);
}

}  // namespace
}  // namespace skiff::boot

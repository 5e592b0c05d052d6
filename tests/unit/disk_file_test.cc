// The raw image back-end: what Open refuses (and how it says so), locking,
// and the fallocate paths with their fallbacks.
#include "devices/block/disk_file.h"

#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>

#include <cstring>

#include "devices/virtio/blk.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/temp_dir.h"

namespace skiff::block {
namespace {

using ::skiff::testing::Pattern;
using ::skiff::testing::ReadFile;
using ::skiff::testing::TempDir;
using ::skiff::testing::WriteFile;
using ::testing::AllOf;
using ::testing::HasSubstr;

block::DiskOptions Disk(std::string path, bool readonly = false, bool direct = false,
                        std::string serial = "") {
  block::DiskOptions options;
  options.path = std::move(path);
  options.readonly = readonly;
  options.direct = direct;
  options.serial = std::move(serial);
  return options;
}

std::string OpenError(const DiskOptions& options) {
  auto file = DiskFile::Open(options);
  EXPECT_FALSE(file.ok()) << options.path << " opened";
  return file.ok() ? "" : std::string(file.status().message());
}

class DiskFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    image_ = dir_.File("disk.img");
    WriteFile(image_, Pattern(16 * 4096));
  }
  TempDir dir_;
  std::string image_;
};

TEST_F(DiskFileTest, MissingFile) {
  std::string path = dir_.File("nope.img");
  EXPECT_THAT(OpenError(Disk(path)), AllOf(HasSubstr(path), HasSubstr("no such file")));
  EXPECT_EQ(DiskFile::Open(Disk(path)).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DiskFileTest, Directory) {
  EXPECT_THAT(OpenError(Disk(dir_.path())),
              AllOf(HasSubstr(dir_.path()), HasSubstr("is a directory")));
  EXPECT_THAT(OpenError(Disk(dir_.path(), true)), HasSubstr("is a directory"));
}

TEST_F(DiskFileTest, NeitherRegularFileNorBlockDevice) {
  EXPECT_THAT(OpenError(Disk("/dev/null")),
              AllOf(HasSubstr("/dev/null"), HasSubstr("not a regular file or block device")));
}

TEST_F(DiskFileTest, EmptyPath) { EXPECT_THAT(OpenError(Disk("")), HasSubstr("no path")); }

TEST_F(DiskFileTest, UnwritableWithoutReadonlySuggestsReadonly) {
  // A read-only sysfs attribute: kernfs refuses O_RDWR even to root (root
  // would walk past chmod 0444), and it is a regular file.
  const std::string path = "/sys/devices/system/cpu/online";
  EXPECT_THAT(OpenError(Disk(path)),
              AllOf(HasSubstr(path), HasSubstr("not writable"), HasSubstr("readonly=on")));
  EXPECT_EQ(DiskFile::Open(Disk(path)).status().code(), absl::StatusCode::kPermissionDenied);
  // The same file opens read-only.
  auto file = DiskFile::Open(Disk(path, true));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE((*file)->readonly());
}

TEST_F(DiskFileTest, DirectIoUnsupportedSuggestsDroppingDirect) {
  // procfs files have no direct I/O: open(O_DIRECT) fails with EINVAL.
  EXPECT_THAT(OpenError(Disk("/proc/version", true, true)),
              AllOf(HasSubstr("/proc/version"), HasSubstr("O_DIRECT"), HasSubstr("direct=on")));
}

TEST_F(DiskFileTest, SecondWriterIsRefusedWhileTheFirstHoldsTheLock) {
  auto first = DiskFile::Open(Disk(image_));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(OpenError(Disk(image_)), AllOf(HasSubstr(image_), HasSubstr("locked")));
  EXPECT_THAT(OpenError(Disk(image_, true)), HasSubstr("locked"));
  first->reset();
  EXPECT_TRUE(DiskFile::Open(Disk(image_)).ok());
}

TEST_F(DiskFileTest, ReadersShareButExcludeAWriter) {
  auto a = DiskFile::Open(Disk(image_, true));
  auto b = DiskFile::Open(Disk(image_, true));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT(OpenError(Disk(image_)), HasSubstr("locked"));
}

TEST_F(DiskFileTest, VirtioBlkCreatePassesTheErrorsThrough) {
  auto blk = virtio::VirtioBlk::Create(Disk(dir_.File("missing.img")));
  ASSERT_FALSE(blk.ok());
  EXPECT_THAT(std::string(blk.status().message()), HasSubstr("no such file"));
}

TEST_F(DiskFileTest, ReadsAndWritesScatteredBuffers) {
  auto file = DiskFile::Open(Disk(image_));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->size(), 16u * 4096);
  EXPECT_EQ((*file)->block_size(), 512u);
  uint8_t a[100], b[924];
  std::memset(a, 1, sizeof(a));
  std::memset(b, 2, sizeof(b));
  iovec out[] = {{a, sizeof(a)}, {nullptr, 0}, {b, sizeof(b)}};
  ASSERT_TRUE((*file)->WriteAt(1024, out).ok());
  std::vector<uint8_t> want = Pattern(16 * 4096);
  std::memset(&want[1024], 1, 100);
  std::memset(&want[1124], 2, 924);
  EXPECT_EQ(ReadFile(image_), want);

  uint8_t c[1000], d[48];
  iovec in[] = {{c, sizeof(c)}, {d, sizeof(d)}};
  ASSERT_TRUE((*file)->ReadAt(1000, in).ok());
  EXPECT_EQ(0, std::memcmp(c, &want[1000], 1000));
  EXPECT_EQ(0, std::memcmp(d, &want[2000], 48));
  EXPECT_TRUE((*file)->Flush().ok());
}

TEST_F(DiskFileTest, ReadPastTheEndOfATruncatedFileIsAnError) {
  auto file = DiskFile::Open(Disk(image_));
  ASSERT_TRUE(file.ok());
  ASSERT_EQ(::truncate(image_.c_str(), 4096), 0);  // shrunk behind our back
  uint8_t buf[512];
  iovec in[] = {{buf, sizeof(buf)}};
  absl::Status s = (*file)->ReadAt(8192, in);
  EXPECT_THAT(std::string(s.message()), HasSubstr("end of file"));
}

TEST_F(DiskFileTest, ReadOnlyBackEndRefusesEveryChange) {
  auto file = DiskFile::Open(Disk(image_, true));
  ASSERT_TRUE(file.ok());
  uint8_t buf[512] = {};
  iovec out[] = {{buf, sizeof(buf)}};
  EXPECT_FALSE((*file)->WriteAt(0, out).ok());
  EXPECT_FALSE((*file)->Discard(0, 4096).ok());
  EXPECT_FALSE((*file)->WriteZeroes(0, 4096, true).ok());
  EXPECT_TRUE((*file)->Flush().ok());
  EXPECT_EQ(ReadFile(image_), Pattern(16 * 4096));
}

TEST_F(DiskFileTest, RangesPastTheEndAreRefused) {
  auto file = DiskFile::Open(Disk(image_));
  ASSERT_TRUE(file.ok());
  EXPECT_FALSE((*file)->Discard(16 * 4096 - 512, 1024).ok());
  EXPECT_FALSE((*file)->WriteZeroes(~0ull - 100, 512, false).ok());
  EXPECT_EQ(ReadFile(image_), Pattern(16 * 4096));
}

// Zeroing must work whichever fallocate modes the filesystem has: tmpfs has
// hole punching but no ZERO_RANGE, so there the write-zeroes fallback runs.
void CheckZeroing(const std::string& path) {
  SCOPED_TRACE(path);
  WriteFile(path, Pattern(16 * 4096));
  {
    auto file = DiskFile::Open(Disk(path));
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->WriteZeroes(4096, 8192, /*may_unmap=*/false).ok());
    ASSERT_TRUE((*file)->WriteZeroes(20480, 3 * 512, /*may_unmap=*/true).ok());
    ASSERT_TRUE((*file)->Discard(32768, 4096).ok());
    // Twice: the second call takes the remembered path.
    ASSERT_TRUE((*file)->WriteZeroes(40960, 512, /*may_unmap=*/false).ok());
  }
  std::vector<uint8_t> want = Pattern(16 * 4096);
  std::memset(&want[4096], 0, 8192);
  std::memset(&want[20480], 0, 3 * 512);
  std::memset(&want[40960], 0, 512);
  std::vector<uint8_t> got = ReadFile(path);
  ASSERT_EQ(got.size(), want.size());
  // A discard may leave anything behind on filesystems that can't punch;
  // ext4 and tmpfs punch, so the range reads as zeroes there.
  std::memset(&want[32768], 0, 4096);
  EXPECT_EQ(got, want);
}

TEST_F(DiskFileTest, ZeroingOnTheTestFilesystem) { CheckZeroing(image_); }

TEST_F(DiskFileTest, ZeroingOnTmpfsUsesTheFallback) {
  struct statfs fs {};
  // /dev/shm is a tmpfs on every Linux we run on; elsewhere this repeats
  // the test above rather than pretending.
  std::string dir = (::statfs("/dev/shm", &fs) == 0 && fs.f_type == 0x01021994 /*TMPFS_MAGIC*/)
                        ? "/dev/shm"
                        : dir_.path();
  std::string path = dir + "/skiff_zero_test_" + std::to_string(::getpid()) + ".img";
  CheckZeroing(path);
  ::unlink(path.c_str());
}

TEST_F(DiskFileTest, DirectIoUsesTheFilesystemAlignment) {
  auto file = DiskFile::Open(Disk(image_, false, true));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_GE((*file)->block_size(), 512u);
  EXPECT_EQ((*file)->block_size() & ((*file)->block_size() - 1), 0u);
  EXPECT_EQ((*file)->size() % (*file)->block_size(), 0u);
}

}  // namespace
}  // namespace skiff::block

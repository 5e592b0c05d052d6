#include "vmm/serial_log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/temp_dir.h"
#include "vmm/output_file.h"

namespace skiff {
namespace {

using ::testing::HasSubstr;

std::span<const uint8_t> Bytes(std::string_view text) {
  return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream out;
  out << file.rdbuf();
  return out.str();
}

TEST(SerialLogTest, KeepsEveryByteAsItArrives) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/console.log";
  {
    std::ofstream old(path);
    old << "stale contents from an earlier run\n";
  }
  auto log = SerialLog::Open(path, /*timestamps=*/false);
  ASSERT_TRUE(log.ok()) << log.status();
  log->Write(Bytes("hel"), absl::Seconds(1));
  // Unbuffered: what was written is in the file before the log is closed.
  EXPECT_EQ(ReadFile(path), "hel");
  log->Write(Bytes(std::string_view("lo\r\n\0\xff", 6)), absl::Seconds(2));
  EXPECT_EQ(ReadFile(path), std::string("hello\r\n\0\xff", 9));
}

TEST(SerialLogTest, TimestampsStartEachLineWithTheTimeOfItsFirstByte) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/console.log";
  auto log = SerialLog::Open(path, /*timestamps=*/true);
  ASSERT_TRUE(log.ok()) << log.status();
  log->Write(Bytes("boot"), absl::Milliseconds(1500));
  log->Write(Bytes("ing\nlogin: "), absl::Milliseconds(2250));
  log->Write(Bytes("\n"), absl::Seconds(3));
  EXPECT_EQ(ReadFile(path),
            "[   1.500000] booting\n"
            "[   2.250000] login: \n");
  EXPECT_EQ(SerialLogTimestamp(absl::Seconds(12345)), "[12345.000000] ");
}

TEST(SerialLogTest, UncreatableFileIsAnOperatorError) {
  auto log = SerialLog::Open("/nonexistent-dir/console.log", false);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(log.status().message()),
              HasSubstr("--serial-log /nonexistent-dir/console.log"));
  testing::TempDir dir;
  auto is_dir = CreateOutputFile("--junit", dir.path());
  ASSERT_FALSE(is_dir.ok());
  EXPECT_EQ(is_dir.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(is_dir.status().message()), HasSubstr("--junit"));
}

TEST(SerialLogTest, AFailingWriteStopsTheLogQuietlyAfterOneWarning) {
  // /dev/full fails every write with ENOSPC: a full disk.
  auto log = SerialLog::Open("/dev/full", false);
  ASSERT_TRUE(log.ok()) << log.status();
  log->Write(Bytes("one"), absl::ZeroDuration());
  log->Write(Bytes("two"), absl::ZeroDuration());  // no crash, no second attempt
}

}  // namespace
}  // namespace skiff

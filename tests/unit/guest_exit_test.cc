// The exit device, isa-debug-exit, and how their values become exit codes.
#include "vmm/guest_exit.h"

#include <cstdint>
#include <optional>
#include <vector>

#include "devices/legacy/exit_device.h"
#include "gtest/gtest.h"
#include "vmm/exit_codes.h"

namespace skiff {
namespace {

class ExitDeviceTest : public ::testing::Test {
 protected:
  std::vector<uint32_t> values_;
  ExitDevice device_{ExitDevice::Decode::kRegisterAtZero, [this](uint32_t value) { values_.push_back(value); }};
};

TEST_F(ExitDeviceTest, DwordWriteAtZeroReportsTheValue) {
  const uint8_t seven[4] = {7, 0, 0, 0};
  device_.Write(0, seven);
  const uint8_t big[4] = {0x78, 0x56, 0x34, 0x12};
  device_.Write(0, big);
  EXPECT_EQ(values_, (std::vector<uint32_t>{7, 0x12345678}));
}

TEST_F(ExitDeviceTest, ByteAndWordWritesAreZeroExtended) {
  const uint8_t byte[1] = {42};
  device_.Write(0, byte);
  const uint8_t word[2] = {0x34, 0x12};
  device_.Write(0, word);
  EXPECT_EQ(values_, (std::vector<uint32_t>{42, 0x1234}));
}

TEST_F(ExitDeviceTest, OtherOffsetsAndWidthsAreIgnored) {
  const uint8_t byte[1] = {9};
  device_.Write(1, byte);
  device_.Write(3, byte);
  const uint8_t three[3] = {1, 2, 3};
  device_.Write(0, three);
  const uint8_t eight[8] = {1, 0, 0, 0, 0, 0, 0, 0};
  device_.Write(0, eight);
  device_.Write(0, std::span<const uint8_t>());
  EXPECT_TRUE(values_.empty());
}

TEST_F(ExitDeviceTest, ReadsAsZero) {
  uint8_t data[4] = {0xff, 0xff, 0xff, 0xff};
  device_.Read(0, data);
  EXPECT_EQ(data[0] | data[1] | data[2] | data[3], 0);
  device_.Read(2, std::span<uint8_t>(data, 2));
  EXPECT_EQ(data[0] | data[1], 0);
  EXPECT_TRUE(values_.empty());
}

TEST(ExitDeviceNoCallbackTest, WriteWithoutCallbackIsHarmless) {
  ExitDevice device(ExitDevice::Decode::kRegisterAtZero, nullptr);
  const uint8_t seven[4] = {7, 0, 0, 0};
  device.Write(0, seven);  // must not crash
}

class IsaDebugExitTest : public ::testing::Test {
 protected:
  std::vector<uint32_t> values_;
  ExitDevice device_{ExitDevice::Decode::kAnyOffset, [this](uint32_t value) { values_.push_back(value); }};
};

TEST_F(IsaDebugExitTest, ByteWordAndDwordWritesReportTheValue) {
  const uint8_t byte[1] = {5};
  device_.Write(0, byte);
  const uint8_t word[2] = {0x10, 0x00};
  device_.Write(0, word);
  const uint8_t dword[4] = {0x11, 0, 0, 0};
  device_.Write(0, dword);
  EXPECT_EQ(values_, (std::vector<uint32_t>{5, 0x10, 0x11}));
}

TEST_F(IsaDebugExitTest, AnyPortOfTheDeviceCountsAsInQemu) {
  const uint8_t byte[1] = {3};
  device_.Write(2, byte);
  device_.Write(3, byte);
  EXPECT_EQ(values_, (std::vector<uint32_t>{3, 3}));
}

TEST_F(IsaDebugExitTest, OddWidthsAreIgnoredAndReadsAreZero) {
  const uint8_t three[3] = {1, 2, 3};
  device_.Write(0, three);
  device_.Write(0, std::span<const uint8_t>());
  uint8_t data[4] = {0xff, 0xff, 0xff, 0xff};
  device_.Read(0, data);
  EXPECT_EQ(data[0] | data[1] | data[2] | data[3], 0);
  EXPECT_TRUE(values_.empty());
}

TEST(GuestExitStatusTest, ExitDeviceCodesPassThroughExactly) {
  EXPECT_EQ(ExitDeviceStatus(0).code, 0);
  EXPECT_EQ(ExitDeviceStatus(7).code, 7);
  EXPECT_EQ(ExitDeviceStatus(42).code, 42);
  EXPECT_EQ(ExitDeviceStatus(119).code, 119);
  EXPECT_NE(ExitDeviceStatus(7).reason.find("exit device"), std::string::npos);
}

TEST(GuestExitStatusTest, ExitDeviceRefusesSkiffsOwnCodesAndNonCodes) {
  for (uint32_t value : {1u, 3u, 6u, 120u, 125u, 255u, 256u, 0xffffffffu}) {
    ExitStatus status = ExitDeviceStatus(value);
    EXPECT_EQ(status.code, kExitGuestCrash) << value;
    EXPECT_NE(status.reason.find(std::to_string(value)), std::string::npos) << status.reason;
    EXPECT_NE(status.reason.find("0 and 7-119"), std::string::npos) << status.reason;
  }
}

TEST(GuestExitStatusTest, GuestRangeStaysClearOfSkiffsCodes) {
  for (int code : {kExitOk, kExitVmmError, kExitUsage, kExitGuestPanic, kExitGuestCrash,
                   kExitTimeout, kExitSignal, kExitConsoleCheck}) {
    EXPECT_TRUE(code < kGuestExitCodeMin || code > kGuestExitCodeMax) << code;
  }
  EXPECT_LT(kExitConsoleCheck, 125);  // shells and git bisect own 125-127
}

TEST(GuestExitStatusTest, IsaDebugExitFollowsQemu) {
  EXPECT_EQ(IsaDebugExitStatus(0).code, 1);
  EXPECT_EQ(IsaDebugExitStatus(5).code, 11);
  EXPECT_EQ(IsaDebugExitStatus(0x10).code, 33);
  EXPECT_EQ(IsaDebugExitStatus(0x7f).code, 255);
  // An 8-bit exit status keeps the low 7 bits of the value.
  EXPECT_EQ(IsaDebugExitStatus(0x80).code, 1);
  EXPECT_EQ(IsaDebugExitStatus(0x85).code, 11);
  EXPECT_EQ(IsaDebugExitStatus(0xffffffff).code, 255);
  EXPECT_NE(IsaDebugExitStatus(5).reason.find("isa-debug-exit"), std::string::npos);
}

TEST(GuestExitWiringTest, DevicesEndTheRunThroughShutdown) {
  auto shutdown = Shutdown::Create();
  ASSERT_TRUE(shutdown.ok());
  const uint8_t seven[4] = {7, 0, 0, 0};
  MakeExitDevice(**shutdown)->Write(0, seven);
  ASSERT_TRUE((*shutdown)->requested());
  EXPECT_EQ((*shutdown)->status().code, 7);

  auto second = Shutdown::Create();
  ASSERT_TRUE(second.ok());
  const uint8_t five[1] = {5};
  MakeIsaDebugExit(**second)->Write(0, five);
  EXPECT_EQ((*second)->status().code, 11);
}

}  // namespace
}  // namespace skiff

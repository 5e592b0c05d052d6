#include "devices/legacy/acpi_pm.h"

#include <vector>

#include "gtest/gtest.h"

namespace skiff {
namespace {

constexpr uint8_t kS5 = 5;
constexpr uint8_t kResetValue = 1;
constexpr uint8_t kSlpEn = 0x20;

uint8_t SleepControl(uint8_t sleep_type, bool enable) {
  return static_cast<uint8_t>((sleep_type << 2) | (enable ? kSlpEn : 0));
}

class AcpiPmTest : public ::testing::Test {
 protected:
  AcpiPmTest()
      : pm_(AcpiPm::Options{
            .s5_sleep_type = kS5,
            .reset_value = kResetValue,
            .on_poweroff = [this] { ++poweroffs_; },
            .on_reset = [this] { ++resets_; },
            .on_unsupported_sleep =
                [this](uint8_t type) { unsupported_.push_back(type); },
        }) {}

  void Out(uint64_t offset, uint8_t value) {
    pm_.Write(offset, std::span<const uint8_t>(&value, 1));
  }
  uint8_t In(uint64_t offset) {
    uint8_t value = 0xaa;
    pm_.Read(offset, std::span<uint8_t>(&value, 1));
    return value;
  }

  int poweroffs_ = 0;
  int resets_ = 0;
  std::vector<uint8_t> unsupported_;
  AcpiPm pm_;
};

TEST_F(AcpiPmTest, S5WithSleepEnablePowersOff) {
  Out(AcpiPm::kSleepControlOffset, SleepControl(kS5, true));
  EXPECT_EQ(poweroffs_, 1);
  EXPECT_EQ(resets_, 0);
  EXPECT_TRUE(unsupported_.empty());
}

TEST_F(AcpiPmTest, S5WithoutSleepEnableDoesNothing) {
  // Linux writes SLP_TYP first, then SLP_TYP|SLP_EN.
  Out(AcpiPm::kSleepControlOffset, SleepControl(kS5, false));
  EXPECT_EQ(poweroffs_, 0);
  Out(AcpiPm::kSleepControlOffset, SleepControl(kS5, true));
  EXPECT_EQ(poweroffs_, 1);
}

TEST_F(AcpiPmTest, OtherSleepTypesAreRefusedAndWakeAtOnce) {
  EXPECT_EQ(In(AcpiPm::kSleepStatusOffset), 0);
  for (uint8_t type : {0, 1, 3, 7}) {
    Out(AcpiPm::kSleepControlOffset, SleepControl(type, true));
  }
  EXPECT_EQ(poweroffs_, 0);
  EXPECT_EQ(unsupported_, (std::vector<uint8_t>{0, 1, 3, 7}));
  // The guest's wait for WAK_STS ends; writing 1 clears it.
  EXPECT_EQ(In(AcpiPm::kSleepStatusOffset), 0x80);
  Out(AcpiPm::kSleepStatusOffset, 0x80);
  EXPECT_EQ(In(AcpiPm::kSleepStatusOffset), 0);
}

TEST_F(AcpiPmTest, ResetValueResets) {
  Out(AcpiPm::kResetOffset, 0x00);
  Out(AcpiPm::kResetOffset, 0x06);
  Out(AcpiPm::kResetOffset, 0xff);
  EXPECT_EQ(resets_, 0);
  Out(AcpiPm::kResetOffset, kResetValue);
  EXPECT_EQ(resets_, 1);
  EXPECT_EQ(poweroffs_, 0);
}

TEST_F(AcpiPmTest, RegistersReadZero) {
  EXPECT_EQ(In(AcpiPm::kSleepControlOffset), 0);
  EXPECT_EQ(In(AcpiPm::kSleepStatusOffset), 0);
  EXPECT_EQ(In(AcpiPm::kResetOffset), 0);
  Out(AcpiPm::kSleepControlOffset, SleepControl(kS5, true));
  EXPECT_EQ(In(AcpiPm::kSleepStatusOffset), 0);
}

TEST_F(AcpiPmTest, MultiByteAccessesAreByteWise) {
  // One 3-byte write: control (S5 staged, no SLP_EN), status, reset.
  const uint8_t bytes[3] = {SleepControl(kS5, false), 0x00, kResetValue};
  pm_.Write(0, bytes);
  EXPECT_EQ(poweroffs_, 0);
  EXPECT_EQ(resets_, 1);
  // Bytes past the last register are dropped, not wrapped.
  const uint8_t past[4] = {0, 0, 0, kResetValue};
  pm_.Write(0, past);
  pm_.Write(2, std::span<const uint8_t>(past + 1, 3));
  pm_.Write(3, bytes);
  pm_.Write(~0ull, bytes);
  EXPECT_EQ(resets_, 1);
  uint8_t wide[8];
  pm_.Read(0, wide);
  for (uint8_t b : wide) EXPECT_EQ(b, 0);
  pm_.Read(~0ull, wide);
  pm_.Write(0, std::span<const uint8_t>());
}

TEST(AcpiPmNoCallbacksTest, MissingCallbacksAreHarmless) {
  AcpiPm pm(AcpiPm::Options{.s5_sleep_type = kS5, .reset_value = 1});
  const uint8_t s5 = SleepControl(kS5, true), s3 = SleepControl(3, true),
                reset = 1;
  pm.Write(0, std::span<const uint8_t>(&s5, 1));
  pm.Write(0, std::span<const uint8_t>(&s3, 1));
  pm.Write(2, std::span<const uint8_t>(&reset, 1));
}

}  // namespace
}  // namespace skiff

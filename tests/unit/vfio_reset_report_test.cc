// What Skiff says about a passed-through function's reset between owners.
#include "devices/vfio/reset_report.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace skiff::vfio {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ResetReportTest, NoResetIsAWarningThatNamesWhatLeaks) {
  const ResetReport r = DescribeReset("0000:00:01.0", "", /*vfio_can_reset=*/false);
  EXPECT_TRUE(r.warn);
  EXPECT_THAT(r.message, HasSubstr("0000:00:01.0: the host has no reset for it"));
  EXPECT_THAT(r.message, HasSubstr("DMA rings"));
}

TEST(ResetReportTest, NoResetWarnsEvenWhenSysfsListsMethods) {
  // VFIO's flag is what counts: it is what VFIO_DEVICE_RESET will do.
  EXPECT_TRUE(DescribeReset("0000:00:01.0", "flr", false).warn);
}

TEST(ResetReportTest, PowerManagementResetIsNamedAsOnlyADStateTransition) {
  const ResetReport r = DescribeReset("0000:00:01.0", "pm", true);
  EXPECT_FALSE(r.warn);
  EXPECT_THAT(r.message, HasSubstr("host reset method: pm; a D3hot->D0 transition only"));
}

TEST(ResetReportTest, FunctionLevelResetIsPlain) {
  const ResetReport r = DescribeReset("0000:03:00.0", "flr pm", true);
  EXPECT_FALSE(r.warn);
  EXPECT_EQ(r.message, "0000:03:00.0: reset by VFIO at start and at exit (host reset method: flr pm)");
  EXPECT_THAT(r.message, Not(HasSubstr("D3hot")));
}

TEST(ResetReportTest, KernelWithoutResetMethodFile) {
  const ResetReport r = DescribeReset("0000:00:01.0", "", true);
  EXPECT_FALSE(r.warn);
  EXPECT_EQ(r.message, "0000:00:01.0: reset by VFIO at start and at exit");
}

}  // namespace
}  // namespace skiff::vfio

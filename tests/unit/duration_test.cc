#include "vmm/duration.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace skiff {
namespace {

using ::testing::HasSubstr;

TEST(DurationTest, UnitsAndBareSeconds) {
  EXPECT_EQ(*ParseDuration("30s"), absl::Seconds(30));
  EXPECT_EQ(*ParseDuration("2m"), absl::Minutes(2));
  EXPECT_EQ(*ParseDuration("500ms"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseDuration("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDuration("1.5s"), absl::Milliseconds(1500));
  EXPECT_EQ(*ParseDuration("45"), absl::Seconds(45));
  EXPECT_EQ(*ParseDuration("0.25"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseDuration(" 10s "), absl::Seconds(10));
}

TEST(DurationTest, RejectsZeroNegativeJunkAndHuge) {
  for (const char* text : {"0", "0s", "0ms", "-5s", "-1"}) {
    auto d = ParseDuration(text);
    ASSERT_FALSE(d.ok()) << text;
    EXPECT_THAT(std::string(d.status().message()), HasSubstr(text));
  }
  for (const char* text :
       {"", "s", "ten", "10x", "10 s", "1d", "inf", "nan", "1e3", "5s5", "..", "-inf"}) {
    auto d = ParseDuration(text);
    ASSERT_FALSE(d.ok()) << "'" << text << "'";
    EXPECT_THAT(std::string(d.status().message()), HasSubstr("duration")) << text;
  }
  EXPECT_THAT(std::string(ParseDuration("9000000h").status().message()),
              HasSubstr("longer than a year"));
  EXPECT_FALSE(ParseDuration("99999999999999999999999").ok());
}

}  // namespace
}  // namespace skiff

#include "devices/net/mac_address.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace skiff::net {
namespace {

using ::testing::HasSubstr;

TEST(ParseMacTest, AcceptsColonAndDashForms) {
  auto mac = ParseMac("52:54:00:12:34:5a");
  ASSERT_TRUE(mac.ok()) << mac.status();
  EXPECT_EQ(*mac, (MacAddress{0x52, 0x54, 0x00, 0x12, 0x34, 0x5a}));
  mac = ParseMac("02-AB-cd-EF-01-ff");
  ASSERT_TRUE(mac.ok()) << mac.status();
  EXPECT_EQ(*mac, (MacAddress{0x02, 0xab, 0xcd, 0xef, 0x01, 0xff}));
}

TEST(ParseMacTest, RejectsMalformedText) {
  for (const char* bad :
       {"", "52:54:00:12:34", "52:54:00:12:34:56:78", "52:54:00:12:34:5", "5:54:00:12:34:567",
        "52:54:00:12:34:5g", "52-54:00:12:34:56", "52.54.00.12.34.56", "525400123456",
        " 52:54:00:12:34:56", "52:54:00:12:34:56 ", "52:54:00:12:34:-1"}) {
    auto mac = ParseMac(bad);
    ASSERT_FALSE(mac.ok()) << "accepted '" << bad << "'";
    EXPECT_THAT(mac.status().message(), HasSubstr("six hex pairs")) << bad;
  }
}

TEST(ParseMacTest, RejectsMulticastBroadcastAndZero) {
  for (const char* bad : {"01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "53:54:00:12:34:56"}) {
    auto mac = ParseMac(bad);
    ASSERT_FALSE(mac.ok()) << bad;
    EXPECT_THAT(mac.status().message(), HasSubstr("multicast")) << bad;
  }
  auto zero = ParseMac("00:00:00:00:00:00");
  ASSERT_FALSE(zero.ok());
  EXPECT_THAT(zero.status().message(), HasSubstr("all-zero"));
}

TEST(RandomMacTest, UnicastLocallyAdministeredAndVaried) {
  std::set<MacAddress> seen;
  for (int i = 0; i < 64; ++i) {
    MacAddress mac = RandomMac();
    EXPECT_EQ(mac[0] & 0x01, 0) << FormatMac(mac);
    EXPECT_EQ(mac[0] & 0x02, 0x02) << FormatMac(mac);
    EXPECT_TRUE(ParseMac(FormatMac(mac)).ok()) << FormatMac(mac);
    seen.insert(mac);
  }
  EXPECT_GT(seen.size(), 60u);  // 46 random bits: repeats mean no randomness
}

TEST(FormatMacTest, RoundTrips) {
  MacAddress mac{0x52, 0x54, 0x00, 0xab, 0x0c, 0x01};
  EXPECT_EQ(FormatMac(mac), "52:54:00:ab:0c:01");
  EXPECT_EQ(*ParseMac(FormatMac(mac)), mac);
}

}  // namespace
}  // namespace skiff::net

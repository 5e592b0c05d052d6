#include "arch/arm64/fdt_writer.h"

#include <libfdt.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/fdt_test_util.h"

namespace skiff::fdt {
namespace {

using ::skiff::testing::FdtCells;
using ::skiff::testing::FdtHasNode;
using ::skiff::testing::FdtProp;
using ::skiff::testing::FdtStrings;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(FdtWriterTest, WritesNodesAndPropertiesLibfdtReadsBack) {
  FdtWriter w(4096);
  w.BeginNode("");
  w.PropertyU32("#address-cells", 2);
  w.BeginNode("child@1000");
  w.PropertyStrings("compatible", {"vendor,a", "vendor,b"});
  w.PropertyCells("reg", Cells64({0x1000, 0x200}));
  w.PropertyU64("big", 0x1122334455667788ull);
  w.PropertyEmpty("flag");
  w.EndNode();
  w.EndNode();
  auto blob = w.Finish();
  ASSERT_TRUE(blob.ok()) << blob.status();
  ASSERT_EQ(fdt_check_full(blob->data(), blob->size()), 0);
  EXPECT_EQ(fdt_totalsize(blob->data()), blob->size());
  EXPECT_THAT(FdtCells(*blob, "/", "#address-cells"), ElementsAre(2u));
  EXPECT_TRUE(FdtHasNode(*blob, "/child@1000"));
  EXPECT_THAT(FdtStrings(*blob, "/child@1000", "compatible"), ElementsAre("vendor,a", "vendor,b"));
  EXPECT_THAT(FdtCells(*blob, "/child@1000", "reg"), ElementsAre(0u, 0x1000u, 0u, 0x200u));
  EXPECT_THAT(FdtCells(*blob, "/child@1000", "big"), ElementsAre(0x11223344u, 0x55667788u));
  auto flag = FdtProp(*blob, "/child@1000", "flag");
  ASSERT_TRUE(flag.has_value());
  EXPECT_TRUE(flag->empty());
}

TEST(FdtWriterTest, RunningOutOfRoomIsAnError) {
  FdtWriter w(128);
  w.BeginNode("");
  for (int i = 0; i < 20; ++i) w.PropertyString("p" + std::to_string(i), "a long value");
  w.EndNode();
  auto blob = w.Finish();
  ASSERT_FALSE(blob.ok());
  EXPECT_THAT(blob.status().message(), HasSubstr("FDT_ERR_NOSPACE"));
}

TEST(FdtWriterTest, UnbalancedNodesAreAnError) {
  FdtWriter open(1024);
  open.BeginNode("");
  open.BeginNode("a");
  open.EndNode();
  EXPECT_THAT(open.Finish().status().message(), HasSubstr("left open"));
  FdtWriter extra(1024);
  extra.BeginNode("");
  extra.EndNode();
  extra.EndNode();
  EXPECT_FALSE(extra.Finish().ok());
}

// Code that writes its own node with libfdt (the fsl-mc node) goes in
// between; its error sticks, and nothing after it is written.
TEST(FdtWriterTest, RawWritersShareTheTreeAndItsErrors) {
  FdtWriter w(1024);
  w.BeginNode("");
  w.Raw([](void* fdt) {
    EXPECT_EQ(fdt_begin_node(fdt, "raw@1"), 0);
    EXPECT_EQ(fdt_property_u32(fdt, "value", 7), 0);
    EXPECT_EQ(fdt_end_node(fdt), 0);
    return absl::OkStatus();
  });
  w.EndNode();
  auto blob = w.Finish();
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_THAT(FdtCells(*blob, "/raw@1", "value"), ElementsAre(7u));

  FdtWriter failing(1024);
  failing.BeginNode("");
  failing.Raw([](void*) { return absl::InternalError("raw: FDT_ERR_NOSPACE"); });
  bool called = false;
  failing.Raw([&called](void*) {
    called = true;
    return absl::OkStatus();
  });
  failing.EndNode();
  EXPECT_EQ(failing.Finish().status().message(), "raw: FDT_ERR_NOSPACE");
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace skiff::fdt

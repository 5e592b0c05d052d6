#include "vmm/irq_routing.h"

#include <fcntl.h>

#include "gtest/gtest.h"
#include "vmm/unique_fd.h"

namespace skiff {
namespace {

kvm_irq_routing_entry IrqchipRoute(uint32_t gsi) {
  kvm_irq_routing_entry e{};
  e.gsi = gsi;
  e.type = KVM_IRQ_ROUTING_IRQCHIP;
  e.u.irqchip.irqchip = 2;  // x86's KVM_IRQCHIP_IOAPIC; the table only stores it
  e.u.irqchip.pin = gsi;
  return e;
}

TEST(IrqRoutingTest, KeepsBaseRoutesAndAddsMsi) {
  IrqRouting routing(-1, {IrqchipRoute(0), IrqchipRoute(1)}, 24, 26);
  auto gsi = routing.AllocateGsi();
  ASSERT_TRUE(gsi.ok());
  EXPECT_EQ(*gsi, 24u);
  ASSERT_TRUE(routing.SetMsiRoute(*gsi, 0xfee01000, 0x4041, std::nullopt).ok());
  auto table = routing.Table();
  ASSERT_EQ(table.size(), 3u);
  EXPECT_EQ(table[0].type, static_cast<uint32_t>(KVM_IRQ_ROUTING_IRQCHIP));
  EXPECT_EQ(table[2].gsi, 24u);
  EXPECT_EQ(table[2].type, static_cast<uint32_t>(KVM_IRQ_ROUTING_MSI));
  EXPECT_EQ(table[2].u.msi.address_lo, 0xfee01000u);
  EXPECT_EQ(table[2].u.msi.address_hi, 0u);
  EXPECT_EQ(table[2].u.msi.data, 0x4041u);
  EXPECT_EQ(table[2].flags, 0u);
}

TEST(IrqRoutingTest, ARouteTheKernelRefusesIsNotKept) {
  // /dev/null answers KVM_SET_GSI_ROUTING with ENOTTY, as KVM answers a bad
  // table with EINVAL: the table must stay what the kernel last took.
  UniqueFd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(null_fd.valid());
  IrqRouting routing(null_fd.get(), {IrqchipRoute(0)}, 24, 26);
  EXPECT_FALSE(routing.SetMsiRoute(24, 0xfee01000, 0x4041, std::nullopt).ok());
  auto table = routing.Table();
  ASSERT_EQ(table.size(), 1u);
  EXPECT_EQ(table[0].type, static_cast<uint32_t>(KVM_IRQ_ROUTING_IRQCHIP));
}

TEST(IrqRoutingTest, DevidIsPassedForInterruptTranslation) {
  IrqRouting routing(-1, {}, 32, 64);
  uint32_t gsi = *routing.AllocateGsi();
  ASSERT_TRUE(routing.SetMsiRoute(gsi, 0x8090040ull | (1ull << 32), 7, 0x0008).ok());
  auto table = routing.Table();
  ASSERT_EQ(table.size(), 1u);
  EXPECT_EQ(table[0].flags, static_cast<uint32_t>(KVM_MSI_VALID_DEVID));
  EXPECT_EQ(table[0].u.msi.devid, 8u);
  EXPECT_EQ(table[0].u.msi.address_hi, 1u);
}

TEST(IrqRoutingTest, RunsOutCleanlyAndReusesFreedGsis) {
  IrqRouting routing(-1, {}, 24, 26);
  uint32_t a = *routing.AllocateGsi();
  uint32_t b = *routing.AllocateGsi();
  EXPECT_NE(a, b);
  auto none = routing.AllocateGsi();
  EXPECT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(routing.SetMsiRoute(a, 0xfee00000, 1, std::nullopt).ok());
  routing.FreeGsi(a);
  EXPECT_TRUE(routing.Table().empty());  // a freed vector's route goes too
  EXPECT_EQ(*routing.AllocateGsi(), a);
}

TEST(IrqRoutingTest, ClearRouteRemovesOnlyThatVector) {
  IrqRouting routing(-1, {IrqchipRoute(4)}, 24, 100);
  uint32_t a = *routing.AllocateGsi();
  uint32_t b = *routing.AllocateGsi();
  ASSERT_TRUE(routing.SetMsiRoute(a, 0xfee00000, 1, std::nullopt).ok());
  ASSERT_TRUE(routing.SetMsiRoute(b, 0xfee00000, 2, std::nullopt).ok());
  ASSERT_TRUE(routing.ClearRoute(a).ok());
  auto table = routing.Table();
  ASSERT_EQ(table.size(), 2u);
  EXPECT_EQ(table[1].gsi, b);
}

}  // namespace
}  // namespace skiff

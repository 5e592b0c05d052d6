// A passed-through PCI function as the arm64 machine wires it, checked
// against the device tree the guest gets (arm64 build only: it calls
// arch/arm64's PlatformPciLayout, IrqLineNumber and DefaultIrqRouting).
// The guest finds the function by scanning ECAM, so the tree describes no
// node for it; what must agree is:
//   * MSI: Skiff's MSI routes carry the function's BDF as the ITS DeviceID;
//     the guest's ITS driver maps the requester ID through the tree's
//     msi-map. A mismatch means KVM's ITS drops every MSI-X interrupt.
//   * INTx: the GSI Skiff puts VFIO's INTx irqfd on is the SPI the tree's
//     interrupt-map names for the slot's INTA.
//   * BARs: placed inside the windows the tree's `ranges` announce (32-bit
//     BARs below 4 GiB, 64-bit BARs in the window at 512 GiB), I/O BARs
//     left unassigned (no I/O window).
#include <linux/kvm.h>
#include <linux/vfio.h>

#include <cstring>
#include <map>
#include <optional>

#include "arch/arch.h"
#include "arch/arm64/layout.h"
#include "arch/arm64/platform_fdt.h"
#include "devices/pci/intx_router.h"
#include "devices/pci/msix_table.h"
#include "devices/pci/pci_constants.h"
#include "devices/pci/pci_root.h"
#include "devices/vfio/vfio_container.h"
#include "devices/vfio/vfio_pci_device.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_irq_line.h"
#include "tests/unit/fake_vfio_kernel.h"
#include "tests/unit/fdt_test_util.h"
#include "tests/unit/pci_test_fakes.h"
#include "vmm/bus.h"
#include "vmm/memory_slot_registrar.h"
#include "vmm/pci_root_config.h"
#include "vmm/vfio_setup.h"

namespace skiff {
namespace {

using ::skiff::testing::FdtCells;
using vfio::FakePciFunction;
using vfio::FakeVfioKernel;

const std::string kPciNode = "/pcie@30000000";

std::vector<uint8_t> GuestDeviceTree() {
  arm64::PlatformDescription p;
  p.ram_size = 256ull << 20;
  p.gic = arm64::GicKind::kV3;
  p.msi_controller = true;
  p.pci = true;
  auto dtb = arm64::BuildPlatformFdt(p);
  EXPECT_TRUE(dtb.ok()) << dtb.status();
  return dtb.ok() ? *dtb : std::vector<uint8_t>{};
}

// The SPI the tree's interrupt-map routes (slot, pin) of bus 0 to, applying
// interrupt-map-mask as the guest kernel does.
std::optional<uint32_t> InterruptMapSpi(const std::vector<uint8_t>& dtb, uint8_t slot,
                                        uint8_t pin) {
  const std::vector<uint32_t> mask = FdtCells(dtb, kPciNode, "interrupt-map-mask");
  const std::vector<uint32_t> map = FdtCells(dtb, kPciNode, "interrupt-map");
  if (mask.size() != 4) return std::nullopt;
  const uint32_t unit = (uint32_t{slot} << 11) & mask[0];
  // child unit address (3) + pin (1), GIC phandle, parent unit address (2),
  // GIC_SPI, number, flags.
  for (size_t e = 0; e + 10 <= map.size(); e += 10) {
    if (map[e] == unit && map[e + 1] == 0 && map[e + 2] == 0 && map[e + 3] == (pin & mask[3]) &&
        map[e + 4] == arm64::kGicPhandle && map[e + 7] == 0 /* GIC_SPI */) {
      return map[e + 8];
    }
  }
  return std::nullopt;
}

// The ITS DeviceID the tree's msi-map gives requester ID `rid`.
std::optional<uint32_t> MsiMapDeviceId(const std::vector<uint8_t>& dtb, uint32_t rid) {
  const std::vector<uint32_t> map = FdtCells(dtb, kPciNode, "msi-map");
  for (size_t e = 0; e + 4 <= map.size(); e += 4) {
    if (map[e + 1] == arm64::kMsiPhandle && rid >= map[e] && rid - map[e] < map[e + 3]) {
      return map[e + 2] + (rid - map[e]);
    }
  }
  return std::nullopt;
}

// The memory window of the tree's `ranges` with PCI space code `space`
// (0x02 32-bit, 0x03 64-bit memory; phys.hi bits 24-25) as (CPU address,
// size), after checking it is identity-mapped; {0, 0} when absent.
std::pair<uint64_t, uint64_t> RangesWindow(const std::vector<uint8_t>& dtb, uint32_t space) {
  const std::vector<uint32_t> r = FdtCells(dtb, kPciNode, "ranges");
  EXPECT_EQ(r.size() % 7, 0u);
  for (size_t e = 0; e + 7 <= r.size(); e += 7) {
    if (((r[e] >> 24) & 0x3) != space) continue;
    const uint64_t pci = uint64_t{r[e + 1]} << 32 | r[e + 2];
    const uint64_t cpu = uint64_t{r[e + 3]} << 32 | r[e + 4];
    EXPECT_EQ(pci, cpu);
    return {cpu, uint64_t{r[e + 5]} << 32 | r[e + 6]};
  }
  return {0, 0};
}
constexpr uint32_t kSpaceMem32 = 0x2;
constexpr uint32_t kSpaceMem64 = 0x3;

TEST(Arm64VfioWiringTest, RootWindowsAreTheDeviceTreesRanges) {
  const std::vector<uint8_t> dtb = GuestDeviceTree();
  const pci::PciRootConfig config = PciRootConfigFor(arch::PlatformPciLayout());
  EXPECT_EQ(RangesWindow(dtb, kSpaceMem32),
            std::make_pair(config.mmio32.base, config.mmio32.size));
  ASSERT_TRUE(config.mmio64.has_value());
  EXPECT_EQ(RangesWindow(dtb, kSpaceMem64),
            std::make_pair(config.mmio64->base, config.mmio64->size));
  EXPECT_EQ(config.mmio64->base, arm64::kPciMmio64Base);
  EXPECT_FALSE(config.io.has_value());  // no I/O window on arm64
}

TEST(Arm64VfioWiringTest, EverySlotsDeviceIdAndIntxMatchTheDeviceTree) {
  const std::vector<uint8_t> dtb = GuestDeviceTree();
  const arch::PciLayout layout = arch::PlatformPciLayout();
  Bus mmio("mmio"), pio("pio");
  auto root = pci::PciRoot::Create(PciRootConfigFor(layout), &mmio, &pio, {});
  ASSERT_TRUE(root.ok()) << root.status();
  const arch::IrqRoutingBase routing = arch::DefaultIrqRouting();
  int slots = 0;
  for (auto slot = (*root)->ReserveSlot(); slot.ok(); slot = (*root)->ReserveSlot()) {
    ++slots;
    const PassthroughWiring wiring = WiringForSlot(layout, *slot);
    SCOPED_TRACE(::testing::Message() << "slot " << int{slot->device});
    EXPECT_EQ(wiring.devid, slot->bdf);
    EXPECT_EQ(MsiMapDeviceId(dtb, slot->bdf), std::optional<uint32_t>(wiring.devid));
    EXPECT_EQ(InterruptMapSpi(dtb, slot->device, pci::kInterruptPinA),
              std::optional<uint32_t>(wiring.intx_gsi));
    // The GSI is a wired SPI: KVM_IRQ_LINE reaches GIC INTID 32 + SPI and
    // the routing table keeps GSI n -> SPI n for it.
    EXPECT_EQ(arch::IrqLineNumber(wiring.intx_gsi),
              (uint32_t{KVM_ARM_IRQ_TYPE_SPI} << KVM_ARM_IRQ_TYPE_SHIFT) |
                  (arm64::kGicSpiBase + wiring.intx_gsi));
    EXPECT_LT(wiring.intx_gsi, routing.first_msi_gsi);
    bool routed = false;
    for (const kvm_irq_routing_entry& e : routing.routes) {
      routed |= e.gsi == wiring.intx_gsi && e.type == KVM_IRQ_ROUTING_IRQCHIP &&
                e.u.irqchip.pin == wiring.intx_gsi;
    }
    EXPECT_TRUE(routed);
  }
  EXPECT_EQ(slots, 31);  // slot 0 is the host bridge
}

// KVM's side, recorded: memory slots and irqfds.
class FakeKvm : public MemorySlotRegistrar, public IrqFdRegistrar {
 public:
  absl::StatusOr<uint32_t> AddMemorySlot(uint64_t gpa, uint64_t size, void*) override {
    slots[next] = {gpa, size};
    return next++;
  }
  absl::Status RemoveMemorySlot(uint32_t slot) override {
    slots.erase(slot);
    return absl::OkStatus();
  }
  absl::Status AddIrqFd(int eventfd, uint32_t gsi, int) override {
    irqfd_gsis[eventfd] = gsi;
    return absl::OkStatus();
  }
  absl::Status RemoveIrqFd(int eventfd, uint32_t) override {
    irqfd_gsis.erase(eventfd);
    return absl::OkStatus();
  }
  std::map<uint32_t, std::pair<uint64_t, uint64_t>> slots;
  std::map<int, uint32_t> irqfd_gsis;
  uint32_t next = 0;
};

// The machine's steps (vmm/vfio_setup.cc) on a fake kernel: a function in
// a slot of a root laid out as on arm64.
class Arm64PassthroughTest : public ::testing::Test {
 protected:
  // The root and the bus hold the device too: all three let go while the
  // fakes it calls on its way out still exist (as Machine does).
  void TearDown() override {
    device_.reset();
    root_.reset();
    mmio_.Clear();
    pio_.Clear();
  }
  void Attach(FakePciFunction function) {
    layout_ = arch::PlatformPciLayout();
    // The root as the machine configures it (vmm/machine.cc).
    auto root = pci::PciRoot::Create(PciRootConfigFor(layout_), &mmio_, &pio_, {});
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = *root;
    // Another device first, so the function is not in slot 1 by accident.
    ASSERT_TRUE(root_->ReserveSlot().ok());
    kernel_ = std::make_shared<FakeVfioKernel>();
    fn_ = std::make_shared<FakePciFunction>(std::move(function));
    kernel_->groups[3].devices = {fn_};
    auto container = vfio::VfioContainer::Open(kernel_);
    ASSERT_TRUE(container.ok());
    auto opened =
        (*container)->OpenDevice(vfio::HostPciDevice{fn_->name, 3, {{fn_->name, "vfio-pci"}}, {}});
    ASSERT_TRUE(opened.ok()) << opened.status();
    auto slot = root_->ReserveSlot();
    ASSERT_TRUE(slot.ok());
    slot_ = *slot;
    const PassthroughWiring wiring = WiringForSlot(layout_, slot_);
    vfio::VfioPciEnv env;
    env.msi = &msi_;
    env.slots = &kvm_;
    env.irqfds = &kvm_;
    env.intx_gsi = wiring.intx_gsi;
    env.bdf = wiring.devid;
    auto device = vfio::VfioPciDevice::Create(*container, *std::move(opened), env);
    ASSERT_TRUE(device.ok()) << device.status();
    device_ = *device;
    ASSERT_TRUE(root_->Attach(slot_, device_).ok());
  }
  void CfgWrite(uint32_t offset, uint32_t size, uint32_t value) {
    root_->WriteConfig(0, slot_.device, 0, offset, size, value);
  }
  void MmioWrite32(uint64_t address, uint32_t value) {
    uint8_t bytes[4];
    std::memcpy(bytes, &value, 4);
    EXPECT_TRUE(mmio_.Write(address, bytes));
  }

  Bus mmio_{"mmio"}, pio_{"pio"};
  arch::PciLayout layout_;
  std::shared_ptr<pci::PciRoot> root_;
  pci::PciRoot::Slot slot_;
  std::shared_ptr<FakeVfioKernel> kernel_;
  std::shared_ptr<FakePciFunction> fn_;
  FakeMsiAllocator msi_;
  FakeKvm kvm_;
  std::shared_ptr<vfio::VfioPciDevice> device_;
};

TEST_F(Arm64PassthroughTest, E1000eBarsSitInTheDeviceTreeWindowAndIoStaysUnassigned) {
  Attach(FakePciFunction::E1000e());
  const auto [base, size] = RangesWindow(GuestDeviceTree(), kSpaceMem32);
  EXPECT_EQ(base, arm64::kPciMmio32Base);
  for (int bar : {0, 1, 3}) {
    auto address = root_->MappedAddress(slot_.device, bar);
    ASSERT_TRUE(address.has_value()) << "BAR " << bar;
    const uint64_t bar_size = fn_->regions[bar].size;
    EXPECT_GE(*address, base) << "BAR " << bar;
    EXPECT_LE(*address + bar_size, base + size) << "BAR " << bar;
    EXPECT_EQ(*address % bar_size, 0u) << "BAR " << bar;  // naturally aligned
  }
  // No I/O window on arm64: the port BAR is never placed.
  EXPECT_FALSE(root_->MappedAddress(slot_.device, 2).has_value());
  // The mmap-able BARs became KVM slots at the guest addresses.
  bool bar0_slot = false;
  for (const auto& [id, range] : kvm_.slots) {
    bar0_slot |= range.first == *root_->MappedAddress(slot_.device, 0) && range.second == 0x20000;
  }
  EXPECT_TRUE(bar0_slot);
}

TEST_F(Arm64PassthroughTest, SixtyFourBitBarTooBigForThe32BitWindowGoesToTheHighWindow) {
  FakePciFunction f = FakePciFunction::E1000e();
  // BAR0 becomes a 1 GiB 64-bit prefetchable BAR (BAR1 its upper half), as
  // an ivshmem's shared memory: twice the 32-bit window.
  constexpr uint64_t kBarSize = 1ull << 30;
  ASSERT_GT(kBarSize, arm64::kPciMmio32Size);
  f.regions[1] = {};
  f.AddBar(0, kBarSize, pci::kBarMem64 | pci::kBarPrefetchable);
  f.Put(0x14, 4, 0);
  Attach(std::move(f));
  const auto [base, size] = RangesWindow(GuestDeviceTree(), kSpaceMem64);
  EXPECT_EQ(base, arm64::kPciMmio64Base);
  EXPECT_GE(base, 1ull << 32);
  auto address = root_->MappedAddress(slot_.device, 0);
  ASSERT_TRUE(address.has_value());
  EXPECT_GE(*address, base);
  EXPECT_LE(*address + kBarSize, base + size);
  EXPECT_EQ(*address % kBarSize, 0u);  // naturally aligned
  // The guest reads the address back through both halves of the BAR.
  const uint64_t programmed =
      uint64_t{root_->ReadConfig(0, slot_.device, 0, pci::kBar0 + 4, 4)} << 32 |
      (root_->ReadConfig(0, slot_.device, 0, pci::kBar0, 4) & ~uint32_t{0xf});
  EXPECT_EQ(programmed, *address);
  // The 32-bit BAR of the same function stays below 4 GiB.
  auto bar3 = root_->MappedAddress(slot_.device, 3);
  ASSERT_TRUE(bar3.has_value());
  EXPECT_GE(*bar3, arm64::kPciMmio32Base);
  EXPECT_LE(*bar3 + 0x4000, arm64::kPciMmio32Base + arm64::kPciMmio32Size);
  // The BAR's mmap became one KVM slot at the high guest address.
  bool high_slot = false;
  for (const auto& [id, range] : kvm_.slots) {
    high_slot |= range.first == *address && range.second == kBarSize;
  }
  EXPECT_TRUE(high_slot);
}

TEST_F(Arm64PassthroughTest, GuestMayMoveASixtyFourBitBarWithinTheHighWindow) {
  FakePciFunction f = FakePciFunction::E1000e();
  constexpr uint64_t kBarSize = 1ull << 30;
  f.regions[1] = {};
  f.AddBar(0, kBarSize, pci::kBarMem64 | pci::kBarPrefetchable);
  f.Put(0x14, 4, 0);
  Attach(std::move(f));
  // What Linux does when it reassigns: decode off, both halves, decode on.
  const uint64_t target = arm64::kPciMmio64Base + 4 * kBarSize;
  const uint32_t command = root_->ReadConfig(0, slot_.device, 0, pci::kCommand, 2);
  CfgWrite(pci::kCommand, 2, command & ~uint32_t{pci::kCommandMemory});
  CfgWrite(pci::kBar0, 4, static_cast<uint32_t>(target));
  CfgWrite(pci::kBar0 + 4, 4, static_cast<uint32_t>(target >> 32));
  CfgWrite(pci::kCommand, 2, command);
  EXPECT_EQ(root_->MappedAddress(slot_.device, 0), std::optional<uint64_t>(target));
  bool moved = false;
  for (const auto& [id, range] : kvm_.slots) {
    moved |= range.first == target && range.second == kBarSize;
  }
  EXPECT_TRUE(moved);
}

TEST_F(Arm64PassthroughTest, MsixRoutesCarryTheDeviceIdTheGuestMapsAndIntxItsSpi) {
  Attach(FakePciFunction::E1000e());
  const std::vector<uint8_t> dtb = GuestDeviceTree();
  // INTx is live from the start: VFIO's trigger is an irqfd on the SPI the
  // interrupt-map gives this slot's INTA.
  const auto& intx = fn_->irq_state[VFIO_PCI_INTX_IRQ_INDEX];
  ASSERT_EQ(intx.fds.size(), 1u);
  ASSERT_EQ(kvm_.irqfd_gsis.count(intx.fds[0]), 1u);
  EXPECT_EQ(std::optional<uint32_t>(kvm_.irqfd_gsis[intx.fds[0]]),
            InterruptMapSpi(dtb, slot_.device, pci::kInterruptPinA));
  // The guest's ITS driver: enable MSI-X masked, write an entry aimed at the
  // ITS doorbell (GITS_TRANSLATER), unmask.
  constexpr uint64_t kGitsTranslater = arm64::kGicItsBase + 0x10040;
  CfgWrite(0xa2, 2, pci::kMsixControlEnable | pci::kMsixControlFunctionMask);
  const uint64_t table = *root_->MappedAddress(slot_.device, 3);
  MmioWrite32(table + 16 * 2 + 0, static_cast<uint32_t>(kGitsTranslater));
  MmioWrite32(table + 16 * 2 + 4, 0);
  MmioWrite32(table + 16 * 2 + 8, 2);  // event ID
  MmioWrite32(table + 16 * 2 + 12, 0);
  CfgWrite(0xa2, 2, pci::kMsixControlEnable);
  // Vector 2 of MSI-X (allocated after MSI's one vector).
  const auto log = msi_.states.at(1 + 2)->message_log();
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back().address, kGitsTranslater);
  EXPECT_EQ(log.back().data, 2u);
  ASSERT_TRUE(log.back().devid.has_value());
  EXPECT_EQ(std::optional<uint32_t>(*log.back().devid), MsiMapDeviceId(dtb, slot_.bdf));
  EXPECT_EQ(*log.back().devid, uint32_t{slot_.device} << 3);
  EXPECT_NE(slot_.device, 1);  // not the first slot: the test would not tell
}

}  // namespace
}  // namespace skiff

// The ARM64 machine's fsl-mc wiring, driven end to end without hardware:
// --device fsl-mc=dprc.2 opened (vmm/vfio_setup.h) through the machine's one
// VFIO container against the vfio-fsl-mc test double and a fake sysfs,
// attached in the memory map's fsl-mc window (arch/arm64/fsl_mc_wiring.h)
// with a recording memory-slot registrar, a fake MSI allocator and a real
// MMIO bus, then described in the arm64 device tree and read back with
// libfdt. The guest's first commands go to the address the tree gives.
#include <libfdt.h>
#include <linux/vfio.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "arch/arm64/fdt_writer.h"
#include "arch/arm64/fsl_mc_wiring.h"
#include "arch/arm64/layout.h"
#include "arch/arm64/platform_fdt.h"
#include "devices/vfio/fsl_mc/mc_command.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_fsl_mc_kernel.h"
#include "tests/unit/fdt_test_util.h"
#include "tests/unit/fsl_mc_test_util.h"
#include "tests/unit/pci_test_fakes.h"
#include "tests/unit/temp_dir.h"
#include "vmm/bus.h"
#include "vmm/config.h"
#include "vmm/vfio_setup.h"

namespace skiff::arm64 {
namespace {

namespace fs = std::filesystem;
using ::skiff::testing::FdtCells;
using ::skiff::testing::FdtProp;
using ::skiff::testing::FdtStrings;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using vfio::fsl_mc::FakeFslMcGroup;
using vfio::fsl_mc::FakeFslMcKernel;
using vfio::fsl_mc::McCommand;
using vfio::fsl_mc::RecordingSlots;

constexpr uint32_t kFslMcGroup = 12;
constexpr uint32_t kPciGroup = 7;
const std::string kNode = "/fsl-mc@d000000";
const std::string kIts = "/interrupt-controller@8000000/msi-controller@8040000";

class Arm64FslMcWiringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vfio::fsl_mc::MakeFslMcSysfs(sys_.path(), "dprc.2", "vfio-fsl-mc", true, kFslMcGroup,
                                 vfio::fsl_mc::TypicalFslMcChildren());
    kernel_->AddGroup(kFslMcGroup, FakeFslMcGroup::Typical());
    config_.sysfs_root = sys_.path();
    config_.fsl_mc_devices = {{"dprc.2"}};
  }

  FslMcWiring Wiring(bool has_its = true) {
    FslMcWiring w;
    w.msi = &msi_;
    w.slots = &slots_;
    w.mmio = &bus_;
    w.page_size = 4096;
    w.has_its = has_its;
    return w;
  }

  // The guest's side of a portal (drivers/bus/fsl-mc/mc-sys.c): the
  // parameter words, the header last, then the response read back.
  McCommand Guest(uint64_t portal, const McCommand& cmd) {
    for (int word = 7; word >= 0; --word) {
      EXPECT_TRUE(bus_.Write(portal + 8 * word,
                             std::span<const uint8_t>(cmd.bytes().data() + 8 * word, 8)));
    }
    McCommand rsp;
    for (int word = 0; word < 8; ++word) {
      EXPECT_TRUE(
          bus_.Read(portal + 8 * word, std::span<uint8_t>(rsp.bytes().data() + 8 * word, 8)));
    }
    return rsp;
  }

  // What the MMIO bus holds at `base` ("" for nothing).
  std::string OnBus(uint64_t base) const {
    for (const Bus::Entry& e : bus_.Entries()) {
      if (e.base == base) return e.device_name;
    }
    return "";
  }

  skiff::testing::TempDir sys_;
  std::shared_ptr<FakeFslMcKernel> kernel_ = std::make_shared<FakeFslMcKernel>();
  VmConfig config_;
  FakeMsiAllocator msi_;
  RecordingSlots slots_;
  Bus bus_{"mmio"};
};

uint64_t U64(const std::vector<uint32_t>& cells, size_t at) {
  return uint64_t{cells[at]} << 32 | cells[at + 1];
}

TEST_F(Arm64FslMcWiringTest, ContainerIsMappedTrappedAndDescribedAtTheWindow) {
  auto opened = OpenVfioDevices(config_, kernel_);
  ASSERT_TRUE(opened.ok()) << opened.status();
  ASSERT_EQ(opened->fsl_mc.size(), 1u);
  vfio::fsl_mc::FslMcContainer& mc = *opened->fsl_mc[0];
  auto node = AttachFslMc(mc, Wiring());
  ASSERT_TRUE(node.ok()) << node.status();

  // The QBMan portals (the DPIO's three regions) became memory slots over
  // the VFIO mmap, inside the window; nothing else did.
  ASSERT_EQ(slots_.slots.size(), 3u);
  for (const auto& [id, slot] : slots_.slots) {
    EXPECT_GE(slot.gpa, kFslMcBase);
    EXPECT_LE(slot.gpa + slot.size, kFslMcBase + kFslMcSize);
    EXPECT_EQ(slot.gpa % 0x10000, 0u);
  }
  EXPECT_EQ(kernel_->group(kFslMcGroup).Find("dpio.7")->maps.size(), 3u);
  EXPECT_TRUE(kernel_->group(kFslMcGroup).Find("dprc.2")->maps.empty());
  EXPECT_TRUE(kernel_->group(kFslMcGroup).Find("dpmcp.5")->maps.empty());
  // The MC portals (the DPRC's and the DPMCP's) are trapped devices on the
  // MMIO bus at the window's first two slots.
  EXPECT_EQ(OnBus(kFslMcBase), "fsl-mc dprc.2 portal");
  EXPECT_EQ(OnBus(kFslMcBase + vfio::fsl_mc::kMcPortalSlot), "fsl-mc dpmcp.5 portal");
  EXPECT_EQ(bus_.Entries().size(), 2u);

  PlatformDescription platform;
  platform.num_cpus = 2;
  platform.ram_size = 256ull << 20;
  platform.gic = GicKind::kV3;
  platform.msi_controller = true;
  platform.fsl_mc = {*node};
  auto blob = BuildPlatformFdt(platform);
  ASSERT_TRUE(blob.ok()) << blob.status();
  ASSERT_EQ(fdt_check_full(blob->data(), blob->size()), 0);

  EXPECT_THAT(FdtStrings(*blob, kNode, "compatible"), ElementsAre("fsl,qoriq-mc"));
  EXPECT_THAT(FdtCells(*blob, kNode, "#address-cells"), ElementsAre(3u));
  EXPECT_THAT(FdtCells(*blob, kNode, "#size-cells"), ElementsAre(1u));
  // reg: only the root command portal (the DPRC's slot at the window's
  // base); no MC control registers for a VM.
  const std::vector<uint32_t> reg = FdtCells(*blob, kNode, "reg");
  ASSERT_EQ(reg.size(), 4u);
  EXPECT_EQ(U64(reg, 0), kFslMcBase);
  EXPECT_EQ(U64(reg, 2), 0x10000u);
  // ranges: MC portals (type 0) from the window's base, QBMan (type 1)
  // right after, both inside the window and covering every slot.
  const std::vector<uint32_t> ranges = FdtCells(*blob, kNode, "ranges");
  ASSERT_EQ(ranges.size(), 12u);
  EXPECT_THAT(std::vector<uint32_t>(ranges.begin(), ranges.begin() + 3), ElementsAre(0u, 0u, 0u));
  EXPECT_EQ(U64(ranges, 3), kFslMcBase);
  EXPECT_EQ(ranges[5], 2 * vfio::fsl_mc::kMcPortalSlot);
  EXPECT_THAT(std::vector<uint32_t>(ranges.begin() + 6, ranges.begin() + 9),
              ElementsAre(1u, 0u, 0u));
  const uint64_t qbman_base = U64(ranges, 9);
  const uint64_t qbman_size = ranges[11];
  EXPECT_EQ(qbman_base, kFslMcBase + 2 * vfio::fsl_mc::kMcPortalSlot);
  EXPECT_LE(qbman_base + qbman_size, kFslMcBase + kFslMcSize);
  for (const auto& [id, slot] : slots_.slots) {
    EXPECT_GE(slot.gpa, qbman_base);
    EXPECT_LE(slot.gpa + slot.size, qbman_base + qbman_size);
  }
  // MSIs: msi-map <ICID &ITS DeviceID 1>, the phandle being the ITS node's.
  // No msi-parent: the ITS takes a cell (#msi-cells = 1), and Linux finds
  // the fsl-mc MSI domain of such a controller only through msi-map.
  const std::vector<uint32_t> msi_map = FdtCells(*blob, kNode, "msi-map");
  ASSERT_EQ(msi_map.size(), 4u);
  EXPECT_EQ(msi_map[0], uint32_t{kFslMcGuestIds.icid});
  EXPECT_EQ(msi_map[2], kFslMcGuestIds.its_device_id);
  EXPECT_EQ(msi_map[3], 1u);
  const int its = fdt_node_offset_by_phandle(blob->data(), msi_map[1]);
  ASSERT_GE(its, 0);
  EXPECT_EQ(fdt_node_check_compatible(blob->data(), its, "arm,gic-v3-its"), 0);
  EXPECT_EQ(its, fdt_path_offset(blob->data(), kIts.c_str()));
  EXPECT_FALSE(FdtProp(*blob, kNode, "msi-parent").has_value());
  EXPECT_FALSE(FdtProp(*blob, kNode, "iommu-map").has_value());
  EXPECT_TRUE(FdtProp(*blob, kNode, "dma-coherent").has_value());
  EXPECT_LT(kFslMcGuestIds.its_device_id, 0x10000u);  // KVM's vITS: 16 DeviceID bits

  // The guest starts at the node's reg: the trapped portal answers there,
  // with the container's objects, the virtual ICID, and QBMan addresses
  // that are the memory slots, inside ranges type 1.
  const uint64_t root = U64(reg, 0);
  McCommand open = McCommand::Build(vfio::fsl_mc::kDprcOpen, 1, 0);
  open.SetP32(0, 2);
  McCommand rsp = Guest(root, open);
  ASSERT_EQ(rsp.status(), vfio::fsl_mc::kMcOk);
  const uint16_t token = rsp.token();
  rsp = Guest(root, McCommand::Build(vfio::fsl_mc::kDprcGetAttr, 1, token));
  EXPECT_EQ(uint32_t{rsp.P16(vfio::fsl_mc::kAttrIcid)}, msi_map[0]);
  rsp = Guest(root, McCommand::Build(vfio::fsl_mc::kDprcGetObjCount, 1, token));
  EXPECT_EQ(rsp.P32(4), 6u);
  for (uint8_t index = 0; index < 3; ++index) {
    McCommand reg_cmd = McCommand::Build(vfio::fsl_mc::kDprcGetObjRegion, 2, token);
    reg_cmd.SetP32(0, 7);
    reg_cmd.SetP8(6, index);
    reg_cmd.SetPString16(24, "dpio");
    rsp = Guest(root, reg_cmd);
    ASSERT_EQ(rsp.status(), vfio::fsl_mc::kMcOk);
    const uint64_t gpa =
        rsp.P64(vfio::fsl_mc::kObjRegionBaseAddr) + rsp.P64(vfio::fsl_mc::kObjRegionBaseOffset);
    EXPECT_EQ(rsp.P64(vfio::fsl_mc::kObjRegionBaseAddr), qbman_base);
    bool is_a_slot = false;
    for (const auto& [id, slot] : slots_.slots) is_a_slot |= slot.gpa == gpa;
    EXPECT_TRUE(is_a_slot) << "region " << int{index} << " at 0x" << std::hex << gpa;
  }
  // An interrupt the guest programs is routed with the DeviceID the
  // msi-map gives, on the ITS doorbell it chose.
  McCommand set_irq = McCommand::Build(vfio::fsl_mc::kDprcSetObjIrq, 1, token);
  set_irq.SetP32(0, 0x21);
  set_irq.SetP8(4, 0);
  set_irq.SetP64(8, kGicItsBase + 0x10040);
  set_irq.SetP32(20, 3);
  set_irq.SetPString16(24, "dpni");
  ASSERT_EQ(Guest(root, set_irq).status(), vfio::fsl_mc::kMcOk);
  ASSERT_EQ(msi_.states.size(), 1u);
  EXPECT_THAT(msi_.states[0]->message_log(),
              ElementsAre(FakeMsiState::Message{kGicItsBase + 0x10040, 0x21, msi_map[2]}));
  EXPECT_GE(kernel_->group(kFslMcGroup).Find("dpni.3")->triggers.at(0), 0);

  // Teardown: the trigger off, the slots out of the VM, the portals off
  // the bus.
  auto dpni = kernel_->group(kFslMcGroup).Find("dpni.3");
  opened->fsl_mc.clear();
  EXPECT_TRUE(slots_.slots.empty());
  EXPECT_EQ(slots_.removed, 3);
  EXPECT_TRUE(bus_.Entries().empty());
  EXPECT_EQ(dpni->triggers.at(0), -1);
}

// vfio-pci devices and the fsl-mc container join one VFIO container: one
// IOMMU domain, one guest-RAM DMA map.
TEST_F(Arm64FslMcWiringTest, SharesTheVfioContainerWithPciDevices) {
  const fs::path root = sys_.path();
  const fs::path dev = root / "bus/pci/devices/0000:00:01.0";
  fs::create_directories(dev);
  std::ofstream(dev / "config") << "x";
  fs::create_directories(root / "bus/pci/drivers/vfio-pci");
  fs::create_directory_symlink(root / "bus/pci/drivers/vfio-pci", dev / "driver");
  const fs::path group = root / "kernel/iommu_groups" / std::to_string(kPciGroup);
  fs::create_directories(group / "devices");
  fs::create_directory_symlink(group, dev / "iommu_group");
  fs::create_directory_symlink(dev, group / "devices/0000:00:01.0");
  kernel_->groups[kPciGroup].devices = {
      std::make_shared<vfio::FakePciFunction>(vfio::FakePciFunction::E1000e())};
  config_.vfio_devices = {{"0000:00:01.0"}};

  auto opened = OpenVfioDevices(config_, kernel_);
  ASSERT_TRUE(opened.ok()) << opened.status();
  ASSERT_EQ(opened->devices.size(), 1u);
  ASSERT_EQ(opened->fsl_mc.size(), 1u);
  std::vector<uint32_t> groups;
  for (const auto& g : opened->container->groups()) groups.push_back(g->number());
  EXPECT_THAT(groups, ::testing::UnorderedElementsAre(kPciGroup, kFslMcGroup));
  for (const auto& g : opened->container->groups()) {
    if (g->number() == kFslMcGroup) {
      EXPECT_EQ(opened->fsl_mc[0]->group(), g);
    }
  }
  ASSERT_EQ(kernel_->containers.size(), 1u);
  EXPECT_EQ(kernel_->containers.begin()->second.groups.size(), 2u);
}

TEST_F(Arm64FslMcWiringTest, BadContainersAreOneLineBeforeKvm) {
  // /dev/vfio is not touched before sysfs says yes.
  kernel_->dev_vfio_missing = true;
  config_.fsl_mc_devices = {{"dprc.9"}};
  auto missing = OpenVfioDevices(config_, kernel_);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("fsl-mc container dprc.9"));
  EXPECT_THAT(missing.status().message(), HasSubstr("does not exist"));

  vfio::fsl_mc::MakeFslMcSysfs(sys_.path(), "dprc.3", "fsl_mc_dprc", true, 13, {});
  config_.fsl_mc_devices = {{"dprc.3"}};
  auto unbound = OpenVfioDevices(config_, kernel_);
  ASSERT_FALSE(unbound.ok());
  EXPECT_THAT(unbound.status().message(), HasSubstr("not vfio-fsl-mc"));

  config_.fsl_mc_devices = {{"dprc.2"}, {"dprc.3"}};
  auto two = OpenVfioDevices(config_, kernel_);
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(two.status().message(),
            "--device fsl-mc=dprc.3: only one fsl-mc container per guest (dprc.2 was given first)");

  config_.fsl_mc_devices = {{"dprc.2"}};
  auto no_vfio = OpenVfioDevices(config_, kernel_);
  ASSERT_FALSE(no_vfio.ok());
  EXPECT_THAT(no_vfio.status().message(), HasSubstr("/dev/vfio/vfio"));
  EXPECT_EQ(std::string(no_vfio.status().message()).find('\n'), std::string::npos);
}

TEST_F(Arm64FslMcWiringTest, NoItsNoContainer) {
  auto opened = OpenVfioDevices(config_, kernel_);
  ASSERT_TRUE(opened.ok()) << opened.status();
  auto node = AttachFslMc(*opened->fsl_mc[0], Wiring(/*has_its=*/false));
  ASSERT_FALSE(node.ok());
  EXPECT_THAT(node.status().message(), HasSubstr("--device fsl-mc=dprc.2: needs a GICv3 ITS"));
  EXPECT_TRUE(slots_.slots.empty());
  EXPECT_TRUE(bus_.Entries().empty());

  // The tree refuses the node without an ITS for its msi-map too.
  node = AttachFslMc(*opened->fsl_mc[0], Wiring());
  ASSERT_TRUE(node.ok()) << node.status();
  PlatformDescription platform;
  platform.ram_size = 256ull << 20;
  platform.gic = GicKind::kV2;
  platform.fsl_mc = {*node};
  EXPECT_THAT(BuildPlatformFdt(platform).status().message(), HasSubstr("GICv3 ITS"));
  platform.gic = GicKind::kV3;
  platform.msi_controller = false;
  EXPECT_FALSE(BuildPlatformFdt(platform).ok());
}

TEST(Arm64FslMcLayoutTest, WindowIsInTheMemoryMapAlignedAndClear) {
  bool found = false;
  for (const MemoryRegion& r : MemoryMap(kMaxRamSize)) {
    if (r.base == kFslMcBase && r.size == kFslMcSize) found = true;
  }
  EXPECT_TRUE(found);
  EXPECT_TRUE(CheckNoOverlap(MemoryMap(kMaxRamSize)).ok());
  // 64 KiB: the portal slot and a 64 KiB-page host's page.
  EXPECT_EQ(kFslMcBase % 0x10000, 0u);
  EXPECT_EQ(kFslMcSize % 0x10000, 0u);
  // Below 4 GiB: the node's ranges keep 32-bit sizes, and the window stays
  // clear of RAM however large.
  EXPECT_LE(kFslMcBase + kFslMcSize, kRamBase);
}

}  // namespace
}  // namespace skiff::arm64

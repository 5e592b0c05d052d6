// fsl-mc (DPAA2) container passthrough against the vfio-fsl-mc / MC
// firmware test double (tests/unit/fake_fsl_mc_kernel.h): sysfs checks,
// container walk, region layout and trapping decisions, portal command
// forwarding with response rewriting, SET_IRQ interception into MSI
// routes, the device-tree node and the CLI.
#include <linux/vfio.h>
#include <unistd.h>

extern "C" {
#include <libfdt.h>
}

#include <filesystem>
#include <map>
#include <string>

#include "devices/vfio/fsl_mc/fsl_mc_container.h"
#include "devices/vfio/fsl_mc/fsl_mc_fdt.h"
#include "devices/vfio/fsl_mc/fsl_mc_layout.h"
#include "devices/vfio/fsl_mc/fsl_mc_sysfs.h"
#include "devices/vfio/fsl_mc/mc_command.h"
#include "devices/vfio/fsl_mc/mc_portal_device.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_fsl_mc_kernel.h"
#include "tests/unit/fsl_mc_test_util.h"
#include "tests/unit/pci_test_fakes.h"
#include "tests/unit/temp_dir.h"
#include "vmm/bus.h"
#include "vmm/cli.h"
#include "vmm/device_config.h"

namespace skiff::vfio::fsl_mc {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr uint32_t kGroup = 12;
constexpr FslMcWindow kWindow{0x20000000, 0x10000000};
constexpr FslMcGuestIds kIds{7, 0x1234};

void MakeSysfs(const std::string& root, const std::string& dprc, const std::string& driver,
               bool with_group, const std::map<std::string, std::string>& children) {
  MakeFslMcSysfs(root, dprc, driver, with_group, kGroup, children);
}

std::map<std::string, std::string> TypicalChildren() { return TypicalFslMcChildren(); }

TEST(FslMcSysfsTest, WalksTheContainer) {
  skiff::testing::TempDir sys;
  MakeSysfs(sys.path(), "dprc.2", "vfio-fsl-mc", true, TypicalChildren());
  auto host = InspectHostDprc(sys.path(), "dprc.2");
  ASSERT_TRUE(host.ok()) << host.status();
  EXPECT_EQ(host->id, 2u);
  EXPECT_EQ(host->group, kGroup);
  std::vector<std::string> names;
  for (const auto& c : host->children) names.push_back(c.name);
  EXPECT_THAT(
      names, ::testing::ElementsAre("dpbp.1", "dpcon.4", "dpio.7", "dpmac.6", "dpmcp.5", "dpni.3"));
}

TEST(FslMcSysfsTest, ErrorLinesNameTheProblemAndTheFix) {
  skiff::testing::TempDir sys;
  auto missing = InspectHostDprc(sys.path(), "dprc.9");
  EXPECT_THAT(missing.status().message(), HasSubstr("fsl-mc container dprc.9"));
  EXPECT_THAT(missing.status().message(), HasSubstr("does not exist"));

  MakeSysfs(sys.path(), "dprc.3", "fsl_mc_dprc", true, {});
  auto wrong = InspectHostDprc(sys.path(), "dprc.3");
  EXPECT_THAT(wrong.status().message(), HasSubstr("bound to driver fsl_mc_dprc, not vfio-fsl-mc"));
  EXPECT_THAT(wrong.status().message(), HasSubstr("echo vfio-fsl-mc > "));
  EXPECT_THAT(wrong.status().message(), HasSubstr("drivers/vfio-fsl-mc/bind"));

  MakeSysfs(sys.path(), "dprc.1", "fsl_mc_dprc", false, {{"dprc.3", ""}});
  EXPECT_THAT(InspectHostDprc(sys.path(), "dprc.1").status().message(),
              HasSubstr("root container and cannot be assigned"));

  MakeSysfs(sys.path(), "dprc.4", "vfio-fsl-mc", false, {});
  auto no_group = InspectHostDprc(sys.path(), "dprc.4");
  EXPECT_THAT(no_group.status().message(), HasSubstr("no IOMMU group"));

  MakeSysfs(sys.path(), "dprc.5", "vfio-fsl-mc", true, {{"dprc.6", ""}, {"dpni.1", ""}});
  auto nested = InspectHostDprc(sys.path(), "dprc.5");
  EXPECT_THAT(nested.status().message(), HasSubstr("nested container dprc.6"));

  MakeSysfs(sys.path(), "dprc.7", "vfio-fsl-mc", true, {{"dpni.1", "fsl_dpaa2_eth"}});
  auto foreign = InspectHostDprc(sys.path(), "dprc.7");
  EXPECT_THAT(foreign.status().message(), HasSubstr("not viable: dpni.1 (driver fsl_dpaa2_eth)"));
}

TEST(FslMcSysfsTest, NamesParse) {
  EXPECT_EQ(*ParseDprcName("dprc.2"), "dprc.2");
  EXPECT_EQ(*ParseDprcName("/sys/bus/fsl-mc/devices/dprc.12/"), "dprc.12");
  for (const char* bad : {"", "dprc", "dprc.", "dpni.3", "dprc.x", "dprc.-1", "DPRC.2",
                          "dprc.2/../..", "dprc.99999999999"}) {
    EXPECT_FALSE(ParseDprcName(bad).ok()) << bad;
  }
}

// --- layout ---------------------------------------------------------------

std::vector<McObjectShape> TypicalShapes(uint64_t mc = 0x10000, uint64_t qbman = 0x10000,
                                         bool qbman_mmap = true) {
  const uint32_t rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
  const uint32_t q = rw | (qbman_mmap ? VFIO_REGION_INFO_FLAG_MMAP : 0);
  return {{"dprc.2", McObjectKind::kDprc, {{mc, rw}}},
          {"dpni.3", McObjectKind::kOther, {}},
          {"dpio.7", McObjectKind::kDpio, {{qbman, q}, {qbman, q}, {qbman, q}}},
          {"dpmcp.5", McObjectKind::kDpmcp, {{mc, rw | VFIO_REGION_INFO_FLAG_MMAP}}}};
}

TEST(FslMcLayoutTest, TrapsMcPortalsAndMapsQbmanPortals) {
  auto shapes = TypicalShapes();
  auto layout = PlanFslMcLayout(shapes, kWindow, 4096);
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->mc_base, kWindow.base);
  EXPECT_EQ(layout->mc_size, 2 * kMcPortalSlot);
  EXPECT_EQ(layout->qbman_base, kWindow.base + 2 * kMcPortalSlot);
  EXPECT_EQ(layout->qbman_size, 3 * 0x10000u);
  const PlacedRegion* dprc = layout->Find(0, 0);
  const PlacedRegion* dpmcp = layout->Find(3, 0);
  ASSERT_TRUE(dprc && dpmcp);
  EXPECT_EQ(dprc->use, RegionUse::kTrappedMcPortal);
  EXPECT_EQ(dprc->gpa, kWindow.base);
  // A DPMCP is mmap-able in VFIO but trapped anyway: its commands too may
  // program interrupts.
  EXPECT_EQ(dpmcp->use, RegionUse::kTrappedMcPortal);
  EXPECT_EQ(dpmcp->gpa, kWindow.base + kMcPortalSlot);
  for (uint32_t i = 0; i < 3; ++i) {
    const PlacedRegion* q = layout->Find(2, i);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->use, RegionUse::kMappedQbman);
    EXPECT_EQ(q->gpa, layout->qbman_base + i * 0x10000);
  }
  EXPECT_EQ(layout->Find(1, 0), nullptr);
}

TEST(FslMcLayoutTest, RefusesWhatCannotWork) {
  // Old firmware: 4 KiB QBMan portals on a 64 KiB-page host are not
  // mmap-able, and a QBMan portal cannot be trapped.
  auto old = TypicalShapes(0x40, 0x1000, /*qbman_mmap=*/false);
  auto refused = PlanFslMcLayout(old, kWindow, 0x10000);
  EXPECT_THAT(refused.status().message(), HasSubstr("dpio.7: QBMan portal region 0"));
  // Old firmware's 64-byte MC portals are fine (trapped).
  auto old4k = TypicalShapes(0x40, 0x1000);
  EXPECT_TRUE(PlanFslMcLayout(old4k, kWindow, 4096).ok());

  auto shapes = TypicalShapes();
  shapes[1].regions.push_back({0x1000, VFIO_REGION_INFO_FLAG_READ});
  EXPECT_THAT(PlanFslMcLayout(shapes, kWindow, 4096).status().message(),
              HasSubstr("dpni.3 has 1 MMIO regions"));
  shapes = TypicalShapes();
  shapes[0].regions.clear();
  EXPECT_THAT(PlanFslMcLayout(shapes, kWindow, 4096).status().message(),
              HasSubstr("dprc.2 has 0 regions"));
  shapes = TypicalShapes(0x20000);
  EXPECT_FALSE(PlanFslMcLayout(shapes, kWindow, 4096).ok());  // portal above 64 KiB
  shapes = TypicalShapes();
  EXPECT_FALSE(PlanFslMcLayout(shapes, {kWindow.base, 0x30000}, 4096).ok());
  EXPECT_FALSE(PlanFslMcLayout(shapes, {kWindow.base + 0x1000, kWindow.size}, 4096).ok());
  EXPECT_FALSE(PlanFslMcLayout(shapes, {UINT64_MAX - 0xffff, 0x20000}, 4096).ok());
  EXPECT_FALSE(PlanFslMcLayout(shapes, {0, 0x10000000}, 3000).ok());
  std::swap(shapes[0], shapes[1]);
  EXPECT_FALSE(PlanFslMcLayout(shapes, kWindow, 4096).ok());
}

// --- container ------------------------------------------------------------

class FslMcContainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MakeSysfs(sys_.path(), "dprc.2", "vfio-fsl-mc", true, TypicalChildren());
    kernel_->AddGroup(kGroup, FakeFslMcGroup::Typical());
  }
  absl::StatusOr<std::unique_ptr<FslMcContainer>> Open() {
    auto container = VfioContainer::Open(kernel_);
    if (!container.ok()) return container.status();
    return FslMcContainer::Open(*container, sys_.path(), "dprc.2");
  }
  std::unique_ptr<FslMcContainer> OpenAndAttach() {
    auto mc = Open();
    EXPECT_TRUE(mc.ok()) << mc.status();
    if (!mc.ok()) return nullptr;
    FslMcEnv env;
    env.msi = &msi_;
    env.slots = &slots_;
    env.mmio = &bus_;
    env.ids = kIds;
    absl::Status attached = (*mc)->Attach(kWindow, env);
    EXPECT_TRUE(attached.ok()) << attached;
    return *std::move(mc);
  }

  // The guest's side of a portal (drivers/bus/fsl-mc/mc-sys.c): params,
  // then the header last, then polls the header.
  McCommand Guest(uint64_t portal_gpa, const McCommand& cmd) {
    for (int word = 7; word >= 1; --word) {
      std::span<const uint8_t> w(cmd.bytes().data() + 8 * word, 8);
      EXPECT_TRUE(bus_.Write(portal_gpa + 8 * word, w));
    }
    EXPECT_TRUE(bus_.Write(portal_gpa, std::span<const uint8_t>(cmd.bytes().data(), 8)));
    McCommand rsp;
    for (int word = 0; word < 8; ++word) {
      EXPECT_TRUE(
          bus_.Read(portal_gpa + 8 * word, std::span<uint8_t>(rsp.bytes().data() + 8 * word, 8)));
    }
    return rsp;
  }
  uint64_t DprcPortal() const { return kWindow.base; }
  uint64_t DpmcpPortal() const { return kWindow.base + kMcPortalSlot; }
  uint16_t OpenDprc(uint64_t portal) {
    McCommand open = McCommand::Build(kDprcOpen, 1, 0);
    open.SetP32(0, 2);
    McCommand rsp = Guest(portal, open);
    EXPECT_EQ(rsp.status(), kMcOk);
    return rsp.token();
  }
  McCommand SetObjIrq(uint16_t token, const std::string& type, uint32_t id, uint8_t index,
                      uint64_t addr, uint32_t data, uint64_t portal = 0) {
    McCommand cmd = McCommand::Build(kDprcSetObjIrq, 1, token);
    cmd.SetP32(0, data);
    cmd.SetP8(4, index);
    cmd.SetP64(8, addr);
    cmd.SetP32(16, 77);
    cmd.SetP32(20, id);
    cmd.SetPString16(24, type);
    return Guest(portal ? portal : DprcPortal(), cmd);
  }
  FakeFslMcGroup& group() { return kernel_->group(kGroup); }

  skiff::testing::TempDir sys_;
  std::shared_ptr<FakeFslMcKernel> kernel_ = std::make_shared<FakeFslMcKernel>();
  FakeMsiAllocator msi_;
  RecordingSlots slots_;
  Bus bus_{"mmio"};
};

TEST_F(FslMcContainerTest, OpensTheDprcThenEveryChild) {
  auto mc = Open();
  ASSERT_TRUE(mc.ok()) << mc.status();
  const auto& objects = (*mc)->objects();
  ASSERT_EQ(objects.size(), 7u);
  EXPECT_EQ(objects[0].name, "dprc.2");
  EXPECT_EQ(objects[0].kind, McObjectKind::kDprc);
  EXPECT_TRUE(objects[0].info.flags & VFIO_DEVICE_FLAGS_RESET);
  for (const McObject& o : objects) {
    EXPECT_TRUE(o.info.flags & VFIO_DEVICE_FLAGS_FSL_MC) << o.name;
    EXPECT_EQ(o.irq_count, group().Find(o.name)->irq_count) << o.name;
    for (const VfioRegionInfo& r : o.regions) EXPECT_EQ(r.offset, uint64_t{r.index} << 40);
  }
  EXPECT_EQ(objects[3].name, "dpio.7");
  ASSERT_EQ(objects[3].regions.size(), 3u);
  EXPECT_TRUE(objects[3].regions[0].flags & VFIO_REGION_INFO_FLAG_MMAP);
  EXPECT_FALSE(objects[0].regions[0].flags & VFIO_REGION_INFO_FLAG_MMAP);  // never for a DPRC
  EXPECT_EQ(group().objects[0]->resets, 1);  // the container, once, at open
  EXPECT_EQ((*mc)->group()->number(), kGroup);
}

TEST_F(FslMcContainerTest, OpenErrors) {
  // An object sysfs lists but the group does not hold.
  fs::create_directories(fs::path(sys_.path()) / "bus/fsl-mc/devices/dprc.2/dpsw.9");
  auto stray = Open();
  EXPECT_THAT(stray.status().message(), HasSubstr("fsl-mc object dpsw.9"));
  fs::remove(fs::path(sys_.path()) / "bus/fsl-mc/devices/dprc.2/dpsw.9");

  // (The double does not see fds close; reopen the group by hand.)
  kernel_->groups[kGroup] = FakeVfioKernel::Group{};
  kernel_->groups[kGroup].flags = 0;
  EXPECT_THAT(Open().status().message(), HasSubstr("IOMMU group 12 is not viable"));
  kernel_->groups.erase(kGroup);
  EXPECT_THAT(Open().status().message(), HasSubstr("/dev/vfio/12"));
}

TEST_F(FslMcContainerTest, AttachMapsQbmanPortalsAndTrapsMcPortals) {
  auto mc = OpenAndAttach();
  ASSERT_TRUE(mc);
  // Three memory slots, the DPIO's, nothing over an MC portal.
  ASSERT_EQ(slots_.slots.size(), 3u);
  for (const auto& [id, s] : slots_.slots) {
    EXPECT_GE(s.gpa, mc->layout().qbman_base);
    EXPECT_EQ(s.size, 0x10000u);
  }
  EXPECT_EQ(group().Find("dpio.7")->maps.size(), 3u);
  EXPECT_TRUE(group().Find("dprc.2")->maps.empty());
  EXPECT_TRUE(group().Find("dpmcp.5")->maps.empty());
  EXPECT_EQ(mc->root_portal_gpa(), kWindow.base);
  EXPECT_EQ(mc->root_portal_size(), 0x10000u);
  // The trapped portals answer; past the 64 command bytes reads are zero.
  uint8_t byte = 0xff;
  EXPECT_TRUE(bus_.Read(DprcPortal() + 0x100, std::span<uint8_t>(&byte, 1)));
  EXPECT_EQ(byte, 0);
  EXPECT_TRUE(bus_.Read(DpmcpPortal() + 8, std::span<uint8_t>(&byte, 1)));
  mc.reset();
  EXPECT_EQ(slots_.removed, 3);
  EXPECT_FALSE(bus_.Read(DprcPortal(), std::span<uint8_t>(&byte, 1)));
}

TEST_F(FslMcContainerTest, GuestProbeSequenceIsForwardedAndRewritten) {
  auto mc = OpenAndAttach();
  ASSERT_TRUE(mc);
  // fsl_mc_bus_probe: DPMNG version, container id, API version.
  McCommand rsp = Guest(DprcPortal(), McCommand::Build(kDpmngGetVersion, 1, 0));
  EXPECT_EQ(rsp.status(), kMcOk);
  EXPECT_EQ(rsp.P32(4), 10u);
  rsp = Guest(DprcPortal(), McCommand::Build(kDprcGetContId, 1, 0));
  EXPECT_EQ(rsp.P32(0), 2u);
  rsp = Guest(DprcPortal(), McCommand::Build(kDprcGetApiVersion, 1, 0));
  EXPECT_EQ(rsp.P16(0), 6u);
  // dprc_setup: OPEN, GET_ATTR (ICID rewritten).
  const uint16_t token = OpenDprc(DprcPortal());
  rsp = Guest(DprcPortal(), McCommand::Build(kDprcGetAttr, 1, token));
  EXPECT_EQ(rsp.status(), kMcOk);
  EXPECT_EQ(rsp.P32(kAttrContainerId), 2u);
  EXPECT_EQ(rsp.P16(kAttrIcid), kIds.icid);
  // dprc_scan_container: count, objects.
  rsp = Guest(DprcPortal(), McCommand::Build(kDprcGetObjCount, 1, token));
  EXPECT_EQ(rsp.P32(4), 6u);
  McCommand get_obj = McCommand::Build(kDprcGetObj, 1, token);
  get_obj.SetP32(0, 2);
  rsp = Guest(DprcPortal(), get_obj);
  EXPECT_EQ(*rsp.PString16(24), "dpio");
  EXPECT_EQ(rsp.P8(11), 3u);
  // GET_OBJ_REG in each version: the guest's address either way.
  for (uint8_t version = 1; version <= 3; ++version) {
    for (uint8_t index = 0; index < 3; ++index) {
      McCommand reg = McCommand::Build(kDprcGetObjRegion, version, token);
      reg.SetP32(0, 7);
      reg.SetP8(6, index);
      reg.SetPString16(24, "dpio");
      rsp = Guest(DprcPortal(), reg);
      ASSERT_EQ(rsp.status(), kMcOk);
      const uint64_t want = mc->layout().Find(3, index)->gpa;
      const uint64_t base_addr = rsp.P64(kObjRegionBaseAddr);
      const uint64_t offset = rsp.P64(kObjRegionBaseOffset);
      if (version == 1) {
        EXPECT_EQ(base_addr, 0u);
        EXPECT_EQ(mc->layout().qbman_base + offset, want);  // through ranges type 1
      } else {
        EXPECT_EQ(base_addr + offset, want);
      }
      EXPECT_EQ(rsp.P32(kObjRegionSize), 0x10000u);
    }
  }
  McCommand reg = McCommand::Build(kDprcGetObjRegion, 2, token);
  reg.SetP32(0, 5);
  reg.SetPString16(24, "dpmcp");
  rsp = Guest(DprcPortal(), reg);
  EXPECT_EQ(rsp.P64(kObjRegionBaseAddr) + rsp.P64(kObjRegionBaseOffset), DpmcpPortal());
  // An object outside the container: no host address leaks.
  reg.SetP32(0, 99);
  EXPECT_EQ(Guest(DprcPortal(), reg).status(), kMcConfigErr);
  // Errors from the MC come back as they are; close forgets the token.
  rsp = Guest(DprcPortal(), McCommand::Build(kDprcClose, 1, token));
  EXPECT_EQ(rsp.status(), kMcOk);
  EXPECT_EQ(Guest(DprcPortal(), McCommand::Build(kDprcGetAttr, 1, token)).status(), kMcAuthErr);
  // Nothing was ever written to a QBMan portal through VFIO.
  EXPECT_TRUE(group().Find("dpio.7")->portal_writes.empty());
  EXPECT_FALSE(group().Find("dprc.2")->portal_writes.empty());
}

TEST_F(FslMcContainerTest, SetObjIrqBecomesRouteIrqfdAndVfioTrigger) {
  auto mc = OpenAndAttach();
  ASSERT_TRUE(mc);
  const uint16_t token = OpenDprc(DprcPortal());
  McCommand rsp = SetObjIrq(token, "dpni", 3, 0, 0x08090040, 0x21);
  EXPECT_EQ(rsp.status(), kMcOk);
  ASSERT_EQ(msi_.states.size(), 1u);
  ASSERT_EQ(msi_.states[0]->messages.size(), 1u);
  EXPECT_EQ(msi_.states[0]->messages[0],
            (FakeMsiState::Message{0x08090040, 0x21, kIds.its_device_id}));
  auto dpni = group().Find("dpni.3");
  ASSERT_GE(dpni->triggers[0], 0);
  EXPECT_FALSE(group().mc.Saw(kDprcSetObjIrq));  // never reached the MC
  // The MC's interrupt arrives on the vector's irqfd.
  ASSERT_TRUE(dpni->Raise(0));
  uint64_t count = 0;
  EXPECT_EQ(::read(dpni->triggers[0], &count, sizeof(count)), 8);
  EXPECT_EQ(count, 1u);
  // GET_OBJ_IRQ answers what the guest set.
  McCommand get = McCommand::Build(kDprcGetObjIrq, 1, token);
  get.SetP32(20, 3);
  get.SetPString16(24, "dpni");
  rsp = Guest(DprcPortal(), get);
  EXPECT_EQ(rsp.status(), kMcOk);
  EXPECT_EQ(ParseSetIrq(rsp), (McIrqConfig{0x21, 0, 0x08090040, 77}));
  // Reprogramming moves the route, with no second SET_IRQS.
  const size_t set_irqs = kernel_->set_irqs_log.size();
  EXPECT_EQ(SetObjIrq(token, "dpni", 3, 0, 0x08090040, 0x22).status(), kMcOk);
  EXPECT_EQ(msi_.states[0]->messages.back().data, 0x22u);
  EXPECT_EQ(kernel_->set_irqs_log.size(), set_irqs);
  // The DPRC's own interrupt: SET_IRQ.
  McCommand set = McCommand::Build(kDprcSetIrq, 1, token);
  set.SetP32(0, 0x20);
  set.SetP64(8, 0x08090040);
  EXPECT_EQ(Guest(DprcPortal(), set).status(), kMcOk);
  EXPECT_GE(group().Find("dprc.2")->triggers[0], 0);
  EXPECT_FALSE(group().mc.Saw(kDprcSetIrq));
  // Teardown detaches every trigger.
  mc.reset();
  EXPECT_EQ(dpni->triggers[0], -1);
  EXPECT_EQ(group().Find("dprc.2")->triggers[0], -1);
}

TEST_F(FslMcContainerTest, HostileIrqCommandsGetMcErrors) {
  auto mc = OpenAndAttach();
  ASSERT_TRUE(mc);
  // No DPRC token (never opened, or the host's own): refused, not forwarded.
  EXPECT_EQ(SetObjIrq(0x7777, "dpni", 3, 0, 0x08090040, 1).status(), kMcNoPrivilege);
  const uint16_t token = OpenDprc(DprcPortal());
  EXPECT_EQ(SetObjIrq(token, "dpni", 3, 1, 0x08090040, 1).status(), kMcConfigErr);  // index
  EXPECT_EQ(SetObjIrq(token, "dpbp", 1, 0, 0x08090040, 1).status(), kMcConfigErr);  // 0 IRQs
  EXPECT_EQ(SetObjIrq(token, "dpni", 4, 0, 0x08090040, 1).status(), kMcConfigErr);  // not ours
  EXPECT_EQ(SetObjIrq(token, "dprc", 2, 0, 0x08090040, 1).status(), kMcOk);
  McCommand unterminated = McCommand::Build(kDprcSetObjIrq, 1, token);
  for (size_t i = 24; i < 40; ++i) unterminated.SetP8(i, 'x');
  EXPECT_EQ(Guest(DprcPortal(), unterminated).status(), kMcConfigErr);
  McCommand v2 = McCommand::Build(kDprcSetObjIrq, 2, token);
  EXPECT_EQ(Guest(DprcPortal(), v2).status(), kMcNoPrivilege);
  EXPECT_FALSE(group().mc.Saw(kDprcSetObjIrq));
  EXPECT_FALSE(group().mc.Saw(kDprcSetIrq));
  EXPECT_TRUE(kernel_->set_irqs_log.size() == 1);  // only the dprc one
  // Address 0: the trigger is detached, the route kept.
  EXPECT_EQ(SetObjIrq(token, "dprc", 2, 0, 0, 0).status(), kMcOk);
  EXPECT_EQ(group().Find("dprc.2")->triggers[0], -1);
}

TEST_F(FslMcContainerTest, AnyVersionOfDprcOpenIsTracked) {
  // Found by the fuzz target: an OPEN of another version that the MC
  // accepts still opens a DPRC session, whose GET_ATTR must be rewritten.
  auto mc = OpenAndAttach();
  ASSERT_TRUE(mc);
  McCommand open = McCommand::Build(kDprcOpen, 2, 0);
  open.SetP32(0, 2);
  McCommand rsp = Guest(DprcPortal(), open);
  ASSERT_EQ(rsp.status(), kMcOk);
  rsp = Guest(DprcPortal(), McCommand::Build(kDprcGetAttr, 1, rsp.token()));
  EXPECT_EQ(rsp.P16(kAttrIcid), kIds.icid);
}

TEST_F(FslMcContainerTest, IrqPoolExhaustionIsNoResource) {
  kernel_->group(kGroup).pool_size = 1;
  auto mc = OpenAndAttach();
  ASSERT_TRUE(mc);
  const uint16_t token = OpenDprc(DprcPortal());
  EXPECT_EQ(SetObjIrq(token, "dpni", 3, 0, 0x08090040, 1).status(), kMcOk);
  EXPECT_EQ(SetObjIrq(token, "dpio", 7, 0, 0x08090040, 2).status(), kMcNoResource);
  EXPECT_EQ(group().Find("dpio.7")->triggers[0], -1);
}

TEST_F(FslMcContainerTest, CommandsOnADpmcpPortalAreFilteredAlike) {
  auto mc = OpenAndAttach();
  ASSERT_TRUE(mc);
  const uint16_t token = OpenDprc(DpmcpPortal());
  EXPECT_EQ(SetObjIrq(token, "dpcon", 4, 0, 0x08090040, 9, DpmcpPortal()).status(), kMcOk);
  EXPECT_GE(group().Find("dpcon.4")->triggers[0], 0);
  EXPECT_FALSE(group().Find("dpmcp.5")->portal_writes.empty());
  // Tokens are per portal: this one means nothing on the DPRC's portal.
  EXPECT_EQ(SetObjIrq(token, "dpcon", 4, 0, 0x08090040, 9).status(), kMcNoPrivilege);
}

TEST_F(FslMcContainerTest, StuckMcIsATimeoutNotAHang) {
  auto mc = OpenAndAttach();
  ASSERT_TRUE(mc);
  group().mc.stuck = true;
  McCommand rsp = Guest(DprcPortal(), McCommand::Build(kDprcGetContId, 1, 0));
  EXPECT_EQ(rsp.status(), kMcTimeout);
}

TEST_F(FslMcContainerTest, PortalSubmitsOnceTheStatusByteIsReady) {
  auto mc = OpenAndAttach();
  ASSERT_TRUE(mc);
  McCommand cmd = McCommand::Build(kDprcGetContId, 1, 0);
  const size_t before = group().mc.log.size();
  // io-64-nonatomic-hi-lo: high word first (no submission), low word last.
  EXPECT_TRUE(bus_.Write(DprcPortal() + 4, std::span<const uint8_t>(cmd.bytes().data() + 4, 4)));
  EXPECT_EQ(group().mc.log.size(), before);
  EXPECT_TRUE(bus_.Write(DprcPortal(), std::span<const uint8_t>(cmd.bytes().data(), 4)));
  EXPECT_EQ(group().mc.log.size(), before + 1);
  uint8_t status = 0xff;
  EXPECT_TRUE(bus_.Read(DprcPortal() + 2, std::span<uint8_t>(&status, 1)));
  EXPECT_EQ(status, kMcOk);
  // A header without READY, and writes past the command, submit nothing.
  McCommand idle = cmd.Reply(kMcOk);
  EXPECT_TRUE(bus_.Write(DprcPortal(), std::span<const uint8_t>(idle.bytes().data(), 8)));
  const uint8_t junk[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  EXPECT_TRUE(bus_.Write(DprcPortal() + 64, junk));
  EXPECT_TRUE(bus_.Write(DprcPortal() + 0xfff8, junk));
  EXPECT_EQ(group().mc.log.size(), before + 1);
}

TEST_F(FslMcContainerTest, ExecuteRefusesNonPortalObjects) {
  auto mc = OpenAndAttach();
  ASSERT_TRUE(mc);
  const McCommand cmd = McCommand::Build(kDprcGetContId, 1, 0);
  EXPECT_EQ(mc->Execute(3, cmd).status(), kMcInvalidState);  // dpio
  EXPECT_EQ(mc->Execute(1, cmd).status(), kMcInvalidState);  // dpbp
  EXPECT_EQ(mc->Execute(100, cmd).status(), kMcInvalidState);
  EXPECT_TRUE(group().Find("dpio.7")->portal_writes.empty());
}

TEST(McCommandTest, FieldsAndStrings) {
  McCommand c = McCommand::Build(kDprcGetObjRegion, 3, 0xbeef);
  EXPECT_EQ(c.code(), kDprcGetObjRegion);
  EXPECT_EQ(c.version(), 3);
  EXPECT_EQ(c.token(), 0xbeef);
  EXPECT_EQ(c.status(), kMcReady);
  EXPECT_EQ(c.bytes()[6], 0xe3);  // cmd_id le16 = 0x15e3
  EXPECT_EQ(c.bytes()[7], 0x15);
  c.SetP64(48, 0x1122334455667788);
  EXPECT_EQ(c.P64(48), 0x1122334455667788u);
  EXPECT_EQ(c.P64(52), 0u);  // past the end: 0, no OOB
  c.SetP64(56, 1);           // dropped
  c.SetPString16(24, "a-very-long-object-type");
  EXPECT_EQ(*c.PString16(24), "a-very-long-obj");
  EXPECT_FALSE(c.PString16(48).has_value());  // 16 bytes from 48 pass the end
}

// --- device tree ----------------------------------------------------------

TEST(FslMcFdtTest, WritesTheBindingsNode) {
  std::vector<char> buf(4096);
  ASSERT_EQ(fdt_create(buf.data(), static_cast<int>(buf.size())), 0);
  ASSERT_EQ(fdt_finish_reservemap(buf.data()), 0);
  ASSERT_EQ(fdt_begin_node(buf.data(), ""), 0);
  ASSERT_EQ(fdt_property_u32(buf.data(), "#address-cells", 2), 0);
  ASSERT_EQ(fdt_property_u32(buf.data(), "#size-cells", 2), 0);
  FslMcNodeParams p;
  p.root_portal_gpa = 0x820000000;
  p.root_portal_size = 0x10000;
  p.mc_base = 0x820000000;
  p.mc_size = 0x20000;
  p.qbman_base = 0x820020000;
  p.qbman_size = 0x30000;
  p.icid = 7;
  p.its_phandle = 3;
  p.its_device_id = 0x1234;
  ASSERT_TRUE(WriteFslMcNode(buf.data(), p).ok());
  ASSERT_EQ(fdt_end_node(buf.data()), 0);
  ASSERT_EQ(fdt_finish(buf.data()), 0);

  const void* fdt = buf.data();
  const int node = fdt_path_offset(fdt, "/fsl-mc@820000000");
  ASSERT_GE(node, 0);
  EXPECT_EQ(fdt_node_check_compatible(fdt, node, "fsl,qoriq-mc"), 0);
  auto cells = [&](const char* name) {
    int len = 0;
    const auto* v = static_cast<const fdt32_t*>(fdt_getprop(fdt, node, name, &len));
    std::vector<uint32_t> out;
    for (int i = 0; v && i < len / 4; ++i) out.push_back(fdt32_to_cpu(v[i]));
    return out;
  };
  EXPECT_EQ(cells("#address-cells"), std::vector<uint32_t>{3});
  EXPECT_EQ(cells("#size-cells"), std::vector<uint32_t>{1});
  EXPECT_EQ(cells("reg"), (std::vector<uint32_t>{0x8, 0x20000000, 0, 0x10000}));
  EXPECT_EQ(cells("ranges"), (std::vector<uint32_t>{0, 0, 0, 0x8, 0x20000000, 0x20000,  //
                                                    1, 0, 0, 0x8, 0x20020000, 0x30000}));
  EXPECT_EQ(cells("msi-map"), (std::vector<uint32_t>{7, 3, 0x1234, 1}));
  int len = -1;
  EXPECT_NE(fdt_getprop(fdt, node, "dma-coherent", &len), nullptr);
  EXPECT_EQ(len, 0);
  EXPECT_EQ(fdt_getprop(fdt, node, "msi-parent", &len), nullptr);
  p.its_phandle = 0;
  EXPECT_FALSE(WriteFslMcNode(buf.data(), p).ok());
}

TEST_F(FslMcContainerTest, NodeParamsFollowTheLayout) {
  auto mc = OpenAndAttach();
  ASSERT_TRUE(mc);
  FslMcNodeParams p = mc->node_params(5);
  EXPECT_EQ(p.root_portal_gpa, kWindow.base);
  EXPECT_EQ(p.mc_base, mc->layout().mc_base);
  EXPECT_EQ(p.qbman_size, mc->layout().qbman_size);
  EXPECT_EQ(p.icid, kIds.icid);
  EXPECT_EQ(p.its_device_id, kIds.its_device_id);
  EXPECT_EQ(p.its_phandle, 5u);
}

// --- CLI ------------------------------------------------------------------

TEST(FslMcCliTest, ParsesAndIsRefusedOffArm64) {
  EXPECT_EQ(ParseFslMcDeviceOption("fsl-mc=dprc.2")->dprc, "dprc.2");
  EXPECT_EQ(ParseFslMcDeviceOption("fsl-mc=/sys/bus/fsl-mc/devices/dprc.3")->dprc, "dprc.3");
  EXPECT_FALSE(ParseFslMcDeviceOption("fsl-mc=dpni.1").ok());
  EXPECT_FALSE(ParseFslMcDeviceOption("fsl-mc=").ok());
  EXPECT_THAT(ParseDeviceOption("usb=1").status().message(), HasSubstr("known: vfio, fsl-mc"));
  auto cmd = ParseCli({"run", "--kernel", "k", "--device", "fsl-mc=dprc.2"});
#if defined(__aarch64__)
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->config.fsl_mc_devices, std::vector<FslMcDeviceConfig>{{"dprc.2"}});
  EXPECT_FALSE(
      ParseCli({"run", "--kernel", "k", "--device", "fsl-mc=dprc.2", "--device", "fsl-mc=dprc.2"})
          .ok());
#else
  EXPECT_EQ(cmd.status().message(),
            "--device fsl-mc=dprc.2: fsl-mc passthrough needs an ARM64 host/guest");
#endif
  EXPECT_FALSE(ParseCli({"run", "--kernel", "k", "--device", "fsl-mc=dprc"}).ok());
}

}  // namespace
}  // namespace skiff::vfio::fsl_mc

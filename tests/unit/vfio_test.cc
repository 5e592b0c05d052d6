// VFIO passthrough against the kernel test double: sysfs checks and group
// viability, BAR slot splitting, the container, and the passed-through PCI
// function's config-space virtualization, MSI/MSI-X emulation and routing.
#include <linux/vfio.h>
#include <sys/mman.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/str_format.h"
#include "arch/arch.h"
#include "devices/pci/pci_constants.h"
#include "devices/vfio/bar_layout.h"
#include "devices/vfio/vfio_container.h"
#include "devices/vfio/vfio_pci_device.h"
#include "devices/vfio/vfio_sysfs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_vfio_kernel.h"
#include "tests/unit/pci_test_fakes.h"
#include "tests/unit/temp_dir.h"
#include "vmm/config.h"
#include "vmm/vfio_setup.h"

namespace skiff::vfio {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ------------------------------------------------------------ addresses ---

TEST(PciAddressTest, AcceptsSysfsPathFullAndShortForms) {
  EXPECT_EQ(*ParsePciAddress("/sys/bus/pci/devices/0000:00:01.0"), "0000:00:01.0");
  EXPECT_EQ(*ParsePciAddress("/sys/bus/pci/devices/0000:3A:1f.7/"), "0000:3a:1f.7");
  EXPECT_EQ(*ParsePciAddress("0001:02:03.4"), "0001:02:03.4");
  EXPECT_EQ(*ParsePciAddress("02:03.4"), "0000:02:03.4");
}

TEST(PciAddressTest, RejectsJunk) {
  for (const char* bad : {"", "0000:00:01", "0000:00:01.8", "0000:00:20.0", "xx:00.0",
                          "/dev/vfio/3", "0000:00:01.0.0", "/sys/bus/pci/devices/"}) {
    auto parsed = ParsePciAddress(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    if (!parsed.ok()) {
      EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("PCI"));
    }
  }
}

// ---------------------------------------------------------------- sysfs ---

class SysfsTest : public ::testing::Test {
 protected:
  // A device directory, optionally with driver and group links.
  void AddDevice(const std::string& name, const std::string& driver, int group) {
    const fs::path dev = root() / "bus/pci/devices" / name;
    fs::create_directories(dev);
    std::ofstream(dev / "config") << "x";
    if (!driver.empty()) {
      fs::create_directories(root() / "bus/pci/drivers" / driver);
      fs::create_directory_symlink(root() / "bus/pci/drivers" / driver, dev / "driver");
    }
    if (group >= 0) {
      const fs::path g = root() / "kernel/iommu_groups" / std::to_string(group);
      fs::create_directories(g / "devices");
      fs::create_directory_symlink(g, dev / "iommu_group");
      fs::create_directory_symlink(dev, g / "devices" / name);
    }
  }
  fs::path root() const { return dir_.path(); }
  testing::TempDir dir_;
};

TEST_F(SysfsTest, BoundDeviceAloneInItsGroupIsViable) {
  AddDevice("0000:00:01.0", "vfio-pci", 1);
  auto host = InspectHostPciDevice(root(), "0000:00:01.0");
  ASSERT_TRUE(host.ok()) << host.status();
  EXPECT_EQ(host->group, 1u);
  ASSERT_EQ(host->group_members.size(), 1u);
  EXPECT_EQ(host->group_members[0].driver, "vfio-pci");
  EXPECT_TRUE(CheckGroupViable(*host).ok());
}

// The host's reset methods come with the device, trimmed; none on a kernel
// that predates the file.
TEST_F(SysfsTest, ResetMethodIsReadWithTheDevice) {
  AddDevice("0000:00:01.0", "vfio-pci", 1);
  auto host = InspectHostPciDevice(root(), "0000:00:01.0");
  ASSERT_TRUE(host.ok()) << host.status();
  EXPECT_EQ(host->reset_method, "");
  std::ofstream(root() / "bus/pci/devices/0000:00:01.0/reset_method") << "flr bus\n";
  host = InspectHostPciDevice(root(), "0000:00:01.0");
  ASSERT_TRUE(host.ok()) << host.status();
  EXPECT_EQ(host->reset_method, "flr bus");
}

TEST_F(SysfsTest, MissingDeviceIsNotAPciDevice) {
  auto host = InspectHostPciDevice(root(), "0000:00:09.0");
  ASSERT_FALSE(host.ok());
  EXPECT_EQ(host.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(host.status().message()), HasSubstr("not a PCI device"));
}

TEST_F(SysfsTest, NoIommuGroupSaysEnableTheIommu) {
  AddDevice("0000:00:01.0", "e1000e", -1);
  auto host = InspectHostPciDevice(root(), "0000:00:01.0");
  ASSERT_FALSE(host.ok());
  EXPECT_THAT(std::string(host.status().message()), HasSubstr("no IOMMU group"));
  EXPECT_THAT(std::string(host.status().message()), HasSubstr("intel_iommu=on"));
}

// ARM64 device-tree hosts (SMMUv3) give a device its IOMMU group only when a
// driver binds: an unbound device must get the bind fix, not "no IOMMU".
TEST_F(SysfsTest, UnboundDeviceWithoutAGroupYetIsToldToBindFirst) {
  AddDevice("0000:00:01.0", "", -1);
  auto host = InspectHostPciDevice(root(), "0000:00:01.0");
  ASSERT_FALSE(host.ok());
  const std::string msg(host.status().message());
  EXPECT_THAT(msg, HasSubstr("bound to no driver, not vfio-pci"));
  EXPECT_THAT(msg,
              HasSubstr("echo vfio-pci > " + (root() / "bus/pci/devices/0000:00:01.0").string() +
                        "/driver_override"));
  EXPECT_THAT(msg, HasSubstr("drivers_probe"));
  EXPECT_THAT(msg, HasSubstr("when a driver binds"));
}

TEST_F(SysfsTest, WrongDriverIsNamedWithTheFix) {
  AddDevice("0000:00:01.0", "e1000e", 1);
  auto host = InspectHostPciDevice(root(), "0000:00:01.0");
  ASSERT_FALSE(host.ok());
  const std::string msg(host.status().message());
  EXPECT_THAT(msg, HasSubstr("driver e1000e"));
  EXPECT_THAT(msg, HasSubstr("driver_override"));
  EXPECT_THAT(msg, HasSubstr("new_id"));
  AddDevice("0000:00:02.0", "", 2);
  host = InspectHostPciDevice(root(), "0000:00:02.0");
  ASSERT_FALSE(host.ok());
  EXPECT_THAT(std::string(host.status().message()), HasSubstr("no driver"));
}

TEST_F(SysfsTest, GroupWithAHostDriverIsNotViableAndNamesIt) {
  AddDevice("0000:00:1f.0", "vfio-pci", 2);
  AddDevice("0000:00:1f.2", "ahci", 2);
  AddDevice("0000:00:1f.3", "", 2);          // unbound: fine
  AddDevice("0000:00:1c.0", "pcieport", 2);  // a bridge: fine
  auto host = InspectHostPciDevice(root(), "0000:00:1f.0");
  ASSERT_TRUE(host.ok()) << host.status();
  EXPECT_EQ(host->group_members.size(), 4u);
  absl::Status viable = CheckGroupViable(*host);
  ASSERT_FALSE(viable.ok());
  const std::string msg(viable.message());
  EXPECT_THAT(msg, HasSubstr("0000:00:1f.2 (driver ahci)"));
  EXPECT_THAT(msg, ::testing::Not(HasSubstr("1f.3")));
  EXPECT_THAT(msg, ::testing::Not(HasSubstr("1c.0")));
}

// The whole pre-KVM path: sysfs, then /dev/vfio, then the kernel's group.
TEST_F(SysfsTest, OpenVfioDevicesChecksInOrderAndSharesTheGroup) {
  AddDevice("0000:00:01.0", "vfio-pci", 7);
  AddDevice("0000:00:01.1", "vfio-pci", 7);
  VmConfig config;
  config.sysfs_root = root();
  config.vfio_devices = {{"0000:00:01.0"}, {"0000:00:01.1"}};
  auto kernel = std::make_shared<FakeVfioKernel>();
  kernel->dev_vfio_missing = true;
  auto opened = OpenVfioDevices(config, kernel);
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(std::string(opened.status().message()), HasSubstr("modprobe vfio-pci"));
  kernel->dev_vfio_missing = false;
  auto a = std::make_shared<FakePciFunction>(FakePciFunction::E1000e());
  auto b = std::make_shared<FakePciFunction>(FakePciFunction::E1000e());
  b->name = "0000:00:01.1";
  kernel->groups[7].devices = {a, b};
  opened = OpenVfioDevices(config, kernel);
  ASSERT_TRUE(opened.ok()) << opened.status();
  ASSERT_EQ(opened->devices.size(), 2u);
  EXPECT_EQ(opened->devices[0].group, opened->devices[1].group);
  // A third device of the group held by a host driver: refused from sysfs,
  // before /dev/vfio is touched.
  AddDevice("0000:00:01.2", "snd_hda_intel", 7);
  kernel->dev_vfio_missing = true;
  opened = OpenVfioDevices(config, kernel);
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(std::string(opened.status().message()),
              HasSubstr("0000:00:01.2 (driver snd_hda_intel)"));
}

// The group's reserved regions come from sysfs; lines that do not parse
// (or that end before they start) are skipped.
TEST_F(SysfsTest, ReservedRegionsAreReadWithTheGroup) {
  AddDevice("0000:00:01.0", "vfio-pci", 4);
  std::ofstream(root() / "kernel/iommu_groups/4/reserved_regions")
      << "0x00000000fee00000 0x00000000feefffff msi\n"
      << "garbage\n"
      << "0x0000000000002000 0x0000000000001000 direct\n"
      << "0x00000000000a0000 0x00000000000bffff direct-relaxable\n";
  auto host = InspectHostPciDevice(root(), "0000:00:01.0");
  ASSERT_TRUE(host.ok()) << host.status();
  EXPECT_THAT(host->reserved_regions,
              ElementsAre(ReservedRegion{0xfee00000, 0xfeefffff, "msi"},
                          ReservedRegion{0xa0000, 0xbffff, "direct-relaxable"}));
  // No file (older kernels, other buses): nothing, not an error.
  AddDevice("0000:00:02.0", "vfio-pci", 5);
  host = InspectHostPciDevice(root(), "0000:00:02.0");
  ASSERT_TRUE(host.ok()) << host.status();
  EXPECT_TRUE(host->reserved_regions.empty());
}

// Guest RAM is checked against the IOMMU in OpenVfioDevices, before KVM or
// guest RAM exist, at the addresses the platform will give it; sysfs names
// the reserved region behind the hole.
TEST_F(SysfsTest, OpenVfioDevicesRefusesGuestRamOverlappingAReservedRegion) {
  AddDevice("0000:00:01.0", "vfio-pci", 9);
  VmConfig config;
  config.sysfs_root = root();
  config.vfio_devices = {{"0000:00:01.0"}};
  auto ram = arch::RamLayout(config.memory_bytes);
  ASSERT_TRUE(ram.ok()) << ram.status();
  // A 1 MiB firmware region half-way into the first RAM range.
  const uint64_t hole = (ram->front().gpa + ram->front().size / 2) & ~uint64_t{0xfffff};
  const uint64_t hole_last = hole + 0xfffff;
  std::ofstream(root() / "kernel/iommu_groups/9/reserved_regions")
      << absl::StrFormat("0x%016x 0x%016x direct\n", hole, hole_last)
      << "0x00000000fee00000 0x00000000feefffff msi\n";
  auto kernel = std::make_shared<FakeVfioKernel>();
  kernel->groups[9].devices = {std::make_shared<FakePciFunction>(FakePciFunction::E1000e())};
  kernel->iova_ranges = {
      {0, hole - 1}, {hole_last + 1, 0xfedfffff}, {0xfef00000, (uint64_t{1} << 48) - 1}};
  auto opened = OpenVfioDevices(config, kernel);
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(std::string(opened.status().message()),
              HasSubstr(absl::StrFormat(
                  "overlaps the IOMMU's reserved range 0x%x-0x%x of /dev/vfio/9 "
                  "(/sys/kernel/iommu_groups/9/reserved_regions: 0x%x-0x%x direct)",
                  hole, hole_last, hole, hole_last)));
  EXPECT_EQ(kernel->map_dma_calls, 0);
  // Locked memory is checked there too.
  kernel = std::make_shared<FakeVfioKernel>();
  kernel->groups[9].devices = {std::make_shared<FakePciFunction>(FakePciFunction::E1000e())};
  kernel->memlock.limit = 64 * 1024;
  opened = OpenVfioDevices(config, kernel);
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(std::string(opened.status().message()), HasSubstr("RLIMIT_MEMLOCK is 64 KiB"));
  // The same device and RAM with room for both: it opens.
  kernel = std::make_shared<FakeVfioKernel>();
  kernel->groups[9].devices = {std::make_shared<FakePciFunction>(FakePciFunction::E1000e())};
  opened = OpenVfioDevices(config, kernel);
  EXPECT_TRUE(opened.ok()) << opened.status();
}

// rom=FILE is read before /dev/vfio is touched; a file that is not there
// is one error naming the device and the file.
TEST_F(SysfsTest, OpenVfioDevicesReadsTheRomFile) {
  AddDevice("0000:00:01.0", "vfio-pci", 7);
  VmConfig config;
  config.sysfs_root = root();
  config.vfio_devices = {{"0000:00:01.0", true, (root() / "nic.rom").string()}};
  auto kernel = std::make_shared<FakeVfioKernel>();
  kernel->dev_vfio_missing = true;
  auto opened = OpenVfioDevices(config, kernel);
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(std::string(opened.status().message()),
              HasSubstr("--device vfio=0000:00:01.0: rom file " + (root() / "nic.rom").string() +
                        ": cannot open"));
  std::ofstream(root() / "nic.rom") << "\x55\xaa" << std::string(1000, 'x');
  kernel->dev_vfio_missing = false;
  kernel->groups[7].devices = {std::make_shared<FakePciFunction>(FakePciFunction::E1000e())};
  opened = OpenVfioDevices(config, kernel);
  ASSERT_TRUE(opened.ok()) << opened.status();
  ASSERT_EQ(opened->rom_images.size(), 1u);
  ASSERT_NE(opened->rom_images[0], nullptr);
  EXPECT_EQ(opened->rom_images[0]->size(), 1002u);
  EXPECT_EQ((*opened->rom_images[0])[1], 0xaa);
  EXPECT_EQ(opened->expose_rom, std::vector<bool>{true});
}

TEST(GroupViableTest, PciStubAndVfioPciAreFine) {
  HostPciDevice host{
      "0000:00:01.0", 3, {{"0000:00:01.0", "vfio-pci"}, {"0000:00:01.1", "pci-stub"}}, {}};
  EXPECT_TRUE(CheckGroupViable(host).ok());
  host.group_members.push_back({"0000:00:01.2", "snd_hda_intel"});
  host.group_members.push_back({"0000:00:01.3", "nvme"});
  absl::Status s = CheckGroupViable(host);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("snd_hda_intel"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("nvme"));
}

// ----------------------------------------------------------- bar layout ---

TEST(BarLayoutTest, WholeBarWithoutTrapsIsOnePiece) {
  EXPECT_THAT(DirectPieces(0x20000, {{0, 0x20000}}, {}, 0x1000), ElementsAre(BarPiece{0, 0x20000}));
}

TEST(BarLayoutTest, MsixTableAndPbaPagesAreCutOut) {
  // e1000e's BAR3: table at 0 (5 entries), PBA at 0x2000.
  EXPECT_THAT(DirectPieces(0x4000, {{0, 0x4000}}, {{0, 0x50}, {0x2000, 8}}, 0x1000),
              ElementsAre(BarPiece{0x1000, 0x1000}, BarPiece{0x3000, 0x1000}));
}

TEST(BarLayoutTest, TrapSpanningPagesTakesEveryPage) {
  EXPECT_THAT(DirectPieces(0x10000, {{0, 0x10000}}, {{0x1ff0, 0x20}}, 0x1000),
              ElementsAre(BarPiece{0, 0x1000}, BarPiece{0x3000, 0xd000}));
}

TEST(BarLayoutTest, SparseAreasAreHonouredAndAligned) {
  // Areas not page-aligned shrink to whole pages; an area past the BAR is clipped.
  EXPECT_THAT(
      DirectPieces(0x8000, {{0x100, 0x2000}, {0x4000, 0x1000}, {0x7000, 0x10000}}, {}, 0x1000),
      ElementsAre(BarPiece{0x1000, 0x1000}, BarPiece{0x4000, 0x1000}, BarPiece{0x7000, 0x1000}));
}

TEST(BarLayoutTest, OverflowingValuesAreClipped) {
  EXPECT_THAT(DirectPieces(0x2000, {{~uint64_t{0} - 0x10, 0x100}}, {}, 0x1000), ElementsAre());
  EXPECT_THAT(DirectPieces(0x2000, {{0, 0x2000}}, {{~uint64_t{0} - 4, 0x100}}, 0x1000),
              ElementsAre(BarPiece{0, 0x2000}));
  EXPECT_THAT(DirectPieces(0x800, {{0, 0x800}}, {}, 0x1000), ElementsAre());  // under a page
}

TEST(BarLayoutTest, MmapAreasFollowFlags) {
  VfioRegionInfo r;
  r.size = 0x4000;
  EXPECT_TRUE(MmapAreas(r).empty());
  r.flags = VFIO_REGION_INFO_FLAG_MMAP;
  EXPECT_THAT(MmapAreas(r), ElementsAre(VfioSparseArea{0, 0x4000}));
  r.sparse_areas = std::vector<VfioSparseArea>{{0x1000, 0x1000}};
  EXPECT_THAT(MmapAreas(r), ElementsAre(VfioSparseArea{0x1000, 0x1000}));
}

// ------------------------------------------------------------ container ---

HostPciDevice Host(const std::string& name, uint32_t group) {
  return HostPciDevice{name, group, {{name, "vfio-pci"}}, {}};
}

TEST(ContainerTest, TwoDevicesOfOneGroupShareTheGroup) {
  auto kernel = std::make_shared<FakeVfioKernel>();
  auto a = std::make_shared<FakePciFunction>(FakePciFunction::E1000e());
  auto b = std::make_shared<FakePciFunction>(FakePciFunction::E1000e());
  b->name = "0000:00:01.1";
  kernel->groups[4].devices = {a, b};
  auto container = VfioContainer::Open(kernel);
  ASSERT_TRUE(container.ok()) << container.status();
  auto da = (*container)->OpenDevice(Host("0000:00:01.0", 4));
  ASSERT_TRUE(da.ok()) << da.status();
  auto db = (*container)->OpenDevice(Host("0000:00:01.1", 4));
  ASSERT_TRUE(db.ok()) << db.status();  // a second open of /dev/vfio/4 would be EBUSY
  EXPECT_EQ(da->group, db->group);
  EXPECT_EQ((*container)->groups().size(), 1u);
}

TEST(ContainerTest, GuestRamIsMappedOnceAndUnmappedOnDestruction) {
  auto kernel = std::make_shared<FakeVfioKernel>();
  kernel->groups[1].devices = {std::make_shared<FakePciFunction>(FakePciFunction::E1000e())};
  std::vector<uint8_t> low(0x10000), high(0x10000);
  auto memory =
      GuestMemory::Create({{0, low.size(), low.data()}, {0x100000000, high.size(), high.data()}});
  ASSERT_TRUE(memory.ok());
  int container_fd;
  {
    auto container = VfioContainer::Open(kernel);
    ASSERT_TRUE(container.ok());
    ASSERT_TRUE((*container)->OpenDevice(Host("0000:00:01.0", 1)).ok());
    container_fd = (*container)->fd();
    ASSERT_TRUE((*container)->MapGuestMemory(*memory).ok());
    EXPECT_EQ(kernel->containers[container_fd].dma.size(), 2u);
    EXPECT_EQ(kernel->containers[container_fd].dma[0x100000000], 0x10000u);
  }
  EXPECT_EQ(kernel->unmaps, 2);
  EXPECT_TRUE(kernel->containers[container_fd].dma.empty());
}

// Guest RAM goes to the IOMMU in pieces that end on kDmaChunk boundaries,
// so no single unmap ioctl walks more than kDmaChunk of pages.
TEST(ContainerTest, GuestRamIsMappedInBoundedPieces) {
  auto kernel = std::make_shared<FakeVfioKernel>();
  kernel->groups[1].devices = {std::make_shared<FakePciFunction>(FakePciFunction::E1000e())};
  constexpr uint64_t kChunk = VfioContainer::kDmaChunk;
  const uint64_t size = 2 * kChunk + kChunk / 2;  // starts half-way into a chunk
  void* host = ::mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(host, MAP_FAILED);
  auto memory = GuestMemory::Create({{kChunk / 2, size, static_cast<uint8_t*>(host)}});
  ASSERT_TRUE(memory.ok());
  int container_fd;
  {
    auto container = VfioContainer::Open(kernel);
    ASSERT_TRUE(container.ok());
    ASSERT_TRUE((*container)->OpenDevice(Host("0000:00:01.0", 1)).ok());
    container_fd = (*container)->fd();
    ASSERT_TRUE((*container)->MapGuestMemory(*memory).ok());
    std::map<uint64_t, uint64_t> want = {
        {kChunk / 2, kChunk / 2}, {kChunk, kChunk}, {2 * kChunk, kChunk}};
    EXPECT_EQ(kernel->containers[container_fd].dma, want);
  }
  EXPECT_EQ(kernel->unmaps, 3);
  EXPECT_TRUE(kernel->containers[container_fd].dma.empty());
  ::munmap(host, size);
}

TEST(ContainerTest, KernelSaysNotViableNamesTheGroupMembers) {
  auto kernel = std::make_shared<FakeVfioKernel>();
  kernel->groups[2].flags = 0;
  auto container = VfioContainer::Open(kernel);
  ASSERT_TRUE(container.ok());
  HostPciDevice host{
      "0000:00:1f.0", 2, {{"0000:00:1f.0", "vfio-pci"}, {"0000:00:1f.3", ""}}, {}};
  auto device = (*container)->OpenDevice(host);
  ASSERT_FALSE(device.ok());
  EXPECT_THAT(std::string(device.status().message()), HasSubstr("not viable"));
  EXPECT_THAT(std::string(device.status().message()), HasSubstr("0000:00:1f.3 (no driver)"));
}

TEST(ContainerTest, MissingDevVfioAndUnsafeInterruptsAreExplained) {
  auto kernel = std::make_shared<FakeVfioKernel>();
  kernel->dev_vfio_missing = true;
  auto container = VfioContainer::Open(kernel);
  ASSERT_FALSE(container.ok());
  EXPECT_THAT(std::string(container.status().message()), HasSubstr("modprobe vfio-pci"));
  kernel->dev_vfio_missing = false;
  kernel->unsafe_interrupts_refused = true;
  kernel->groups[1].devices = {std::make_shared<FakePciFunction>(FakePciFunction::E1000e())};
  container = VfioContainer::Open(kernel);
  ASSERT_TRUE(container.ok());
  auto device = (*container)->OpenDevice(Host("0000:00:01.0", 1));
  ASSERT_FALSE(device.ok());
  const std::string message(device.status().message());
  EXPECT_THAT(message, HasSubstr("vfio device 0000:00:01.0: VFIO_SET_IOMMU: EPERM"));
  EXPECT_THAT(message, HasSubstr("vfio_iommu_type1.allow_unsafe_interrupts=1"));
  // Both ways a host gets there: x86 without remapping, ARM64 with a GICv2m.
  EXPECT_THAT(message, HasSubstr("intel_iommu=on"));
  EXPECT_THAT(message, HasSubstr("GICv3 ITS"));
  EXPECT_THAT(message, HasSubstr("GICv2m"));
}

// ----------------------------------------------------- the PCI function ---

class FakeSlots : public MemorySlotRegistrar, public IrqFdRegistrar {
 public:
  struct Slot {
    uint64_t gpa, size;
    void* host;
  };
  absl::StatusOr<uint32_t> AddMemorySlot(uint64_t gpa, uint64_t size, void* host) override {
    slots[next] = {gpa, size, host};
    return next++;
  }
  absl::Status RemoveMemorySlot(uint32_t slot) override {
    if (slots.erase(slot) == 0) return absl::NotFoundError("no such slot");
    if (journal) journal->push_back("slot removed");
    return absl::OkStatus();
  }
  absl::Status AddIrqFd(int eventfd, uint32_t gsi, int resample_fd) override {
    irqfds[eventfd] = {gsi, resample_fd};
    return absl::OkStatus();
  }
  absl::Status RemoveIrqFd(int eventfd, uint32_t) override {
    irqfds.erase(eventfd);
    if (journal) journal->push_back("irqfd removed");
    return absl::OkStatus();
  }
  std::vector<std::string>* journal = nullptr;  // the kernel's, when set
  std::map<uint32_t, Slot> slots;
  std::map<int, std::pair<uint32_t, int>> irqfds;
  uint32_t next = 10;
};

class VfioPciDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override { Build(FakePciFunction::E1000e()); }

  void Build(FakePciFunction function) {
    device_.reset();
    kernel_ = std::make_shared<FakeVfioKernel>();
    fn_ = std::make_shared<FakePciFunction>(std::move(function));
    kernel_->groups[1].devices = {fn_};
    auto container = VfioContainer::Open(kernel_);
    ASSERT_TRUE(container.ok());
    auto opened = (*container)->OpenDevice(Host(fn_->name, 1));
    ASSERT_TRUE(opened.ok()) << opened.status();
    VfioPciEnv env;
    env.msi = &msi_;
    env.slots = &slots_;
    env.irqfds = &slots_;
    env.intx_gsi = 21;
    env.bdf = 0x08;
    auto dev = VfioPciDevice::Create(*container, *std::move(opened), env);
    ASSERT_TRUE(dev.ok()) << dev.status();
    device_ = *dev;
  }
  uint32_t Read(uint32_t offset, uint32_t size) { return device_->ReadConfig(offset, size); }
  void Write(uint32_t offset, uint32_t size, uint32_t value) {
    device_->WriteConfig(offset, size, value);
  }
  void WriteTable(uint32_t entry, uint32_t field, uint32_t value) {
    uint8_t b[4];
    std::memcpy(b, &value, 4);
    device_->WriteBar(3, entry * 16 + field, b);
  }
  FakePciFunction::IrqState& Irq(uint32_t index) { return fn_->irq_state[index]; }
  // Vectors are allocated walking the capability list: MSI (0xd0, one
  // vector) comes before MSI-X (0xa0).
  FakeMsiState& MsixState(uint32_t vector) { return *msi_.states[1 + vector]; }

  FakeMsiAllocator msi_;
  FakeSlots slots_;
  std::shared_ptr<FakeVfioKernel> kernel_;
  std::shared_ptr<FakePciFunction> fn_;
  std::shared_ptr<VfioPciDevice> device_;
};

TEST_F(VfioPciDeviceTest, IdentityPassesThroughAndIsReadOnly) {
  EXPECT_EQ(Read(pci::kVendorId, 4), 0x10d38086u);
  EXPECT_EQ(Read(pci::kClassProgIf - 1, 4), 0x02000000u);
  fn_->config_writes.clear();
  Write(pci::kVendorId, 4, 0x12345678);
  Write(pci::kRevisionId, 4, 0xffffffff);
  Write(pci::kSubsystemVendorId, 4, 0xdeadbeef);
  Write(pci::kCapabilitiesPointer, 1, 0x40);
  Write(pci::kInterruptPin, 1, 3);
  EXPECT_TRUE(fn_->config_writes.empty());
  EXPECT_EQ(Read(pci::kVendorId, 4), 0x10d38086u);
  EXPECT_EQ(Read(pci::kInterruptPin, 1), 1u);
}

TEST_F(VfioPciDeviceTest, ResetOnStartAndOnExit) {
  EXPECT_EQ(fn_->resets, 1);
  device_.reset();
  EXPECT_EQ(fn_->resets, 2);
}

// The kernel's own release order first (bus mastering off, interrupts off,
// reset: nothing DMAs or signals after), and KVM's slots gone before the
// reset revokes the BAR mmaps they point into; the INTx irqfd is
// deassigned only after VFIO stopped signalling it.
TEST_F(VfioPciDeviceTest, TeardownStopsTheDeviceBeforeReleasingWhatItUses) {
  Write(pci::kCommand, 2, pci::kCommandMemory | pci::kCommandBusMaster);
  Write(pci::kBar0, 4, 0xc0000000);
  device_->BarMapped(0, 0xc0000000);
  ASSERT_EQ(slots_.slots.size(), 1u);
  Write(0xa2, 2, pci::kMsixControlEnable);
  ASSERT_EQ(Irq(VFIO_PCI_MSIX_IRQ_INDEX).enabled, 5u);
  kernel_->journal.clear();
  slots_.journal = &kernel_->journal;
  device_.reset();
  EXPECT_THAT(kernel_->journal, ElementsAre("command 0x0002", "irqs off 2", "slot removed", "reset",
                                            "irqfd removed"));
  EXPECT_EQ(Irq(VFIO_PCI_MSIX_IRQ_INDEX).enabled, 0u);
  EXPECT_TRUE(slots_.slots.empty());
  EXPECT_TRUE(slots_.irqfds.empty());
}

TEST_F(VfioPciDeviceTest, TeardownInIntxModeTurnsIntxOffBeforeItsIrqfdGoes) {
  ASSERT_TRUE(device_->intx_enabled());
  kernel_->journal.clear();
  slots_.journal = &kernel_->journal;
  device_.reset();
  EXPECT_THAT(kernel_->journal,
              ElementsAre("command 0x0000", "irqs off 0", "reset", "irqfd removed"));
}

TEST_F(VfioPciDeviceTest, BarsAnswerTheSizingProtocolWithVfioSizes) {
  // The guest sees no host address.
  EXPECT_EQ(Read(pci::kBar0, 4), 0u);
  Write(pci::kBar0, 4, 0xffffffff);
  EXPECT_EQ(Read(pci::kBar0, 4), 0xfffe0000u);  // 128 KiB, 32-bit memory
  Write(pci::kBar0 + 8, 4, 0xffffffff);
  EXPECT_EQ(Read(pci::kBar0 + 8, 4), 0xffffffe1u);  // 32-byte I/O BAR
  Write(pci::kBar0 + 12, 4, 0xffffffff);
  EXPECT_EQ(Read(pci::kBar0 + 12, 4), 0xffffc000u);  // 16 KiB
  Write(pci::kBar0 + 20, 4, 0xffffffff);
  EXPECT_EQ(Read(pci::kBar0 + 20, 4), 0u);  // no BAR5
  // Relocation: the register holds the guest's address, the hardware keeps its own.
  Write(pci::kBar0, 4, 0xc0020000);
  EXPECT_EQ(Read(pci::kBar0, 4), 0xc0020000u);
  EXPECT_EQ(device_->GetBar(0)->address, 0xc0020000u);
  EXPECT_EQ(fn_->config[pci::kBar0 + 3], 0xfe);
}

TEST_F(VfioPciDeviceTest, SixtyFourBitBarsSpanTwoRegisters) {
  FakePciFunction f = FakePciFunction::E1000e();
  f.regions[0] = {};
  f.AddBar(0, 0x200000000, pci::kBarMem64 | pci::kBarPrefetchable);  // 8 GiB
  f.regions[1] = {};
  f.bar_data[1].clear();
  Build(std::move(f));
  std::optional<pci::BarInfo> bar = device_->GetBar(0);
  ASSERT_TRUE(bar);
  EXPECT_EQ(bar->type, pci::BarType::kMemory64);
  EXPECT_TRUE(bar->prefetchable);
  EXPECT_FALSE(device_->GetBar(1));
  Write(pci::kBar0, 4, 0xffffffff);
  Write(pci::kBar0 + 4, 4, 0xffffffff);
  EXPECT_EQ(Read(pci::kBar0, 4), 0x0000000cu);
  EXPECT_EQ(Read(pci::kBar0 + 4, 4), 0xfffffffeu);
  Write(pci::kBar0, 4, 0);
  Write(pci::kBar0 + 4, 4, 0x4);
  EXPECT_EQ(device_->GetBar(0)->address, 0x400000000u);
}

TEST_F(VfioPciDeviceTest, RomIsHidden) {
  EXPECT_EQ(Read(pci::kExpansionRom, 4), 0u);
  Write(pci::kExpansionRom, 4, 0xffffffff);
  EXPECT_EQ(Read(pci::kExpansionRom, 4), 0u);
}

TEST_F(VfioPciDeviceTest, CommandDecodeBitsAreTrackedAndPassedOn) {
  Write(pci::kCommand, 2, pci::kCommandMemory | pci::kCommandBusMaster);
  EXPECT_EQ(Read(pci::kCommand, 2) & 7, uint32_t{pci::kCommandMemory | pci::kCommandBusMaster});
  EXPECT_EQ(fn_->config[pci::kCommand] & 7, pci::kCommandMemory | pci::kCommandBusMaster);
}

TEST_F(VfioPciDeviceTest, CapabilityListIsTheHardwares) {
  EXPECT_EQ(device_->msi_capability(), 0xd0u);
  EXPECT_EQ(device_->msix_capability(), 0xa0u);
  EXPECT_EQ(Read(pci::kCapabilitiesPointer, 1), 0xd0u);
  EXPECT_EQ(Read(0xd0, 2), 0xa005u);
  EXPECT_EQ(Read(0xa0, 4), 0x00040011u);  // 5 vectors, disabled
  EXPECT_EQ(Read(0xa4, 4), 0x00000003u);  // table: BAR3 + 0
  EXPECT_EQ(Read(0xa8, 4), 0x00002003u);  // PBA: BAR3 + 0x2000
}

TEST_F(VfioPciDeviceTest, IntxIsWiredAtStartWithAResampleFd) {
  EXPECT_TRUE(device_->intx_enabled());
  ASSERT_EQ(Irq(VFIO_PCI_INTX_IRQ_INDEX).fds.size(), 1u);
  const int trigger = Irq(VFIO_PCI_INTX_IRQ_INDEX).fds[0];
  ASSERT_EQ(slots_.irqfds.count(trigger), 1u);
  EXPECT_EQ(slots_.irqfds[trigger].first, 21u);
  EXPECT_EQ(slots_.irqfds[trigger].second, Irq(VFIO_PCI_INTX_IRQ_INDEX).unmask_fd);
}

TEST_F(VfioPciDeviceTest, MsixEnableMaskUnmaskAndMessageChanges) {
  fn_->config_writes.clear();
  // Linux: enable with the function masked, program entries, unmask.
  Write(0xa2, 2, pci::kMsixControlEnable | pci::kMsixControlFunctionMask);
  EXPECT_EQ(Read(0xa2, 2), 0xc004u);
  EXPECT_TRUE(fn_->config_writes.empty());  // never reaches the hardware
  EXPECT_FALSE(device_->intx_enabled());
  ASSERT_EQ(Irq(VFIO_PCI_MSIX_IRQ_INDEX).enabled, 5u);
  for (uint32_t i = 0; i < 5; ++i) {
    EXPECT_EQ(Irq(VFIO_PCI_MSIX_IRQ_INDEX).fds[i], device_->parked_fd(i)) << i;
  }
  WriteTable(1, 0, 0xfee00000);
  WriteTable(1, 8, 0x41);
  WriteTable(1, 12, 0);  // unmask vector 1
  Write(0xa2, 2, pci::kMsixControlEnable);
  const int irqfd1 = Irq(VFIO_PCI_MSIX_IRQ_INDEX).fds[1];
  EXPECT_GE(irqfd1, 0);
  EXPECT_NE(irqfd1, device_->parked_fd(1));
  EXPECT_EQ(Irq(VFIO_PCI_MSIX_IRQ_INDEX).fds[0], device_->parked_fd(0));
  ASSERT_EQ(MsixState(1).message_log().size(), 1u);
  EXPECT_EQ(MsixState(1).message_log()[0],
            (FakeMsiState::Message{0xfee00000, 0x41, uint32_t{0x08}}));
  // Mask: back to the parked fd; an interrupt now is pending in the PBA.
  WriteTable(1, 12, 1);
  EXPECT_EQ(Irq(VFIO_PCI_MSIX_IRQ_INDEX).fds[1], device_->parked_fd(1));
  uint64_t one = 1;
  ASSERT_EQ(::write(device_->parked_fd(1), &one, 8), 8);
  device_->DrainParked();
  uint8_t pba[8] = {};
  device_->ReadBar(3, 0x2000, pba);
  EXPECT_EQ(pba[0], 0x02);
  EXPECT_EQ(MsixState(1).trigger_count(), 0);
  // Unmask: delivered, pending cleared, VFIO signals the irqfd again.
  WriteTable(1, 12, 0);
  EXPECT_EQ(MsixState(1).trigger_count(), 1);
  device_->ReadBar(3, 0x2000, pba);
  EXPECT_EQ(pba[0], 0);
  EXPECT_EQ(Irq(VFIO_PCI_MSIX_IRQ_INDEX).fds[1], irqfd1);
  // A new message while unmasked reprograms the route.
  WriteTable(1, 8, 0x42);
  EXPECT_EQ(MsixState(1).message_log().back().data, 0x42u);
  // Disable: VFIO off, INTx back.
  Write(0xa2, 2, 0);
  EXPECT_EQ(Irq(VFIO_PCI_MSIX_IRQ_INDEX).enabled, 0u);
  EXPECT_TRUE(device_->intx_enabled());
}

TEST_F(VfioPciDeviceTest, MsiIsEmulated) {
  fn_->config_writes.clear();
  Write(0xd4, 4, 0xfee01000);
  Write(0xd8, 4, 0);
  Write(0xdc, 2, 0x51);
  Write(0xd2, 2, 0xffff);             // enable; only the writable bits stick
  EXPECT_EQ(Read(0xd2, 2), 0x0081u);  // 64-bit, enabled, 1 vector
  EXPECT_TRUE(fn_->config_writes.empty());
  ASSERT_EQ(Irq(VFIO_PCI_MSI_IRQ_INDEX).enabled, 1u);
  EXPECT_NE(Irq(VFIO_PCI_MSI_IRQ_INDEX).fds[0], device_->parked_fd(5));
  EXPECT_FALSE(device_->intx_enabled());
  const FakeMsiState::Message want{0xfee01000, 0x51, uint32_t{0x08}};
  EXPECT_EQ(msi_.states[0]->message_log().back(), want);
  Write(0xd2, 2, 0);
  EXPECT_EQ(Irq(VFIO_PCI_MSI_IRQ_INDEX).enabled, 0u);
  EXPECT_TRUE(device_->intx_enabled());
}

// What Linux 6.1 does to a 64-bit MSI function without masking (QEMU's
// e1000e), driven by e1000e in MSI mode: enable (message first, then the
// enable bit), rewrite the message while enabled (request_irq), then the
// driver's self-test: disable and enable again. VFIO is only asked to
// signal an irqfd whose route already carries the guest's message, and a
// message change moves the route without touching VFIO.
TEST_F(VfioPciDeviceTest, MsiFollowsLinuxEnableRewriteAndReenable) {
  FakeMsiState& route = *msi_.states[0];
  std::vector<size_t> routes_at_enable;
  kernel_->on_set_irqs = [&](const VfioIrqSet& set) {
    if (set.index == VFIO_PCI_MSI_IRQ_INDEX && set.count > 0) {
      routes_at_enable.push_back(route.message_log().size());
    }
  };
  auto enable = [&](uint32_t address, uint16_t data) {
    Write(0xd2, 2, 0x0080);  // QSIZE = 0, still disabled
    Write(0xd4, 4, address);
    Write(0xd8, 4, 0);
    Write(0xdc, 2, data);
    Write(0xd2, 2, 0x0081);  // enable
  };
  enable(0xfee00000, 0x22);
  ASSERT_EQ(Irq(VFIO_PCI_MSI_IRQ_INDEX).enabled, 1u);
  const int irqfd = Irq(VFIO_PCI_MSI_IRQ_INDEX).fds[0];
  EXPECT_NE(irqfd, device_->parked_fd(5));
  EXPECT_FALSE(device_->intx_enabled());
  ASSERT_EQ(routes_at_enable.size(), 1u);
  EXPECT_GE(routes_at_enable[0], 1u);  // the route existed before VFIO signalled
  EXPECT_EQ(route.message_log().back(), (FakeMsiState::Message{0xfee00000, 0x22, uint32_t{0x08}}));
  // request_irq: new message while enabled; VFIO is not involved.
  const int calls = kernel_->set_irqs_calls;
  Write(0xd2, 2, 0x0081);
  Write(0xd4, 4, 0xfee01000);
  Write(0xd8, 4, 0);
  Write(0xdc, 2, 0x41);
  EXPECT_EQ(kernel_->set_irqs_calls, calls);
  EXPECT_EQ(route.message_log().back(), (FakeMsiState::Message{0xfee01000, 0x41, uint32_t{0x08}}));
  EXPECT_EQ(Irq(VFIO_PCI_MSI_IRQ_INDEX).fds[0], irqfd);
  // The self-test: pci_disable_msi (INTx back), pci_enable_msi.
  Write(0xd2, 2, 0x0080);
  EXPECT_EQ(Irq(VFIO_PCI_MSI_IRQ_INDEX).enabled, 0u);
  EXPECT_TRUE(device_->intx_enabled());
  enable(0xfee00000, 0x23);
  ASSERT_EQ(Irq(VFIO_PCI_MSI_IRQ_INDEX).enabled, 1u);
  EXPECT_EQ(Irq(VFIO_PCI_MSI_IRQ_INDEX).fds[0], irqfd);
  ASSERT_EQ(routes_at_enable.size(), 2u);
  EXPECT_EQ(route.message_log().back().data, 0x23u);
  EXPECT_GT(routes_at_enable[1], routes_at_enable[0]);
  EXPECT_FALSE(device_->intx_enabled());
  // No guest MSI write reached the hardware's capability.
  for (const auto& [offset, bytes] : fn_->config_writes) {
    EXPECT_FALSE(offset >= 0xd0 && offset < 0xde)
        << "hardware MSI write at 0x" << std::hex << offset;
  }
}

TEST_F(VfioPciDeviceTest, BarSlotsAreSplitAroundTheMsixTableAndFollowTheBar) {
  EXPECT_THAT(device_->direct_pieces(3),
              ElementsAre(BarPiece{0x1000, 0x1000}, BarPiece{0x3000, 0x1000}));
  EXPECT_THAT(device_->direct_pieces(0), ElementsAre(BarPiece{0, 0x20000}));
  EXPECT_TRUE(device_->direct_pieces(2).empty());  // I/O: trapped
  Write(pci::kCommand, 2, pci::kCommandMemory);
  device_->BarMapped(3, 0xc0000000);
  ASSERT_EQ(slots_.slots.size(), 2u);
  std::vector<uint64_t> gpas;
  for (const auto& [id, s] : slots_.slots) gpas.push_back(s.gpa);
  EXPECT_THAT(gpas, ElementsAre(0xc0001000, 0xc0003000));
  device_->BarMapped(3, 0xd0000000);  // moved
  gpas.clear();
  for (const auto& [id, s] : slots_.slots) gpas.push_back(s.gpa);
  EXPECT_THAT(gpas, ::testing::UnorderedElementsAre(0xd0001000, 0xd0003000));
  // Memory decode off: the slots go before the hardware stops decoding.
  Write(pci::kCommand, 2, 0);
  EXPECT_TRUE(slots_.slots.empty());
}

TEST_F(VfioPciDeviceTest, TrappedBarAccessesReachTheRegion) {
  uint8_t data[4] = {1, 2, 3, 4};
  device_->WriteBar(0, 0x100, data);
  EXPECT_EQ(fn_->bar_data[0][0x100], 1);
  EXPECT_EQ(fn_->bar_data[0][0x103], 4);
  fn_->bar_data[2][4] = 0x5a;
  uint8_t out[1];
  device_->ReadBar(2, 4, out);
  EXPECT_EQ(out[0], 0x5a);
  // The MSI-X table is Skiff's, not the device's.
  uint32_t v = 0xfee00000;
  device_->WriteBar(3, 0, {reinterpret_cast<uint8_t*>(&v), 4});
  EXPECT_EQ(fn_->bar_data[3][3], 0);
}

TEST_F(VfioPciDeviceTest, SparseMmapAreasAreHonoured) {
  FakePciFunction f = FakePciFunction::E1000e();
  f.AddBar(0, 0x20000, 0, true, std::vector<VfioSparseArea>{{0x8000, 0x8000}});
  Build(std::move(f));
  EXPECT_THAT(device_->direct_pieces(0), ElementsAre(BarPiece{0x8000, 0x8000}));
}

// Issue 5's crashes (an interrupt taken where IF is 0) could come from a
// bogus message reaching KVM. Whenever VFIO is pointed at a vector's irqfd,
// that vector's route must already hold the message the guest finished
// writing, and it must be an interrupt: never a half-written one, never
// one written while the entry or the whole function was masked, never the
// all-zero message of an entry the guest never programmed or deactivated.
TEST_F(VfioPciDeviceTest, MsixNeverRoutesAnUnfinishedOrUnprogrammedMessage) {
  struct Live {
    uint32_t vector;
    std::optional<FakeMsiState::Message> route;  // when VFIO got the irqfd
    bool operator==(const Live&) const = default;
  };
  std::vector<Live> live;
  kernel_->on_set_irqs = [&](const VfioIrqSet& set) {
    if (set.index != VFIO_PCI_MSIX_IRQ_INDEX) return;
    for (uint32_t k = 0; k < set.eventfds.size(); ++k) {
      const uint32_t v = set.start + k;
      if (set.eventfds[k] == device_->parked_fd(v)) continue;
      auto log = MsixState(v).message_log();
      live.push_back({v, log.empty() ? std::nullopt : std::optional(log.back())});
    }
  };
  auto message = [&](uint32_t entry, uint32_t address, uint32_t data) {
    WriteTable(entry, 0, address);
    WriteTable(entry, 4, 0);
    WriteTable(entry, 8, data);
  };
  // Linux 6.1 msix_capability_init: enable with the function masked, write
  // each entry's (early-activation) message with the entry masked, mask
  // every entry, clear the function mask.
  Write(0xa2, 2, pci::kMsixControlEnable | pci::kMsixControlFunctionMask);
  for (uint32_t i = 0; i < 3; ++i) message(i, 0xfee00000, 0xef);
  for (uint32_t i = 0; i < 5; ++i) WriteTable(i, 12, 1);
  Write(0xa2, 2, pci::kMsixControlEnable);
  EXPECT_TRUE(live.empty());
  // request_irq: the real message, masked, then unmask (__pci_write_msi_msg
  // and pci_msix_unmask).
  for (uint32_t i = 0; i < 3; ++i) {
    message(i, 0xfee00000, 0x22 + i);
    WriteTable(i, 12, 0);
  }
  // An affinity change: mask, three dwords, unmask.
  WriteTable(0, 12, 1);
  WriteTable(0, 0, 0xfee01000);
  WriteTable(0, 8, 0x25);
  WriteTable(0, 12, 0);
  const uint32_t id = 0x08;
  EXPECT_EQ(live, (std::vector<Live>{{0, FakeMsiState::Message{0xfee00000, 0x22, id}},
                                     {1, FakeMsiState::Message{0xfee00000, 0x23, id}},
                                     {2, FakeMsiState::Message{0xfee00000, 0x24, id}},
                                     {0, FakeMsiState::Message{0xfee01000, 0x25, id}}}));
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(MsixState(i).message_log().size(), i == 0 ? 2u : 1u);
  live.clear();

  // The function mask parks every vector; an interrupt then waits in the
  // PBA and is delivered once when the mask clears.
  Write(0xa2, 2, pci::kMsixControlEnable | pci::kMsixControlFunctionMask);
  for (uint32_t i = 0; i < 5; ++i) {
    EXPECT_EQ(Irq(VFIO_PCI_MSIX_IRQ_INDEX).fds[i], device_->parked_fd(i)) << i;
  }
  uint64_t one = 1;
  ASSERT_EQ(::write(device_->parked_fd(1), &one, 8), 8);
  device_->DrainParked();
  EXPECT_EQ(MsixState(1).trigger_count(), 0);
  Write(0xa2, 2, pci::kMsixControlEnable);
  EXPECT_EQ(MsixState(1).trigger_count(), 1);
  live.clear();

  // free_irq (msi_domain_deactivate) leaves entry 2 masked with an all-zero
  // message. Unmasking it then, or unmasking entry 3 that was never
  // written, is not something Linux does; a guest that does must not get
  // vector 0 from the device: address 0 is no interrupt controller.
  WriteTable(2, 12, 1);
  message(2, 0, 0);
  WriteTable(2, 12, 0);
  WriteTable(3, 12, 0);
  EXPECT_TRUE(live.empty());
  EXPECT_EQ(MsixState(2).message_log().size(), 1u);
  EXPECT_TRUE(MsixState(3).message_log().empty());
  EXPECT_EQ(Irq(VFIO_PCI_MSIX_IRQ_INDEX).fds[2], device_->parked_fd(2));
  EXPECT_EQ(Irq(VFIO_PCI_MSIX_IRQ_INDEX).fds[3], device_->parked_fd(3));
  ASSERT_EQ(::write(device_->parked_fd(2), &one, 8), 8);
  ASSERT_EQ(::write(device_->parked_fd(3), &one, 8), 8);
  device_->DrainParked();
  EXPECT_EQ(MsixState(2).trigger_count(), 0);
  EXPECT_EQ(MsixState(3).trigger_count(), 0);
  // Reprogrammed properly, entry 2 delivers again.
  WriteTable(2, 12, 1);
  message(2, 0xfee00000, 0x24);
  WriteTable(2, 12, 0);
  EXPECT_EQ(live, (std::vector<Live>{{2, FakeMsiState::Message{0xfee00000, 0x24, id}}}));
}

TEST_F(VfioPciDeviceTest, BadAccessesAreHarmless) {
  EXPECT_EQ(Read(4095, 4), 0xffffffffu);
  EXPECT_EQ(Read(2, 3), 0xffffffu);
  Write(4094, 4, 0);
  uint8_t big[8] = {};
  device_->ReadBar(7, 0, big);
  device_->WriteBar(-1, 0, big);
  device_->ReadBar(3, 0x4000 - 4, {big, 4});
}

}  // namespace
}  // namespace skiff::vfio

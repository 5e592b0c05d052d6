// The expansion ROM of a passed-through PCI function (--device
// vfio=...,rom=on): the register (sizing, enable, address), where Skiff
// places it, and the device against the VFIO test double: hidden by
// default, decoding only with its enable bit and the memory bit, reads
// forwarded to VFIO's ROM region at the right offset and bounded.
#include <linux/vfio.h>

#include <numeric>

#include "devices/pci/pci_constants.h"
#include "devices/vfio/rom_bar.h"
#include "devices/vfio/vfio_container.h"
#include "devices/vfio/vfio_pci_device.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_vfio_kernel.h"
#include "tests/unit/pci_test_fakes.h"
#include "vmm/bus.h"

namespace skiff::vfio {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kWindowBase = 0xc0000000;
constexpr uint64_t kWindowSize = 0x10000000;

// ------------------------------------------------------------ register ---

TEST(RomBarSizeTest, RoundsUpToAPowerOfTwoOfAtLeastTwoKib) {
  EXPECT_EQ(*RomBarSize(1), 0x800u);
  EXPECT_EQ(*RomBarSize(0x800), 0x800u);
  EXPECT_EQ(*RomBarSize(0x801), 0x1000u);
  EXPECT_EQ(*RomBarSize(0x3000), 0x4000u);
  EXPECT_EQ(*RomBarSize(0x40000), 0x40000u);
  EXPECT_EQ(*RomBarSize(16u << 20), 16u << 20);
}

TEST(RomBarSizeTest, NoRomAndOversizedRomsAreRefused) {
  EXPECT_THAT(RomBarSize(0).status().message(), HasSubstr("no expansion ROM"));
  EXPECT_FALSE(RomBarSize((16u << 20) + 1).ok());
  EXPECT_FALSE(RomBarSize(uint64_t{1} << 40).ok());
}

TEST(PlaceRomBelowTest, TopDownNaturallyAligned) {
  EXPECT_EQ(PlaceRomBelow(kWindowBase, kWindowBase + kWindowSize, 0x40000), 0xcffc0000u);
  // The next one goes below, aligned to its own size.
  EXPECT_EQ(PlaceRomBelow(kWindowBase, 0xcffc0000, 0x100000), 0xcfe00000u);
  EXPECT_EQ(PlaceRomBelow(kWindowBase, 0xcffc0000, 0x800), 0xcffbf800u);
}

TEST(PlaceRomBelowTest, NoRoomIsNullopt) {
  EXPECT_EQ(PlaceRomBelow(kWindowBase, kWindowBase + 0x800, 0x1000), std::nullopt);
  EXPECT_EQ(PlaceRomBelow(kWindowBase, 0x800, 0x1000), std::nullopt);
  EXPECT_EQ(PlaceRomBelow(kWindowBase, kWindowBase + kWindowSize, 0x3000), std::nullopt);  // not 2^n
  EXPECT_EQ(PlaceRomBelow(kWindowBase, kWindowBase + kWindowSize, 0), std::nullopt);
}

TEST(RomBarTest, SizingReadsBackTheMaskWithTheEnableBit) {
  RomBar rom(0x40000);
  EXPECT_EQ(rom.Read(), 0u);
  rom.Write(0, 4, 0xffffffff);
  EXPECT_EQ(rom.Read(), 0xfffc0001u);  // bits 10-1 reserved, 17-11 below the size
  rom.Write(0, 4, 0xfffff800);  // Linux's PCI_ROM_ADDRESS_MASK
  EXPECT_EQ(rom.Read(), 0xfffc0000u);
  RomBar small(0x800);
  small.Write(0, 4, 0xffffffff);
  EXPECT_EQ(small.Read(), 0xfffff801u);
}

TEST(RomBarTest, ByteWritesMergeAndUnwritableBitsStayZero) {
  RomBar rom(0x40000);
  rom.Write(3, 1, 0xc0);
  rom.Write(2, 1, 0x1f);  // bits 17-16 of the 0x1f are below the size: dropped
  EXPECT_EQ(rom.Read(), 0xc01c0000u);
  rom.Write(0, 2, 0x07ff);  // enable + reserved bits
  EXPECT_EQ(rom.Read(), 0xc01c0001u);
  rom.Write(1, 2, 0);  // bits 23-8 cleared; enable kept
  EXPECT_EQ(rom.Read(), 0xc0000001u);
  rom.Write(2, 4, 0xffffffff);  // crosses the register: ignored
  rom.Write(4, 1, 0xff);
  EXPECT_EQ(rom.Read(), 0xc0000001u);
}

TEST(RomBarTest, DecodesOnlyWithEnableMemoryAndAnAddress) {
  RomBar rom(0x40000);
  EXPECT_EQ(rom.Decoding(true), std::nullopt);
  rom.Write(0, 4, 0xc0100000);
  EXPECT_EQ(rom.Decoding(true), std::nullopt);  // enable bit clear
  rom.Write(0, 4, 0xc0100001);
  EXPECT_EQ(rom.Decoding(false), std::nullopt);  // memory decode off
  EXPECT_EQ(rom.Decoding(true), 0xc0100000u);
  rom.Write(0, 4, 0x00000001);
  EXPECT_EQ(rom.Decoding(true), std::nullopt);  // no address
  rom.Write(0, 4, 0xffffffff);
  EXPECT_EQ(rom.Decoding(true), std::nullopt);  // mid-sizing
}

// -------------------------------------------------------------- device ---

class VfioRomTest : public ::testing::Test {
 protected:
  // An e1000e-like function whose ROM region is `region_size` bytes and
  // holds `image_size` bytes of image (0x55 0xaa, then i & 0xff).
  static FakePciFunction WithRom(uint64_t region_size, size_t image_size) {
    FakePciFunction f = FakePciFunction::E1000e();
    f.regions[VFIO_PCI_ROM_REGION_INDEX].size = region_size;
    f.rom_image.resize(image_size);
    std::iota(f.rom_image.begin(), f.rom_image.end(), 0);
    if (image_size >= 2) {
      f.rom_image[0] = 0x55;
      f.rom_image[1] = 0xaa;
    }
    return f;
  }

  absl::StatusOr<std::shared_ptr<VfioPciDevice>> Open(
      FakePciFunction function, bool rom,
      std::shared_ptr<const std::vector<uint8_t>> image = nullptr) {
    device_.reset();
    kernel_ = std::make_shared<FakeVfioKernel>();
    fn_ = std::make_shared<FakePciFunction>(std::move(function));
    kernel_->groups[1].devices = {fn_};
    auto container = VfioContainer::Open(kernel_);
    if (!container.ok()) return container.status();
    auto opened =
        (*container)->OpenDevice(HostPciDevice{fn_->name, 1, {{fn_->name, "vfio-pci"}}, {}});
    if (!opened.ok()) return opened.status();
    VfioPciEnv env;
    env.msi = &msi_;
    if (rom) env.rom = VfioRomEnv{&bus_, kWindowBase, kWindowSize, std::move(image)};
    return VfioPciDevice::Create(*container, *std::move(opened), env);
  }
  void Build(FakePciFunction function, bool rom = true) {
    auto dev = Open(std::move(function), rom);
    ASSERT_TRUE(dev.ok()) << dev.status();
    device_ = *dev;
  }
  uint32_t Read(uint32_t offset, uint32_t size) { return device_->ReadConfig(offset, size); }
  void Write(uint32_t offset, uint32_t size, uint32_t value) {
    device_->WriteConfig(offset, size, value);
  }
  // What the guest reads at `address` on the MMIO bus; nullopt: nothing there.
  std::optional<uint32_t> BusRead32(uint64_t address) {
    uint8_t b[4];
    if (!bus_.Read(address, b)) return std::nullopt;
    return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
  }
  void EnableAt(uint32_t address) {
    Write(pci::kCommand, 2, pci::kCommandMemory);
    Write(pci::kExpansionRom, 4, address | kRomEnable);
  }

  Bus bus_{"MMIO"};  // outlives the device, as the machine's does
  FakeMsiAllocator msi_;
  std::shared_ptr<FakeVfioKernel> kernel_;
  std::shared_ptr<FakePciFunction> fn_;
  std::shared_ptr<VfioPciDevice> device_;
};

TEST_F(VfioRomTest, HiddenByDefault) {
  Build(WithRom(0x40000, 0x8000), /*rom=*/false);
  EXPECT_EQ(device_->rom_size(), 0u);
  EXPECT_EQ(Read(pci::kExpansionRom, 4), 0u);
  Write(pci::kExpansionRom, 4, 0xffffffff);
  EXPECT_EQ(Read(pci::kExpansionRom, 4), 0u);
  EnableAt(0xc0100000);
  EXPECT_EQ(Read(pci::kExpansionRom, 4), 0u);
  EXPECT_EQ(device_->rom_mapped_address(), std::nullopt);
  EXPECT_TRUE(bus_.Entries().empty());
  uint8_t b[4];
  device_->ReadRom(0, b);
  EXPECT_EQ(b[0], 0xff);
  EXPECT_EQ(fn_->rom_reads, 0);
  // Nor does the register reach the hardware.
  for (const auto& [offset, bytes] : fn_->config_writes) EXPECT_NE(offset, pci::kExpansionRom);
}

TEST_F(VfioRomTest, SizingMaskComesFromVfiosRomRegion) {
  Build(WithRom(0x40000, 0x8000));
  EXPECT_EQ(device_->rom_size(), 0x40000u);
  EXPECT_EQ(Read(pci::kExpansionRom, 4), 0u);
  Write(pci::kExpansionRom, 4, 0xffffffff);
  EXPECT_EQ(Read(pci::kExpansionRom, 4), 0xfffc0001u);
  Write(pci::kExpansionRom, 4, 0xfffff800);
  EXPECT_EQ(Read(pci::kExpansionRom, 4), 0xfffc0000u);
  EXPECT_EQ(Read(pci::kExpansionRom + 2, 2), 0xfffcu);
  Write(pci::kExpansionRom, 4, 0xc0100000);
  EXPECT_EQ(Read(pci::kExpansionRom, 4), 0xc0100000u);
  for (const auto& [offset, bytes] : fn_->config_writes) EXPECT_NE(offset, pci::kExpansionRom);

  // A region that is not a power of two gets the next one.
  Build(WithRom(0x3000, 0x3000));
  Write(pci::kExpansionRom, 4, 0xfffff800);
  EXPECT_EQ(Read(pci::kExpansionRom, 4), 0xffffc000u);
}

TEST_F(VfioRomTest, DecodesOnlyWithTheEnableBitAndTheMemoryBit) {
  Build(WithRom(0x40000, 0x8000));
  Write(pci::kExpansionRom, 4, 0xc0100000);
  Write(pci::kCommand, 2, pci::kCommandMemory);
  EXPECT_EQ(device_->rom_mapped_address(), std::nullopt);  // enable bit clear
  EXPECT_EQ(BusRead32(0xc0100000), std::nullopt);
  Write(pci::kExpansionRom, 1, 0x01);
  EXPECT_EQ(device_->rom_mapped_address(), 0xc0100000u);
  EXPECT_EQ(BusRead32(0xc0100000), 0x0302aa55u);
  Write(pci::kCommand, 2, 0);  // memory off
  EXPECT_EQ(device_->rom_mapped_address(), std::nullopt);
  EXPECT_EQ(BusRead32(0xc0100000), std::nullopt);
  Write(pci::kCommand, 2, pci::kCommandMemory);
  EXPECT_EQ(BusRead32(0xc0100000), 0x0302aa55u);
  // Moved while decoding: the window follows.
  Write(pci::kExpansionRom, 4, 0xc0200001);
  EXPECT_EQ(BusRead32(0xc0100000), std::nullopt);
  EXPECT_EQ(BusRead32(0xc0200004), 0x07060504u);
  Write(pci::kExpansionRom, 4, 0xc0200000);  // enable off
  EXPECT_EQ(BusRead32(0xc0200000), std::nullopt);
  EXPECT_TRUE(bus_.Entries().empty());
  // Sizing with decoding on maps nothing at the mask.
  Write(pci::kExpansionRom, 4, 0xffffffff);
  EXPECT_TRUE(bus_.Entries().empty());
}

TEST_F(VfioRomTest, ReadsAreForwardedAtTheRomRegionOffset) {
  Build(WithRom(0x40000, 0x8000));
  EnableAt(0xc0100000);
  uint8_t b[8];
  device_->ReadRom(0x1234, b);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(b[i], (0x1234 + i) & 0xff) << i;
  EXPECT_GT(fn_->rom_reads, 0);
  // Through the bus, each width.
  uint8_t one;
  ASSERT_TRUE(bus_.Read(0xc0100000 + 0x7ffe, {&one, 1}));
  EXPECT_EQ(one, 0xfe);
  EXPECT_EQ(BusRead32(0xc0100000 + 0x100), 0x03020100u);
  // Writes go nowhere: a ROM.
  const uint8_t junk[4] = {1, 2, 3, 4};
  EXPECT_TRUE(bus_.Write(0xc0100000, junk));
  EXPECT_EQ(BusRead32(0xc0100000), 0x0302aa55u);
}

TEST_F(VfioRomTest, ReadsPastTheImageRegionOrBarReadAllOnes) {
  // Region 0x3000 (BAR 0x4000), image 0x2000.
  Build(WithRom(0x3000, 0x2000));
  EnableAt(0xc0100000);
  uint8_t b[4];
  device_->ReadRom(0x1ffe, b);  // image, then the region past the image
  EXPECT_EQ(b[0], 0xfe);
  EXPECT_EQ(b[1], 0xff);
  EXPECT_EQ(b[2], 0xff);
  EXPECT_EQ(b[3], 0xff);
  const int reads = fn_->rom_reads;
  device_->ReadRom(0x3800, b);  // past the region, inside the BAR: no pread
  EXPECT_EQ(b[0] & b[1] & b[2] & b[3], 0xff);
  EXPECT_EQ(fn_->rom_reads, reads);
  // Crossing the region's end: the part inside is read, the rest 0xff.
  fn_->rom_image.assign(0x3000, 0x11);
  device_->ReadRom(0x2ffe, b);
  EXPECT_EQ(b[0], 0x11);
  EXPECT_EQ(b[1], 0x11);
  EXPECT_EQ(b[2], 0xff);
  EXPECT_EQ(b[3], 0xff);
  // Outside the BAR (never from the bus, which bounds the window) or
  // overflowing: all-ones, no pread.
  const int before = fn_->rom_reads;
  device_->ReadRom(0x3ffe, b);
  device_->ReadRom(0x4000, b);
  device_->ReadRom(~uint64_t{0} - 1, b);
  EXPECT_EQ(b[0] & b[1] & b[2] & b[3], 0xff);
  EXPECT_EQ(fn_->rom_reads, before);
  EXPECT_EQ(BusRead32(0xc0100000 + 0x3ffe), std::nullopt);  // crosses the window
}

TEST_F(VfioRomTest, RomOutsideThePciWindowIsNotMapped) {
  Build(WithRom(0x40000, 0x8000));
  EnableAt(0x80000000);  // RAM, on x86
  EXPECT_EQ(device_->rom_mapped_address(), std::nullopt);
  EXPECT_TRUE(bus_.Entries().empty());
  EnableAt(0xcffc0000);  // the last ROM-sized piece of the window
  EXPECT_EQ(device_->rom_mapped_address(), 0xcffc0000u);
}

TEST_F(VfioRomTest, RomOverlappingARegistrationStaysUnmapped) {
  Build(WithRom(0x40000, 0x8000));
  struct Other : BusDevice {
    void Read(uint64_t, std::span<uint8_t> d) override { std::fill(d.begin(), d.end(), 0x42); }
    void Write(uint64_t, std::span<const uint8_t>) override {}
  };
  ASSERT_TRUE(bus_.Register(0xc0100000, 0x1000, std::make_shared<Other>(), "other").ok());
  EnableAt(0xc0100000);
  EXPECT_EQ(device_->rom_mapped_address(), std::nullopt);
  EXPECT_EQ(BusRead32(0xc0100000), 0x42424242u);
  ASSERT_TRUE(bus_.Unregister(0xc0100000).ok());
  Write(pci::kExpansionRom, 4, 0xc0100001);  // the next write tries again
  EXPECT_EQ(device_->rom_mapped_address(), 0xc0100000u);
}

TEST_F(VfioRomTest, TeardownRemovesTheRomWindow) {
  Build(WithRom(0x40000, 0x8000));
  EnableAt(0xc0100000);
  ASSERT_EQ(bus_.Entries().size(), 1u);
  device_.reset();
  EXPECT_TRUE(bus_.Entries().empty());
}

TEST_F(VfioRomTest, RomOnWithoutARomIsOneErrorNamingTheDevice) {
  auto dev = Open(WithRom(0, 0), /*rom=*/true);
  ASSERT_FALSE(dev.ok());
  EXPECT_THAT(dev.status().message(), HasSubstr("0000:00:01.0"));
  EXPECT_THAT(dev.status().message(), HasSubstr("no expansion ROM"));
  // Without rom=on the same device is fine.
  EXPECT_TRUE(Open(WithRom(0, 0), /*rom=*/false).ok());
}

// rom=FILE: the image is the ROM, even on a device without one; reads never
// reach the device.
TEST_F(VfioRomTest, ImageFromAFileIsServedInsteadOfTheDevices) {
  auto image = std::make_shared<std::vector<uint8_t>>(0x1800, 0x11);
  (*image)[0] = 0x55;
  (*image)[1] = 0xaa;
  auto dev = Open(WithRom(0, 0), /*rom=*/true, image);
  ASSERT_TRUE(dev.ok()) << dev.status();
  device_ = *dev;
  EXPECT_EQ(device_->rom_size(), 0x2000u);
  Write(pci::kExpansionRom, 4, 0xffffffff);
  EXPECT_EQ(Read(pci::kExpansionRom, 4), 0xffffe001u);
  EnableAt(0xc0100000);
  EXPECT_EQ(BusRead32(0xc0100000), 0x1111aa55u);
  EXPECT_EQ(BusRead32(0xc01017fe), 0xffff1111u);  // the image ends at 0x1800
  EXPECT_EQ(BusRead32(0xc0101ffc), 0xffffffffu);
  EXPECT_EQ(BusRead32(0xc0101ffe), std::nullopt);  // crosses the window
  uint8_t b[4];
  device_->ReadRom(0x1ffe, b);
  EXPECT_EQ(b[0] & b[1] & b[2] & b[3], 0xff);
  EXPECT_EQ(fn_->rom_reads, 0);
  // Too big for a ROM.
  EXPECT_FALSE(Open(WithRom(0x40000, 0), true,
                    std::make_shared<std::vector<uint8_t>>((16u << 20) + 1))
                   .ok());
}

TEST_F(VfioRomTest, OversizedRomIsRefused) {
  auto dev = Open(WithRom(32u << 20, 0x100), /*rom=*/true);
  ASSERT_FALSE(dev.ok());
  EXPECT_THAT(dev.status().message(), HasSubstr("0000:00:01.0"));
}

}  // namespace
}  // namespace skiff::vfio

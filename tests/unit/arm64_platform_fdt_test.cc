// The device tree Skiff generates for arm64 guests, parsed back with libfdt:
// every node and property the guest kernel relies on, with the cells where
// the bindings want them, and the --dtb handling.
#include "arch/arm64/platform_fdt.h"

#include <libfdt.h>

#include <algorithm>
#include <iterator>

#include "absl/strings/str_format.h"
#include "arch/arm64/fdt_writer.h"
#include "arch/arm64/layout.h"
#include "devices/pci/intx_router.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/fdt_test_util.h"

namespace skiff::arm64 {
namespace {

using ::skiff::testing::FdtCells;
using ::skiff::testing::FdtHasNode;
using ::skiff::testing::FdtProp;
using ::skiff::testing::FdtString;
using ::skiff::testing::FdtStrings;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

std::vector<uint32_t> Reg64(uint64_t base, uint64_t size) {
  return {static_cast<uint32_t>(base >> 32), static_cast<uint32_t>(base),
          static_cast<uint32_t>(size >> 32), static_cast<uint32_t>(size)};
}

PlatformDescription FullPlatform() {
  PlatformDescription p;
  p.num_cpus = 2;
  p.ram_size = 256ull << 20;
  p.gic = GicKind::kV3;
  p.msi_controller = true;
  p.virtio_mmio = {{kVirtioMmioBase, kVirtioMmioSlotSize, kVirtioMmioSpiBase},
                   {kVirtioMmioBase + kVirtioMmioSlotSize, kVirtioMmioSlotSize,
                    kVirtioMmioSpiBase + 1}};
  p.pci = true;
  p.bootargs = "console=ttyS0 panic=-1";
  p.initrd = InitrdRange{0x44000000, 0x44123456};
  return p;
}

std::vector<uint8_t> Build(const PlatformDescription& p) {
  auto blob = BuildPlatformFdt(p);
  EXPECT_TRUE(blob.ok()) << blob.status();
  if (!blob.ok()) return {};
  EXPECT_EQ(fdt_check_full(blob->data(), blob->size()), 0);
  return *blob;
}

const std::string kGic = "/interrupt-controller@8000000";
const std::string kIts = kGic + "/msi-controller@8040000";
const std::string kPci = "/pcie@30000000";

TEST(Arm64PlatformFdtTest, RootAndChosen) {
  std::vector<uint8_t> dtb = Build(FullPlatform());
  EXPECT_THAT(FdtCells(dtb, "/", "#address-cells"), ElementsAre(2u));
  EXPECT_THAT(FdtCells(dtb, "/", "#size-cells"), ElementsAre(2u));
  EXPECT_THAT(FdtCells(dtb, "/", "interrupt-parent"), ElementsAre(kGicPhandle));
  EXPECT_EQ(FdtString(dtb, "/chosen", "bootargs"), "console=ttyS0 panic=-1");
  EXPECT_EQ(FdtString(dtb, "/chosen", "stdout-path"), "serial0:115200n8");
  EXPECT_EQ(FdtString(dtb, "/aliases", "serial0"), "/serial@b000000");
  EXPECT_THAT(FdtCells(dtb, "/chosen", "linux,initrd-start"), ElementsAre(0u, 0x44000000u));
  EXPECT_THAT(FdtCells(dtb, "/chosen", "linux,initrd-end"), ElementsAre(0u, 0x44123456u));
}

TEST(Arm64PlatformFdtTest, NoInitrdNoInitrdProperties) {
  PlatformDescription p = FullPlatform();
  p.initrd.reset();
  std::vector<uint8_t> dtb = Build(p);
  EXPECT_FALSE(FdtProp(dtb, "/chosen", "linux,initrd-start").has_value());
  EXPECT_FALSE(FdtProp(dtb, "/chosen", "linux,initrd-end").has_value());
}

TEST(Arm64PlatformFdtTest, MemoryNode) {
  PlatformDescription p = FullPlatform();
  p.ram_size = 6ull << 30;  // above 4 GiB: both cells matter
  std::vector<uint8_t> dtb = Build(p);
  EXPECT_EQ(FdtString(dtb, "/memory@40000000", "device_type"), "memory");
  EXPECT_THAT(FdtCells(dtb, "/memory@40000000", "reg"),
              ElementsAreArray(Reg64(0x40000000, 6ull << 30)));
}

TEST(Arm64PlatformFdtTest, CpusUsePsciAndMpidrs) {
  PlatformDescription p = FullPlatform();
  p.num_cpus = 18;  // past 16, Aff1 counts
  std::vector<uint8_t> dtb = Build(p);
  EXPECT_THAT(FdtCells(dtb, "/cpus", "#address-cells"), ElementsAre(1u));
  EXPECT_THAT(FdtCells(dtb, "/cpus", "#size-cells"), ElementsAre(0u));
  int count = 0;
  int cpus = fdt_path_offset(dtb.data(), "/cpus");
  int node;
  fdt_for_each_subnode(node, dtb.data(), cpus) ++count;
  EXPECT_EQ(count, 18);
  EXPECT_THAT(FdtCells(dtb, "/cpus/cpu@0", "reg"), ElementsAre(0u));
  EXPECT_THAT(FdtCells(dtb, "/cpus/cpu@f", "reg"), ElementsAre(15u));
  EXPECT_THAT(FdtCells(dtb, "/cpus/cpu@100", "reg"), ElementsAre(0x100u));  // vCPU 16
  EXPECT_THAT(FdtCells(dtb, "/cpus/cpu@101", "reg"), ElementsAre(0x101u));  // vCPU 17
  EXPECT_EQ(FdtString(dtb, "/cpus/cpu@101", "enable-method"), "psci");
  EXPECT_EQ(FdtString(dtb, "/cpus/cpu@0", "device_type"), "cpu");
  EXPECT_THAT(FdtStrings(dtb, "/psci", "compatible"), ElementsAre("arm,psci-1.0", "arm,psci-0.2"));
  EXPECT_EQ(FdtString(dtb, "/psci", "method"), "hvc");
}

TEST(Arm64PlatformFdtTest, MpidrMatchesKvmResetValue) {
  EXPECT_EQ(VcpuMpidr(0), 0u);
  EXPECT_EQ(VcpuMpidr(15), 15u);
  EXPECT_EQ(VcpuMpidr(16), 0x100u);
  EXPECT_EQ(VcpuMpidr(255), 0xf0fu);
}

TEST(Arm64PlatformFdtTest, TimerPpis) {
  std::vector<uint8_t> dtb = Build(FullPlatform());
  EXPECT_EQ(FdtString(dtb, "/timer", "compatible"), "arm,armv8-timer");
  EXPECT_THAT(FdtCells(dtb, "/timer", "interrupts"),
              ElementsAre(1u, 13u, 4u, 1u, 14u, 4u, 1u, 11u, 4u, 1u, 10u, 4u));
  EXPECT_TRUE(FdtProp(dtb, "/timer", "always-on").has_value());
}

TEST(Arm64PlatformFdtTest, GicV3WithIts) {
  PlatformDescription p = FullPlatform();
  p.num_cpus = 3;
  std::vector<uint8_t> dtb = Build(p);
  EXPECT_EQ(FdtString(dtb, kGic, "compatible"), "arm,gic-v3");
  EXPECT_TRUE(FdtProp(dtb, kGic, "interrupt-controller").has_value());
  EXPECT_THAT(FdtCells(dtb, kGic, "#interrupt-cells"), ElementsAre(3u));
  EXPECT_THAT(FdtCells(dtb, kGic, "phandle"), ElementsAre(kGicPhandle));
  std::vector<uint32_t> reg = Reg64(kGicDistBase, kGicDistSize);
  std::vector<uint32_t> redist = Reg64(kGicRedistBase, 3 * kGicRedistStride);
  reg.insert(reg.end(), redist.begin(), redist.end());
  EXPECT_THAT(FdtCells(dtb, kGic, "reg"), ElementsAreArray(reg));
  EXPECT_EQ(FdtString(dtb, kIts, "compatible"), "arm,gic-v3-its");
  EXPECT_TRUE(FdtProp(dtb, kIts, "msi-controller").has_value());
  EXPECT_THAT(FdtCells(dtb, kIts, "#msi-cells"), ElementsAre(1u));
  EXPECT_THAT(FdtCells(dtb, kIts, "phandle"), ElementsAre(kMsiPhandle));
  EXPECT_THAT(FdtCells(dtb, kIts, "reg"), ElementsAreArray(Reg64(kGicItsBase, kGicItsSize)));
}

TEST(Arm64PlatformFdtTest, GicV2FallbackWithV2m) {
  PlatformDescription p = FullPlatform();
  p.gic = GicKind::kV2;
  std::vector<uint8_t> dtb = Build(p);
  EXPECT_EQ(FdtString(dtb, kGic, "compatible"), "arm,cortex-a15-gic");
  std::vector<uint32_t> reg = Reg64(kGicDistBase, kGicV2DistSize);
  std::vector<uint32_t> cpu = Reg64(kGicCpuBase, kGicCpuSize);
  reg.insert(reg.end(), cpu.begin(), cpu.end());
  EXPECT_THAT(FdtCells(dtb, kGic, "reg"), ElementsAreArray(reg));
  const std::string v2m = kGic + "/v2m@8020000";
  EXPECT_EQ(FdtString(dtb, v2m, "compatible"), "arm,gic-v2m-frame");
  EXPECT_THAT(FdtCells(dtb, v2m, "arm,msi-base-spi"), ElementsAre(32 + kV2mSpiBase));
  EXPECT_THAT(FdtCells(dtb, v2m, "arm,msi-num-spis"), ElementsAre(kV2mSpiCount));
  EXPECT_THAT(FdtCells(dtb, kPci, "msi-parent"), ElementsAre(kMsiPhandle));
  EXPECT_FALSE(FdtProp(dtb, kPci, "msi-map").has_value());
  // GICv2 PPIs name their target CPUs (2 vCPUs: mask 0b11).
  EXPECT_THAT(FdtCells(dtb, "/timer", "interrupts")[2], 0x304u);
}

TEST(Arm64PlatformFdtTest, NoMsiControllerMeansNoMsiProperties) {
  PlatformDescription p = FullPlatform();
  p.msi_controller = false;
  std::vector<uint8_t> dtb = Build(p);
  EXPECT_FALSE(FdtHasNode(dtb, kIts));
  EXPECT_FALSE(FdtProp(dtb, kPci, "msi-map").has_value());
  EXPECT_FALSE(FdtProp(dtb, kPci, "msi-parent").has_value());
}

TEST(Arm64PlatformFdtTest, UartRtcExitAndPvpanic) {
  std::vector<uint8_t> dtb = Build(FullPlatform());
  const std::string uart = "/serial@b000000";
  EXPECT_EQ(FdtString(dtb, uart, "compatible"), "ns16550a");
  EXPECT_THAT(FdtCells(dtb, uart, "reg"), ElementsAreArray(Reg64(kUartBase, kUartSize)));
  EXPECT_THAT(FdtCells(dtb, uart, "interrupts"), ElementsAre(0u, kUartSpi, 4u));
  EXPECT_THAT(FdtCells(dtb, uart, "clock-frequency"), ElementsAre(kUartClockHz));
  EXPECT_THAT(FdtCells(dtb, uart, "reg-shift"), ElementsAre(0u));
  EXPECT_THAT(FdtCells(dtb, uart, "reg-io-width"), ElementsAre(1u));

  const std::string rtc = "/rtc@b010000";
  EXPECT_THAT(FdtStrings(dtb, rtc, "compatible"), ElementsAre("arm,pl031", "arm,primecell"));
  EXPECT_THAT(FdtCells(dtb, rtc, "reg"), ElementsAreArray(Reg64(kRtcBase, kRtcSize)));
  EXPECT_THAT(FdtCells(dtb, rtc, "interrupts"), ElementsAre(0u, kRtcSpi, 4u));
  EXPECT_THAT(FdtCells(dtb, rtc, "clocks"), ElementsAre(kApbClockPhandle));
  EXPECT_EQ(FdtString(dtb, rtc, "clock-names"), "apb_pclk");
  EXPECT_THAT(FdtCells(dtb, "/apb-pclk", "phandle"), ElementsAre(kApbClockPhandle));
  EXPECT_EQ(FdtString(dtb, "/apb-pclk", "compatible"), "fixed-clock");
  EXPECT_THAT(FdtCells(dtb, "/apb-pclk", "#clock-cells"), ElementsAre(0u));

  EXPECT_EQ(FdtString(dtb, "/exit-device@b020000", "compatible"), "skiff,exit-device");
  EXPECT_THAT(FdtCells(dtb, "/exit-device@b020000", "reg"),
              ElementsAreArray(Reg64(kExitDeviceBase, 4)));
  EXPECT_EQ(FdtString(dtb, "/pvpanic@b030000", "compatible"), "qemu,pvpanic-mmio");
  EXPECT_THAT(FdtCells(dtb, "/pvpanic@b030000", "reg"), ElementsAreArray(Reg64(kPvpanicBase, 2)));
}

// The power key: a PL061 the AMBA bus can probe (PrimeCell, APB clock), a
// GPIO controller with an interrupt, and gpio-keys' KEY_POWER on the line
// the control socket's shutdown raises.
TEST(Arm64PlatformFdtTest, Pl061AndGpioKeysPowerKey) {
  std::vector<uint8_t> dtb = Build(FullPlatform());
  const std::string gpio = "/gpio@b040000";
  EXPECT_THAT(FdtStrings(dtb, gpio, "compatible"), ElementsAre("arm,pl061", "arm,primecell"));
  EXPECT_THAT(FdtCells(dtb, gpio, "reg"), ElementsAreArray(Reg64(kGpioBase, kGpioSize)));
  EXPECT_THAT(FdtCells(dtb, gpio, "interrupts"), ElementsAre(0u, kGpioSpi, 4u));
  EXPECT_TRUE(FdtProp(dtb, gpio, "gpio-controller").has_value());
  EXPECT_TRUE(FdtProp(dtb, gpio, "gpio-controller")->empty());
  EXPECT_THAT(FdtCells(dtb, gpio, "#gpio-cells"), ElementsAre(2u));
  EXPECT_THAT(FdtCells(dtb, gpio, "phandle"), ElementsAre(kGpioPhandle));
  EXPECT_THAT(FdtCells(dtb, gpio, "clocks"), ElementsAre(kApbClockPhandle));
  EXPECT_EQ(FdtString(dtb, gpio, "clock-names"), "apb_pclk");
  std::vector<std::string> names = FdtStrings(dtb, gpio, "gpio-line-names");
  ASSERT_EQ(names.size(), kGpioLines);
  for (uint32_t line = 0; line < kGpioLines; ++line) {
    EXPECT_EQ(names[line], line == kPowerKeyGpioLine ? "power-button" : "") << line;
  }

  EXPECT_EQ(FdtString(dtb, "/gpio-keys", "compatible"), "gpio-keys");
  const std::string key = "/gpio-keys/power-button";
  EXPECT_THAT(FdtCells(dtb, key, "linux,code"), ElementsAre(116u));  // KEY_POWER
  // <&gpio line GPIO_ACTIVE_HIGH>: the phandle must name the PL061.
  EXPECT_THAT(FdtCells(dtb, key, "gpios"), ElementsAre(kGpioPhandle, kPowerKeyGpioLine, 0u));
  EXPECT_EQ(fdt_node_offset_by_phandle(dtb.data(), kGpioPhandle),
            fdt_path_offset(dtb.data(), gpio.c_str()));
  EXPECT_EQ(FdtString(dtb, key, "label"), "Power Button");
}

TEST(Arm64PlatformFdtTest, PhandlesAreUnique) {
  std::vector<uint8_t> dtb = Build(FullPlatform());
  std::vector<uint32_t> seen;
  for (int node = fdt_next_node(dtb.data(), -1, nullptr); node >= 0;
       node = fdt_next_node(dtb.data(), node, nullptr)) {
    if (uint32_t phandle = fdt_get_phandle(dtb.data(), node); phandle != 0) {
      EXPECT_THAT(seen, ::testing::Not(::testing::Contains(phandle)));
      seen.push_back(phandle);
    }
  }
  EXPECT_THAT(seen, ::testing::UnorderedElementsAre(kGicPhandle, kMsiPhandle, kApbClockPhandle,
                                                    kGpioPhandle));
}

TEST(Arm64PlatformFdtTest, OneVirtioMmioNodePerDevice) {
  std::vector<uint8_t> dtb = Build(FullPlatform());
  const std::string first = "/virtio_mmio@c000000";
  const std::string second = "/virtio_mmio@c001000";
  EXPECT_EQ(FdtString(dtb, first, "compatible"), "virtio,mmio");
  EXPECT_THAT(FdtCells(dtb, first, "reg"),
              ElementsAreArray(Reg64(kVirtioMmioBase, kVirtioMmioSlotSize)));
  EXPECT_THAT(FdtCells(dtb, first, "interrupts"), ElementsAre(0u, kVirtioMmioSpiBase, 4u));
  EXPECT_TRUE(FdtProp(dtb, first, "dma-coherent").has_value());
  EXPECT_THAT(FdtCells(dtb, second, "interrupts"), ElementsAre(0u, kVirtioMmioSpiBase + 1, 4u));
  EXPECT_FALSE(FdtHasNode(dtb, "/virtio_mmio@c002000"));
}

TEST(Arm64PlatformFdtTest, PcieHostBridge) {
  std::vector<uint8_t> dtb = Build(FullPlatform());
  EXPECT_EQ(FdtString(dtb, kPci, "compatible"), "pci-host-ecam-generic");
  EXPECT_EQ(FdtString(dtb, kPci, "device_type"), "pci");
  EXPECT_THAT(FdtCells(dtb, kPci, "#address-cells"), ElementsAre(3u));
  EXPECT_THAT(FdtCells(dtb, kPci, "#size-cells"), ElementsAre(2u));
  EXPECT_THAT(FdtCells(dtb, kPci, "#interrupt-cells"), ElementsAre(1u));
  EXPECT_THAT(FdtCells(dtb, kPci, "bus-range"), ElementsAre(0u, 255u));
  EXPECT_THAT(FdtCells(dtb, kPci, "reg"), ElementsAreArray(Reg64(kPciEcamBase, kPciEcamSize)));
  // Two windows of (space, PCI address, CPU address, size): 32-bit memory
  // below 4 GiB, 64-bit memory (space code 0x03) at 512 GiB.
  EXPECT_THAT(FdtCells(dtb, kPci, "ranges"),
              ElementsAre(0x02000000u, 0u, kPciMmio32Base, 0u, kPciMmio32Base, 0u,
                          kPciMmio32Size,  //
                          0x03000000u, 0x80u, 0u, 0x80u, 0u, 0x80u, 0u));
  EXPECT_THAT(FdtCells(dtb, kPci, "msi-map"), ElementsAre(0u, kMsiPhandle, 0u, 0x10000u));
  EXPECT_TRUE(FdtProp(dtb, kPci, "dma-coherent").has_value());
  EXPECT_THAT(FdtCells(dtb, kPci, "interrupt-map-mask"), ElementsAre(0x1800u, 0u, 0u, 7u));
  // 16 entries of 10 cells: every (slot mod 4, pin) to the swizzled SPI.
  std::vector<uint32_t> map = FdtCells(dtb, kPci, "interrupt-map");
  ASSERT_EQ(map.size(), 160u);
  for (size_t e = 0; e < 16; ++e) {
    const uint32_t* c = &map[e * 10];
    const uint8_t slot = static_cast<uint8_t>(c[0] >> 11);
    const uint8_t pin = static_cast<uint8_t>(c[3]);
    ASSERT_LT(slot, 4);
    ASSERT_GE(pin, 1);
    ASSERT_LE(pin, 4);
    EXPECT_EQ(c[1], 0u);
    EXPECT_EQ(c[2], 0u);
    EXPECT_EQ(c[4], kGicPhandle);
    EXPECT_EQ(c[5], 0u);
    EXPECT_EQ(c[6], 0u);
    EXPECT_EQ(c[7], 0u);  // GIC_SPI
    EXPECT_EQ(c[8], kPciIntxSpiBase + static_cast<uint32_t>(pci::IntxSwizzle(slot, pin)));
    EXPECT_EQ(c[9], 4u);  // level high
  }
}

TEST(Arm64PlatformFdtTest, NoPciNoHostBridge) {
  PlatformDescription p = FullPlatform();
  p.pci = false;
  EXPECT_FALSE(FdtHasNode(Build(p), kPci));
}

// Every reg of every node, in root address space (the GIC's child and the
// root use 2+2 cells), must not overlap any other, nor RAM.
TEST(Arm64PlatformFdtTest, NoTwoRegionsOverlap) {
  std::vector<uint8_t> dtb = Build(FullPlatform());
  struct Range {
    std::string node;
    uint64_t base, size;
  };
  std::vector<Range> ranges;
  for (const std::string& path :
       {kGic, kIts, std::string("/serial@b000000"), std::string("/rtc@b010000"),
        std::string("/exit-device@b020000"), std::string("/pvpanic@b030000"),
        std::string("/gpio@b040000"),
        std::string("/virtio_mmio@c000000"), std::string("/virtio_mmio@c001000"), kPci,
        std::string("/memory@40000000")}) {
    std::vector<uint32_t> reg = FdtCells(dtb, path, "reg");
    ASSERT_FALSE(reg.empty()) << path;
    ASSERT_EQ(reg.size() % 4, 0u) << path;
    for (size_t i = 0; i < reg.size(); i += 4) {
      ranges.push_back({path, uint64_t{reg[i]} << 32 | reg[i + 1],
                        uint64_t{reg[i + 2]} << 32 | reg[i + 3]});
    }
  }
  std::vector<uint32_t> pci_ranges = FdtCells(dtb, kPci, "ranges");
  ranges.push_back({"pci window", uint64_t{pci_ranges[3]} << 32 | pci_ranges[4],
                    uint64_t{pci_ranges[5]} << 32 | pci_ranges[6]});
  for (size_t i = 0; i < ranges.size(); ++i) {
    for (size_t j = i + 1; j < ranges.size(); ++j) {
      const Range& a = ranges[i];
      const Range& b = ranges[j];
      EXPECT_TRUE(a.base + a.size <= b.base || b.base + b.size <= a.base)
          << a.node << " overlaps " << b.node;
    }
  }
}

// The region of `map` called `name`, or an empty one.
MemoryRegion Region(const std::vector<MemoryRegion>& map, const std::string& name) {
  for (const MemoryRegion& r : map) {
    if (r.name == name) return r;
  }
  ADD_FAILURE() << "no region " << name;
  return {};
}

TEST(Arm64LayoutTest, FixedMapHasNoOverlapForAnyRamSize) {
  EXPECT_TRUE(CheckNoOverlap(MemoryMap(256ull << 20)).ok());
  EXPECT_TRUE(CheckNoOverlap(MemoryMap(kMaxRamSize)).ok());
  EXPECT_EQ(Region(MemoryMap(1 << 30), "RAM").base, 0x40000000u);
  // One byte more RAM than the cap runs into the 64-bit PCI window, and
  // the overlap check (which covers that window) says so.
  absl::Status over = CheckNoOverlap(MemoryMap(kMaxRamSize + 1));
  ASSERT_FALSE(over.ok());
  EXPECT_THAT(over.message(), HasSubstr("RAM"));
  EXPECT_THAT(over.message(), HasSubstr("PCI MMIO64 window"));
}

TEST(Arm64LayoutTest, SixtyFourBitPciWindowIsAboveRamAndInsideTheIpaSpace) {
  const MemoryRegion high = Region(MemoryMap(256ull << 20), "PCI MMIO64 window");
  EXPECT_EQ(high.base, 0x8000000000u);  // 512 GiB
  EXPECT_EQ(high.size, 0x8000000000u);  // 512 GiB
  EXPECT_EQ(high.base + high.size, kIpaLimit);  // fits KVM's default 40-bit IPA
  EXPECT_EQ(kRamBase + kMaxRamSize, high.base);
  EXPECT_EQ(kMaxRamSize, 511ull << 30);
  // Naturally aligned for a BAR as large as the window itself.
  EXPECT_EQ(high.base % high.size, 0u);
}

TEST(Arm64LayoutTest, OverlapIsReportedWithBothNames) {
  std::vector<MemoryRegion> map = MemoryMap(256ull << 20);
  map.push_back({"intruder", kUartBase + 0x800, 0x1000});
  absl::Status s = CheckNoOverlap(map);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("UART"));
  EXPECT_THAT(s.message(), HasSubstr("intruder"));
  EXPECT_FALSE(CheckNoOverlap({{"wraps", ~0ull - 10, 100}}).ok());
}

TEST(Arm64LayoutTest, RamSizeLimits) {
  EXPECT_TRUE(ValidateRamSize(256ull << 20).ok());
  EXPECT_TRUE(ValidateRamSize(kMaxRamSize).ok());
  absl::Status big = ValidateRamSize(2ull << 40);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(big.message(), HasSubstr("too large for the arm64 memory map"));
  EXPECT_FALSE(ValidateRamSize(1 << 20).ok());
  // The first size past the cap: one line naming the size, the window RAM
  // runs into and the cap.
  absl::Status over = ValidateRamSize(512ull << 30);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(over.message(),
            "512 GiB is too large for the arm64 memory map: RAM starts at 0x40000000 and must "
            "end at the 64-bit PCI window (0x8000000000), so at most 511 GiB");
  EXPECT_THAT(ValidateRamSize(kMaxRamSize + (1 << 20)).message(),
              HasSubstr("523265 MiB is too large"));
  EXPECT_THAT(ValidateRamSize(kMaxRamSize + 1).message(),
              HasSubstr("548682072065 bytes is too large"));
}

TEST(Arm64LayoutTest, SpisFitTheirRanges) {
  EXPECT_LT(kVirtioMmioSpiBase + kVirtioMmioSlots, kWiredSpis);
  EXPECT_LE(kPciIntxSpiBase + 4, kVirtioMmioSpiBase);
  // The fixed devices' SPIs are distinct and below the PCI INTx lines.
  std::vector<uint32_t> fixed = {kUartSpi, kRtcSpi, kGpioSpi};
  std::sort(fixed.begin(), fixed.end());
  EXPECT_EQ(std::adjacent_find(fixed.begin(), fixed.end()), fixed.end());
  EXPECT_LT(fixed.back(), kPciIntxSpiBase);
  EXPECT_EQ(kGicNumIrqs % 32, 0u);
}

// --dtb: a user tree is loaded as given, only /chosen gains what only
// Skiff knows.
std::vector<uint8_t> UserTree(bool with_chosen) {
  fdt::FdtWriter w(4096);
  w.BeginNode("");
  w.PropertyString("compatible", "fsl,ls1046a-rdb");
  w.PropertyU32("#address-cells", 2);
  w.PropertyU32("#size-cells", 2);
  if (with_chosen) {
    w.BeginNode("chosen");
    w.PropertyString("bootargs", "from-the-board");
    w.PropertyString("stdout-path", "serial0");
    w.EndNode();
  }
  w.BeginNode("soc");
  w.PropertyString("model", "board");
  w.EndNode();
  w.EndNode();
  auto blob = w.Finish();
  return blob.ok() ? *blob : std::vector<uint8_t>{};
}

TEST(Arm64UserDtbTest, LoadedAsGivenWhenNothingToAdd) {
  std::vector<uint8_t> user = UserTree(true);
  ASSERT_TRUE(ValidateFdt(user, "--dtb f").ok());
  auto out = PatchUserFdt(user, "", std::nullopt);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, user);
}

TEST(Arm64UserDtbTest, ChosenGetsBootargsAndInitrdRestUnchanged) {
  std::vector<uint8_t> user = UserTree(true);
  auto out = PatchUserFdt(user, "console=ttyS0", InitrdRange{0x48000000, 0x48100000});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(fdt_check_full(out->data(), out->size()), 0);
  EXPECT_EQ(FdtString(*out, "/chosen", "bootargs"), "console=ttyS0");
  EXPECT_EQ(FdtString(*out, "/chosen", "stdout-path"), "serial0");
  EXPECT_THAT(FdtCells(*out, "/chosen", "linux,initrd-start"), ElementsAre(0u, 0x48000000u));
  EXPECT_THAT(FdtCells(*out, "/chosen", "linux,initrd-end"), ElementsAre(0u, 0x48100000u));
  EXPECT_EQ(FdtString(*out, "/", "compatible"), "fsl,ls1046a-rdb");
  EXPECT_EQ(FdtString(*out, "/soc", "model"), "board");
}

TEST(Arm64UserDtbTest, MissingChosenIsCreated) {
  std::vector<uint8_t> user = UserTree(false);
  auto out = PatchUserFdt(user, "", InitrdRange{0x48000000, 0x48001000});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(FdtCells(*out, "/chosen", "linux,initrd-end"), ElementsAre(0u, 0x48001000u));
  EXPECT_FALSE(FdtProp(*out, "/chosen", "bootargs").has_value());
}

TEST(Arm64UserDtbTest, CorruptTreesAreRejected) {
  std::vector<uint8_t> user = UserTree(true);
  EXPECT_THAT(ValidateFdt(std::vector<uint8_t>(100, 0), "--dtb f").message(),
              HasSubstr("not a valid device tree"));
  EXPECT_THAT(ValidateFdt(std::vector<uint8_t>(10, 0), "--dtb f").message(),
              HasSubstr("too small"));
  std::vector<uint8_t> cut(user.begin(), user.begin() + user.size() - 16);
  EXPECT_THAT(ValidateFdt(cut, "--dtb f").message(), HasSubstr("truncated"));
  // A structure block whose first token is garbage: header fine, body not.
  std::vector<uint8_t> bad = user;
  const uint32_t off = fdt_off_dt_struct(bad.data());
  bad[off] = 0x7f;
  absl::Status s = ValidateFdt(bad, "--dtb f");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("--dtb f"));
}

TEST(Arm64UserDtbTest, PatchingChecksTheWholeTreeItself) {
  // A sound header whose memory reservation map starts 8 bytes before the
  // end: libfdt counts -FDT_ERR_TRUNCATED entries and fdt_open_into would
  // memmove() a negative size. PatchUserFdt must not rely on its caller
  // having run ValidateFdt.
  std::vector<uint8_t> bad = UserTree(false);
  fdt_set_off_mem_rsvmap(bad.data(), fdt_totalsize(bad.data()) - 8);
  ASSERT_EQ(fdt_check_header(bad.data()), 0);
  auto out = PatchUserFdt(bad, "console=ttyS0", InitrdRange{0x48000000, 0x48001000});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("--dtb: corrupt device tree"));
}

TEST(Arm64UserDtbTest, TreesOlderThanVersion17AreRefused) {
  // libfdt 1.6.1's fdt_check_full dereferences a null root name on a
  // version 15 tree, and checks a version 16 tree's property names only
  // against totalsize (fdt_open_into then cuts them off).
  for (uint32_t version : {15u, 16u}) {
    std::vector<uint8_t> old = UserTree(true);
    fdt_set_version(old.data(), version);
    fdt_set_last_comp_version(old.data(), version);  // never above the version
    ASSERT_EQ(fdt_check_header(old.data()), 0);
    absl::Status s = ValidateFdt(old, "--dtb f");
    EXPECT_THAT(s.message(),
                HasSubstr(absl::StrFormat("--dtb f: device tree version %u", version)));
    EXPECT_FALSE(PatchUserFdt(old, "console=ttyS0", std::nullopt).ok());
  }
}

TEST(Arm64UserDtbTest, PropertyLengthWrappingTheOffsetIsRefused) {
  // The first property's length is 0xfffffff4 (-12): libfdt 1.6.1 steps
  // back onto the same token, and fdt_check_full would never return.
  std::vector<uint8_t> bad = UserTree(true);
  const uint32_t off = fdt_off_dt_struct(bad.data());
  int prop = fdt_first_property_offset(bad.data(), 0);
  ASSERT_GE(prop, 0);
  const uint32_t len_at = off + static_cast<uint32_t>(prop) + 4;
  const uint8_t minus_12[] = {0xff, 0xff, 0xff, 0xf4};
  std::copy(std::begin(minus_12), std::end(minus_12), bad.begin() + len_at);
  absl::Status s = ValidateFdt(bad, "--dtb f");
  EXPECT_THAT(s.message(),
              HasSubstr("--dtb f: corrupt device tree (a property of 4294967284 bytes"));
  EXPECT_FALSE(PatchUserFdt(bad, "console=ttyS0", std::nullopt).ok());
}

TEST(Arm64UserDtbTest, GeneratedTreePassesValidation) {
  PlatformDescription p;
  p.ram_size = 128 << 20;
  auto blob = BuildPlatformFdt(p);
  ASSERT_TRUE(blob.ok());
  EXPECT_TRUE(ValidateFdt(*blob, "generated").ok());
}

TEST(Arm64PlatformFdtTest, LongCommandLineGrowsTheBuffer) {
  PlatformDescription p;
  p.ram_size = 128 << 20;
  p.bootargs = std::string(40000, 'x');
  auto blob = BuildPlatformFdt(p);
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_EQ(FdtString(*blob, "/chosen", "bootargs").size(), 40000u);
}

}  // namespace
}  // namespace skiff::arm64

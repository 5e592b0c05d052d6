#include "arch/x86_64/acpi.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "arch/x86_64/aml.h"
#include "arch/x86_64/layout.h"
#include "devices/pci/intx_router.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace skiff::x86 {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using Bytes = std::vector<uint8_t>;

constexpr uint64_t kBase = kAcpiTablesAddress;

uint64_t Get(std::span<const uint8_t> b, size_t offset, int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | b[offset + i];
  return value;
}

uint8_t Sum(std::span<const uint8_t> b) {
  return std::accumulate(b.begin(), b.end(), uint8_t{0});
}

bool Contains(std::span<const uint8_t> haystack, const Bytes& needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(),
                     needle.end()) != haystack.end();
}

size_t Count(std::span<const uint8_t> haystack, const Bytes& needle) {
  size_t n = 0;
  for (auto it = haystack.begin();
       (it = std::search(it, haystack.end(), needle.begin(), needle.end())) !=
       haystack.end();
       ++it) {
    ++n;
  }
  return n;
}

Bytes Text(std::string_view s) { return Bytes(s.begin(), s.end()); }

// The tables reachable from the RSDP, each checked for a sane length and a
// zero checksum on the way.
struct Tables {
  Bytes blob;
  std::span<const uint8_t> rsdp, xsdt, fadt, madt, dsdt, mcfg;
};

std::span<const uint8_t> TableAt(const Bytes& blob, uint64_t addr) {
  EXPECT_GE(addr, kBase);
  const uint64_t off = addr - kBase;
  EXPECT_LE(off + kAcpiTableHeaderSize, blob.size());
  if (off + kAcpiTableHeaderSize > blob.size()) return {};
  const uint64_t length = Get(blob, off + 4, 4);
  EXPECT_LE(off + length, blob.size());
  if (off + length > blob.size()) return {};
  std::span<const uint8_t> table(blob.data() + off, length);
  EXPECT_EQ(Sum(table), 0) << std::string(table.begin(), table.begin() + 4);
  return table;
}

Tables Walk(const AcpiConfig& config) {
  Tables t;
  auto blob = BuildAcpiTables(config, kBase);
  EXPECT_TRUE(blob.ok()) << blob.status();
  if (!blob.ok()) return t;
  t.blob = *std::move(blob);
  EXPECT_LE(t.blob.size(), kAcpiTablesMaxSize);
  t.rsdp = std::span(t.blob).first(kRsdpSize);
  t.xsdt = TableAt(t.blob, Get(t.rsdp, 24, 8));
  for (size_t off = kAcpiTableHeaderSize; off + 8 <= t.xsdt.size(); off += 8) {
    auto table = TableAt(t.blob, Get(t.xsdt, off, 8));
    std::string sig(table.begin(), table.begin() + 4);
    if (sig == "FACP") t.fadt = table;
    if (sig == "APIC") t.madt = table;
    if (sig == "MCFG") t.mcfg = table;
  }
  if (!t.fadt.empty()) t.dsdt = TableAt(t.blob, Get(t.fadt, 140, 8));
  return t;
}

AcpiConfig TwoVirtioDevices() {
  AcpiConfig config;
  config.num_cpus = 2;
  config.virtio_mmio = {
      {kVirtioMmioBase, kVirtioMmioSlotSize, 16},
      {kVirtioMmioBase + kVirtioMmioSlotSize, kVirtioMmioSlotSize, 17}};
  return config;
}

TEST(AcpiTest, RsdpHasBothChecksumsAndPointsAtXsdt) {
  Tables t = Walk(TwoVirtioDevices());
  ASSERT_EQ(t.rsdp.size(), 36u);
  EXPECT_EQ(std::string(t.rsdp.begin(), t.rsdp.begin() + 8), "RSD PTR ");
  EXPECT_EQ(Sum(t.rsdp.first(20)), 0);
  EXPECT_EQ(Sum(t.rsdp), 0);
  EXPECT_EQ(t.rsdp[15], 2);            // revision
  EXPECT_EQ(Get(t.rsdp, 20, 4), 36u);  // length
  EXPECT_EQ(std::string(t.rsdp.begin() + 9, t.rsdp.begin() + 15), "SKIFF ");
  ASSERT_FALSE(t.xsdt.empty());
  EXPECT_EQ(std::string(t.xsdt.begin(), t.xsdt.begin() + 4), "XSDT");
}

TEST(AcpiTest, EveryTableHasSkiffIdsAndTheXsdtListsThem) {
  Tables t = Walk(TwoVirtioDevices());
  for (auto table : {t.xsdt, t.fadt, t.madt, t.dsdt}) {
    ASSERT_FALSE(table.empty());
    EXPECT_EQ(std::string(table.begin() + 10, table.begin() + 16), "SKIFF ");
    EXPECT_EQ(std::string(table.begin() + 16, table.begin() + 24), "SKIFFVM ");
    EXPECT_EQ(std::string(table.begin() + 28, table.begin() + 32), "SKIF");
  }
  EXPECT_EQ(t.xsdt.size(), 36u + 2 * 8);  // FADT, MADT; no MCFG
  EXPECT_TRUE(t.mcfg.empty());
}

TEST(AcpiTest, FadtIsHardwareReducedWithSleepAndResetRegisters) {
  Tables t = Walk(TwoVirtioDevices());
  ASSERT_EQ(t.fadt.size(), 276u);
  EXPECT_EQ(t.fadt[8], 6);  // revision
  const uint32_t flags = Get(t.fadt, 112, 4);
  EXPECT_EQ(flags, (1u << 20) | (1u << 10));  // HW_REDUCED_ACPI | RESET_REG_SUP
  EXPECT_EQ(Get(t.fadt, 109, 2), (1u << 2) | (1u << 5));  // no VGA, no CMOS
  EXPECT_EQ(Get(t.fadt, 40, 4), 0u);  // DSDT: only X_DSDT is set
  EXPECT_EQ(Get(t.fadt, 140, 8), kBase + (t.dsdt.data() - t.blob.data()));
  // GAS: SystemIO, 8 bits, offset 0, byte access, port.
  const Bytes reset = {1, 8, 0, 1, 0x02, 0x06, 0, 0, 0, 0, 0, 0};
  const Bytes sleep_control = {1, 8, 0, 1, 0x00, 0x06, 0, 0, 0, 0, 0, 0};
  const Bytes sleep_status = {1, 8, 0, 1, 0x01, 0x06, 0, 0, 0, 0, 0, 0};
  EXPECT_THAT(t.fadt.subspan(116, 12), ElementsAreArray(reset));
  EXPECT_EQ(t.fadt[128], kAcpiResetValue);
  EXPECT_THAT(t.fadt.subspan(244, 12), ElementsAreArray(sleep_control));
  EXPECT_THAT(t.fadt.subspan(256, 12), ElementsAreArray(sleep_status));
  EXPECT_EQ(std::string(t.fadt.begin() + 268, t.fadt.begin() + 276),
            std::string("SKIFF\0\0\0", 8));
}

class MadtTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(MadtTest, OneLocalApicPerCpuAndOneIoApic) {
  const uint32_t n = GetParam();
  AcpiConfig config;
  config.num_cpus = n;
  Tables t = Walk(config);
  ASSERT_FALSE(t.madt.empty());
  EXPECT_EQ(Get(t.madt, 36, 4), kLapicAddress);
  EXPECT_EQ(Get(t.madt, 40, 4), 1u);  // PCAT_COMPAT
  std::vector<uint32_t> apic_ids, uids;
  int ioapics = 0;
  for (size_t off = 44; off < t.madt.size();) {
    const uint8_t type = t.madt[off], length = t.madt[off + 1];
    ASSERT_GE(length, 2);
    ASSERT_LE(off + length, t.madt.size());
    if (type == 0) {
      ASSERT_EQ(length, 8);
      uids.push_back(t.madt[off + 2]);
      apic_ids.push_back(t.madt[off + 3]);
      EXPECT_EQ(Get(t.madt, off + 4, 4), 1u);  // Enabled
    } else if (type == 1) {
      ASSERT_EQ(length, 12);
      ++ioapics;
      EXPECT_EQ(Get(t.madt, off + 4, 4), kIoapicAddress);
      EXPECT_EQ(Get(t.madt, off + 8, 4), 0u);  // GSI base
    } else {
      ADD_FAILURE() << "unexpected MADT entry type " << int{type};
    }
    off += length;
  }
  std::vector<uint32_t> expected(n);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(apic_ids, expected);
  EXPECT_EQ(uids, expected);
  EXPECT_EQ(ioapics, 1);
}

INSTANTIATE_TEST_SUITE_P(CpuCounts, MadtTest,
                         ::testing::Values(1u, 2u, 8u, 255u));

TEST(AcpiTest, MadtRejectsZeroAndTooManyCpus) {
  EXPECT_THAT(BuildMadt(0).status().message(), HasSubstr("0 vCPUs"));
  EXPECT_THAT(BuildMadt(256).status().message(), HasSubstr("256 vCPUs"));
  AcpiConfig config;
  config.num_cpus = 256;
  EXPECT_FALSE(BuildAcpiTables(config, kBase).ok());
}

TEST(AcpiTest, DsdtHasS5PackageDevicesAndResources) {
  Tables t = Walk(TwoVirtioDevices());
  ASSERT_FALSE(t.dsdt.empty());
  EXPECT_EQ(t.dsdt[8], 2);  // revision 2: 64-bit integers
  // Name(_S5_, Package(){5, 5}) at the root.
  EXPECT_TRUE(Contains(t.dsdt, {0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x02,
                                0x0a, 0x05, 0x0a, 0x05}));
  // Scope(\_SB_).
  EXPECT_TRUE(Contains(t.dsdt, {'\\', '_', 'S', 'B', '_'}));
  // COM1: EisaId("PNP0501"), IO(Decode16, 0x3F8, 0x3F8, 0, 8), IRQ 4.
  EXPECT_TRUE(Contains(t.dsdt, {0x0c, 0x41, 0xd0, 0x05, 0x01}));
  EXPECT_TRUE(Contains(t.dsdt, {0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08,
                                0x22, 0x10, 0x00, 0x79, 0x00}));
  // pvpanic.
  EXPECT_TRUE(Contains(t.dsdt, Text("QEMU0001")));
  EXPECT_TRUE(Contains(
      t.dsdt, {0x47, 0x01, 0x05, 0x05, 0x05, 0x05, 0x01, 0x01, 0x79, 0x00}));
  // The exit device: _HID "SKIF0001", Memory32Fixed(ReadWrite, 0xd8000000, 4).
  EXPECT_TRUE(Contains(t.dsdt, Text("SKEX")));
  EXPECT_TRUE(Contains(t.dsdt, Text("SKIF0001")));
  EXPECT_TRUE(Contains(t.dsdt, {0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd8, 0x04, 0x00,
                                0x00, 0x00, 0x79, 0x00}));
  // The power button (PNP0C0C) and the Generic Event Device (ACPI0013) on
  // GSI 14, edge/high/exclusive, whose _EVT notifies it.
  EXPECT_TRUE(Contains(t.dsdt, Text("PWRB")));
  EXPECT_TRUE(Contains(t.dsdt, {0x0c, 0x41, 0xd0, 0x0c, 0x0c}));  // EisaId("PNP0C0C")
  EXPECT_TRUE(Contains(t.dsdt, Text("ACPI0013")));
  EXPECT_TRUE(Contains(t.dsdt, {0x89, 0x06, 0x00, 0x03, 0x01, 0x0e, 0x00, 0x00, 0x00}));
  EXPECT_TRUE(Contains(t.dsdt, {0x14, 0x13, '_', 'E', 'V', 'T', 0x09, 0x86}));
  // Two LNRO0005 devices with their windows and level/high interrupts.
  EXPECT_EQ(Count(t.dsdt, Text("LNRO0005")), 2u);
  EXPECT_TRUE(Contains(t.dsdt, Text("VR00")));
  EXPECT_TRUE(Contains(t.dsdt, Text("VR01")));
  EXPECT_TRUE(Contains(
      t.dsdt, {0x86, 0x09, 0x00, 0x01, 0x00, 0x10, 0x00, 0xd0, 0x00, 0x10, 0x00,
               0x00, 0x89, 0x06, 0x00, 0x01, 0x01, 0x11, 0x00, 0x00, 0x00}));
}

TEST(AcpiTest, RejectsVirtioWindowAbove4GiB) {
  AcpiConfig config;
  config.virtio_mmio = {{0x100000000, 0x1000, 16}};
  auto blob = BuildAcpiTables(config, kBase);
  ASSERT_FALSE(blob.ok());
  EXPECT_THAT(blob.status().message(), HasSubstr("virtio-mmio device 0"));
}

TEST(AcpiTest, McfgDescribesTheEcamWindow) {
  AcpiConfig config = TwoVirtioDevices();
  config.pci_ecam = EcamInfo{kPciEcamBase, 0, 255};
  Tables t = Walk(config);
  ASSERT_FALSE(t.mcfg.empty());
  EXPECT_EQ(t.xsdt.size(), 36u + 3 * 8);
  ASSERT_EQ(t.mcfg.size(), 60u);
  EXPECT_EQ(Get(t.mcfg, 44, 8), kPciEcamBase);
  EXPECT_EQ(Get(t.mcfg, 52, 2), 0u);  // segment
  EXPECT_EQ(t.mcfg[54], 0);
  EXPECT_EQ(t.mcfg[55], 255);
  EXPECT_FALSE(BuildMcfg({kPciEcamBase, 5, 4}).ok());
}

PciHostInfo TestPciHost() {
  PciHostInfo host;
  host.mmio32 = {kPciMmio32Base, kPciMmio32Size};
  host.mmio64 = AcpiWindow{0x8000000000, 0x4000000000};
  host.io = AcpiWindow{0x1000, 0x1000};
  return host;
}

TEST(AcpiTest, DsdtDescribesThePciHostBridge) {
  AcpiConfig config = TwoVirtioDevices();
  config.pci_host = TestPciHost();
  Tables t = Walk(config);
  ASSERT_FALSE(t.dsdt.empty());
  EXPECT_TRUE(Contains(t.dsdt, {0x5b, 0x82}));  // DeviceOp
  EXPECT_TRUE(Contains(t.dsdt, Text("PCI0")));
  EXPECT_TRUE(Contains(
      t.dsdt, {0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08}));
  EXPECT_TRUE(Contains(
      t.dsdt, {0x08, '_', 'C', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03}));
  EXPECT_TRUE(Contains(t.dsdt, {0x08, '_', 'S', 'E', 'G', 0x00}));
  EXPECT_TRUE(Contains(t.dsdt, {0x08, '_', 'B', 'B', 'N', 0x00}));
  // _CRS: bus 0-0, I/O 0x1000-0x1fff, the 32-bit window, the 64-bit one.
  EXPECT_TRUE(Contains(t.dsdt, {0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0, 0, 0, 0,
                                0, 0, 0, 0, 0x01, 0x00}));
  EXPECT_TRUE(Contains(t.dsdt, {0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0, 0, 0x00,
                                0x10, 0xff, 0x1f, 0, 0, 0x00, 0x10}));
  EXPECT_TRUE(Contains(
      t.dsdt,
      {0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0, 0, 0, 0,    0x00, 0x00, 0x00,
       0xc0, 0xff, 0xff, 0xff, 0xcf, 0,    0, 0, 0, 0x00, 0x00, 0x00, 0x10}));
  EXPECT_TRUE(Contains(t.dsdt, {0x8a, 0x2b, 0x00, 0x00, 0x0c, 0x01}));
  // _PRT: 32 slots x 4 pins, each Package(4){slot<<16|0xFFFF, pin, Zero, GSI}
  // with the same swizzle the root complex wires.
  EXPECT_TRUE(Contains(t.dsdt, {0x08, '_', 'P', 'R', 'T', 0x12}));
  for (uint32_t slot = 0; slot < 32; ++slot) {
    for (uint32_t pin = 0; pin < 4; ++pin) {
      const uint32_t gsi = kPciIntxGsiBase + pci::IntxSwizzle(slot, pin + 1);
      // Slot 0's address fits a Word constant, the others need a DWord.
      Bytes entry = {0x12, 0x00, 0x04};
      for (const Bytes& part :
           {aml::Integer(slot << 16 | 0xffff), aml::Integer(pin)}) {
        entry.insert(entry.end(), part.begin(), part.end());
      }
      entry.push_back(0x00);  // Zero: no link device
      entry.push_back(0x0a);
      entry.push_back(static_cast<uint8_t>(gsi));
      entry[1] = static_cast<uint8_t>(entry.size() - 1);
      EXPECT_TRUE(Contains(t.dsdt, entry)) << "slot " << slot << " pin " << pin;
    }
  }
  // Without pci_host there is no PCI0.
  Tables plain = Walk(TwoVirtioDevices());
  EXPECT_FALSE(Contains(plain.dsdt, Text("PCI0")));
}

TEST(AcpiTest, EcamWindowIsReservedAsAMotherboardResource) {
  AcpiConfig config;
  config.pci_ecam = EcamInfo{kPciEcamBase, 0, 255};
  Tables t = Walk(config);
  EXPECT_TRUE(Contains(t.dsdt, {0x0c, 0x41, 0xd0, 0x0c, 0x02}));  // PNP0C02
  EXPECT_TRUE(Contains(t.dsdt, {0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xe0,
                                0x00, 0x00, 0x00, 0x10}));
  config.pci_ecam = EcamInfo{kPciEcamBase, 2, 3};  // buses 2-3 only
  t = Walk(config);
  EXPECT_TRUE(Contains(t.dsdt, {0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x20, 0xe0,
                                0x00, 0x00, 0x20, 0x00}));
  config.pci_ecam = EcamInfo{0x100000000, 0, 0};
  EXPECT_FALSE(BuildDsdt(config).ok());
}

TEST(AcpiTest, RejectsBadPciHosts) {
  auto fails = [](auto mutate, const char* what) {
    AcpiConfig config;
    config.pci_host = TestPciHost();
    mutate(*config.pci_host);
    auto dsdt = BuildDsdt(config);
    EXPECT_FALSE(dsdt.ok()) << what;
    if (!dsdt.ok()) {
      EXPECT_THAT(dsdt.status().message(), HasSubstr("PCI host bridge"))
          << what;
    }
  };
  fails([](PciHostInfo& h) { h.bus_start = 2, h.bus_end = 1; }, "bus range");
  fails(
      [](PciHostInfo& h) {
        h.mmio32 = {0xf0000000, 0x20000000};
      },
      "mmio32 past 4 GiB");
  fails([](PciHostInfo& h) { h.mmio32 = {0xc0000000, 0}; }, "empty mmio32");
  fails(
      [](PciHostInfo& h) {
        h.mmio64 = AcpiWindow{~uint64_t{0}, 2};
      },
      "mmio64 wraps");
  fails(
      [](PciHostInfo& h) {
        h.io = AcpiWindow{0xf000, 0x2000};
      },
      "I/O past 64 KiB");
  fails([](PciHostInfo& h) { h.intx_gsi_base = 21; }, "GSIs past the I/O APIC");
}

TEST(AcpiTest, RejectsMisalignedBase) {
  EXPECT_FALSE(BuildAcpiTables(AcpiConfig{}, kBase + 8).ok());
}

TEST(AcpiTest, LargestConfigFitsTheReservedArea) {
  AcpiConfig config;
  config.num_cpus = kAcpiMaxCpus;
  for (uint32_t i = 0; i < 256; ++i) {
    config.virtio_mmio.push_back({kVirtioMmioBase + i * kVirtioMmioSlotSize,
                                  kVirtioMmioSlotSize, 16 + i});
  }
  config.pci_ecam = EcamInfo{kPciEcamBase, 0, 255};
  Tables t = Walk(config);
  EXPECT_EQ(Count(t.dsdt, Text("LNRO0005")), 256u);
  config.virtio_mmio.push_back(config.virtio_mmio.back());
  EXPECT_FALSE(BuildAcpiTables(config, kBase).ok());
}

// --- AML encoder ---

Bytes Ok(const aml::Result& r) {
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : Bytes{};
}

TEST(AmlTest, PkgLengthAtEncodingBoundaries) {
  EXPECT_THAT(Ok(aml::PkgLength(0)), ElementsAre(0x01));
  EXPECT_THAT(Ok(aml::PkgLength(62)), ElementsAre(63));  // 1 byte: total 63
  // 2 bytes: low nibble in byte 0, the rest in byte 1 (total 65 = 0x41).
  EXPECT_THAT(Ok(aml::PkgLength(63)), ElementsAre(0x41, 0x04));
  EXPECT_THAT(Ok(aml::PkgLength(4093)), ElementsAre(0x4f, 0xff));        // 4095
  EXPECT_THAT(Ok(aml::PkgLength(4094)), ElementsAre(0x81, 0x00, 0x01));  // 4097
  EXPECT_THAT(Ok(aml::PkgLength((1 << 20) - 4)), ElementsAre(0x8f, 0xff, 0xff));
  EXPECT_THAT(Ok(aml::PkgLength((1 << 20) - 3)),
              ElementsAre(0xc1, 0x00, 0x00, 0x01));
  EXPECT_THAT(Ok(aml::PkgLength((1 << 28) - 5)),
              ElementsAre(0xcf, 0xff, 0xff, 0xff));
  EXPECT_FALSE(aml::PkgLength((1 << 28) - 4).ok());
}

TEST(AmlTest, PackageLengthCrossesTheTwoByteBoundary) {
  // 30 Word constants (3 bytes each) + NumElements = 91 bytes of body.
  std::vector<aml::Result> elements(30, aml::Integer(0x1234));
  Bytes pkg = Ok(aml::Package(elements));
  ASSERT_EQ(pkg.size(), 1u + 2 + 91);
  EXPECT_THAT(Bytes(pkg.begin(), pkg.begin() + 4),
              ElementsAre(0x12, 0x4d, 0x05, 30));  // total 93 = 0x5d
}

TEST(AmlTest, Integers) {
  EXPECT_THAT(aml::Integer(0), ElementsAre(0x00));
  EXPECT_THAT(aml::Integer(1), ElementsAre(0x01));
  EXPECT_THAT(aml::Integer(2), ElementsAre(0x0a, 0x02));
  EXPECT_THAT(aml::Integer(0xff), ElementsAre(0x0a, 0xff));
  EXPECT_THAT(aml::Integer(0x100), ElementsAre(0x0b, 0x00, 0x01));
  EXPECT_THAT(aml::Integer(0x10000), ElementsAre(0x0c, 0, 0, 1, 0));
  EXPECT_THAT(aml::Integer(0x100000000),
              ElementsAre(0x0e, 0, 0, 0, 0, 1, 0, 0, 0));
}

TEST(AmlTest, NamesStringsAndIds) {
  EXPECT_THAT(Ok(aml::NameString("_SB")), ElementsAre('_', 'S', 'B', '_'));
  EXPECT_THAT(Ok(aml::NameString("\\_SB.COM1")),
              ElementsAre('\\', 0x2e, '_', 'S', 'B', '_', 'C', 'O', 'M', '1'));
  EXPECT_THAT(Ok(aml::NameString("\\A.B.C")),
              ElementsAre('\\', 0x2f, 3, 'A', '_', '_', '_', 'B', '_', '_', '_',
                          'C', '_', '_', '_'));
  EXPECT_THAT(Ok(aml::NameString("^FOO")),
              ElementsAre('^', 'F', 'O', 'O', '_'));
  EXPECT_FALSE(aml::NameString("TOOLONG").ok());
  EXPECT_FALSE(aml::NameString("1ABC").ok());
  EXPECT_FALSE(aml::NameString("a").ok());
  EXPECT_FALSE(aml::NameString("").ok());
  EXPECT_FALSE(aml::NameString("A..B").ok());
  EXPECT_THAT(Ok(aml::String("AB")), ElementsAre(0x0d, 'A', 'B', 0));
  EXPECT_THAT(Ok(aml::EisaId("PNP0A08")),
              ElementsAre(0x0c, 0x41, 0xd0, 0x0a, 0x08));
  EXPECT_FALSE(aml::EisaId("PNP050").ok());
  EXPECT_FALSE(aml::EisaId("pnp0501").ok());
  EXPECT_THAT(Ok(aml::Name("_UID", aml::Integer(3))),
              ElementsAre(0x08, '_', 'U', 'I', 'D', 0x0a, 3));
  // A bad child surfaces through its container.
  auto device = aml::Device("DEV0", {aml::Name("_HID", aml::EisaId("bad"))});
  EXPECT_THAT(device.status().message(), HasSubstr("EISA ID \"bad\""));
}

TEST(AmlTest, MethodAndNotify) {
  EXPECT_THAT(Ok(aml::Notify("\\_SB.PWRB", 0x80)),
              ElementsAre(0x86, '\\', 0x2e, '_', 'S', 'B', '_', 'P', 'W', 'R', 'B', 0x0a, 0x80));
  // MethodOp, PkgLength 0x13, "_EVT", flags (1 argument, serialized), body.
  EXPECT_THAT(Ok(aml::Method("_EVT", 1, true, {aml::Notify("\\_SB.PWRB", 0x80)})),
              ElementsAre(0x14, 0x13, '_', 'E', 'V', 'T', 0x09, 0x86, '\\', 0x2e, '_', 'S', 'B',
                          '_', 'P', 'W', 'R', 'B', 0x0a, 0x80));
  EXPECT_THAT(Ok(aml::Method("M0", 0, false, {})), ElementsAre(0x14, 0x06, 'M', '0', '_', '_', 0));
  EXPECT_FALSE(aml::Method("M0", 8, false, {}).ok());
  EXPECT_FALSE(aml::Method("0BAD", 0, false, {}).ok());
  EXPECT_FALSE(aml::Notify("bad name", 0x80).ok());
}

TEST(AmlTest, ScopeDeviceAndBuffer) {
  EXPECT_THAT(Ok(aml::Scope("_SB", {})),
              ElementsAre(0x10, 0x05, '_', 'S', 'B', '_'));
  EXPECT_THAT(Ok(aml::Device("DEV0", {aml::Name("_UID", aml::Integer(0))})),
              ElementsAre(0x5b, 0x82, 0x0b, 'D', 'E', 'V', '0', 0x08, '_', 'U',
                          'I', 'D', 0x00));
  const uint8_t data[] = {0xaa, 0xbb};
  EXPECT_THAT(Ok(aml::Buffer(data)),
              ElementsAre(0x11, 0x05, 0x0a, 0x02, 0xaa, 0xbb));
}

TEST(AmlTest, AddressSpaceDescriptors) {
  EXPECT_THAT(Ok(aml::WordBusNumber(0, 0xff)),
              ElementsAre(0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0, 0, 0x00, 0x00,
                          0xff, 0x00, 0, 0, 0x00, 0x01));
  EXPECT_THAT(Ok(aml::DWordMemory(0xc0000000, 0xcfffffff)),
              ElementsAre(0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0, 0, 0, 0, 0x00,
                          0x00, 0x00, 0xc0, 0xff, 0xff, 0xff, 0xcf, 0, 0, 0, 0,
                          0x00, 0x00, 0x00, 0x10));
  Bytes q = Ok(aml::QWordMemory(0x8000000000, 0x80ffffffff));
  ASSERT_EQ(q.size(), 46u);
  EXPECT_THAT(Bytes(q.begin(), q.begin() + 6),
              ElementsAre(0x8a, 0x2b, 0x00, 0x00, 0x0c, 0x01));
  EXPECT_EQ(Get(q, 14, 8), 0x8000000000u);
  EXPECT_EQ(Get(q, 22, 8), 0x80ffffffffu);
  EXPECT_EQ(Get(q, 38, 8), 0x100000000u);
  EXPECT_THAT(Ok(aml::WordIo(0x1000, 0x1fff)),
              ElementsAre(0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0, 0, 0x00, 0x10,
                          0xff, 0x1f, 0, 0, 0x00, 0x10));
  EXPECT_FALSE(aml::WordBusNumber(2, 1).ok());
  EXPECT_FALSE(aml::DWordMemory(0, 0xffffffff).ok());  // length needs 33 bits
  EXPECT_FALSE(aml::WordIo(0, 0xffff).ok());
  EXPECT_FALSE(aml::QWordMemory(0, ~uint64_t{0}).ok());
  EXPECT_TRUE(aml::QWordMemory(1, ~uint64_t{0}).ok());
}

TEST(AmlTest, ResourceDescriptors) {
  EXPECT_THAT(aml::IoPort(0x3f8, 0x3f8, 0, 8),
              ElementsAre(0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08));
  EXPECT_THAT(aml::Memory32Fixed(true, 0xd0000000, 0x1000),
              ElementsAre(0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00,
                          0x10, 0x00, 0x00));
  const uint32_t gsis[] = {5};
  EXPECT_THAT(Ok(aml::ExtendedInterrupt(aml::Trigger::kEdge,
                                        aml::Polarity::kActiveLow, true, gsis)),
              ElementsAre(0x89, 0x06, 0x00, 0x0f, 0x01, 5, 0, 0, 0));
  EXPECT_FALSE(aml::ExtendedInterrupt(aml::Trigger::kLevel,
                                      aml::Polarity::kActiveHigh, false, {})
                   .ok());
  EXPECT_THAT(Ok(aml::IrqNoFlags(4)), ElementsAre(0x22, 0x10, 0x00));
  EXPECT_FALSE(aml::IrqNoFlags(16).ok());
  EXPECT_THAT(aml::EndTag(), ElementsAre(0x79, 0x00));
  EXPECT_THAT(
      Ok(aml::ResourceTemplate({aml::IrqNoFlags(4)})),
      ElementsAre(0x11, 0x08, 0x0a, 0x05, 0x22, 0x10, 0x00, 0x79, 0x00));
}

// --- Cross-check with ACPICA's disassembler ---

std::string FindInPath(const std::string& program) {
  const char* path = getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Runs `command`, returning its exit status and appending output to `out`.
int RunCommand(const std::string& command, std::string& out) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), pipe)) > 0;)
    out.append(buf, n);
  return pclose(pipe);
}

TEST(AcpiIaslTest, DsdtDisassemblesCleanly) {
  const std::string iasl = FindInPath("iasl");
  ASSERT_FALSE(iasl.empty())
      << "iasl not found in PATH: install acpica-tools "
         "(apt-get install acpica-tools) to run this test";
  std::string dir = ::testing::TempDir() + "/skiff_acpi_XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);

  AcpiConfig config = TwoVirtioDevices();
  config.pci_ecam = EcamInfo{kPciEcamBase, 0, 255};
  config.pci_host = TestPciHost();
  Tables t = Walk(config);
  ASSERT_FALSE(t.dsdt.empty());
  {
    std::ofstream file(dir + "/dsdt.dat", std::ios::binary);
    file.write(reinterpret_cast<const char*>(t.dsdt.data()), t.dsdt.size());
  }
  std::string output;
  const int status =
      RunCommand("cd '" + dir + "' && '" + iasl + "' -d dsdt.dat", output);
  EXPECT_EQ(status, 0) << output;
  EXPECT_THAT(output, ::testing::Not(HasSubstr("Error"))) << output;

  std::ifstream dsl_file(dir + "/dsdt.dsl");
  ASSERT_TRUE(dsl_file) << "iasl wrote no dsdt.dsl:\n" << output;
  const std::string dsl((std::istreambuf_iterator<char>(dsl_file)),
                        std::istreambuf_iterator<char>());
  EXPECT_THAT(dsl, HasSubstr("Name (_S5, Package (0x02)"));
  EXPECT_THAT(dsl, HasSubstr("EisaId (\"PNP0501\")"));
  EXPECT_THAT(dsl, HasSubstr("\"QEMU0001\""));
  EXPECT_THAT(dsl, HasSubstr("Device (SKEX)"));
  EXPECT_THAT(dsl, HasSubstr("\"SKIF0001\""));
  EXPECT_THAT(dsl, HasSubstr("Memory32Fixed (ReadWrite,\n                    0xD8000000,"));
  EXPECT_THAT(dsl, HasSubstr("\"LNRO0005\""));
  EXPECT_THAT(dsl, HasSubstr("Memory32Fixed (ReadWrite"));
  EXPECT_THAT(dsl, HasSubstr("Interrupt (ResourceConsumer, Level, ActiveHigh"));
  // The PCI host bridge and the ECAM reservation.
  EXPECT_THAT(dsl, HasSubstr("Device (PCI0)"));
  EXPECT_THAT(dsl, HasSubstr("EisaId (\"PNP0A08\")"));
  EXPECT_THAT(dsl, HasSubstr("EisaId (\"PNP0A03\")"));
  EXPECT_THAT(
      dsl,
      HasSubstr(
          "WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode"));
  EXPECT_THAT(dsl, HasSubstr("WordIO (ResourceProducer, MinFixed, MaxFixed, "
                             "PosDecode, EntireRange"));
  EXPECT_THAT(
      dsl,
      HasSubstr("DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, "
                "NonCacheable, ReadWrite"));
  EXPECT_THAT(
      dsl,
      HasSubstr("QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, "
                "NonCacheable, ReadWrite"));
  EXPECT_THAT(dsl, HasSubstr("0xC0000000,         // Range Minimum"));
  EXPECT_THAT(dsl, HasSubstr("0xCFFFFFFF,         // Range Maximum"));
  EXPECT_THAT(dsl, HasSubstr("Name (_PRT, Package (0x80)"));
  EXPECT_THAT(dsl, HasSubstr("EisaId (\"PNP0C02\")"));

  // Round trip: the disassembly must compile back without errors.
  output.clear();
  EXPECT_EQ(
      RunCommand("cd '" + dir + "' && '" + iasl + "' -p roundtrip dsdt.dsl",
                 output),
      0)
      << output;
  RunCommand("rm -rf '" + dir + "'", output);
}

}  // namespace
}  // namespace skiff::x86

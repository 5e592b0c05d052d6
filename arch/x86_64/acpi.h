// ACPI tables describing the x86 guest platform (ACPI 6.x chapter 5): a
// hardware-reduced machine with a local APIC per vCPU, one I/O APIC, COM1,
// pvpanic, virtio-mmio devices and, optionally, a PCI host bridge and its
// ECAM window.
//
// Debian's cloud kernels parse no MP table, so the MADT is how an x86 guest
// learns about its CPUs at all.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "arch/x86_64/layout.h"

namespace skiff::x86 {

// A virtio-mmio transport to describe in the DSDT (LNRO0005).
struct AcpiMmioDevice {
  uint64_t base;
  uint64_t size;
  uint32_t gsi;  // level-triggered, active-high
};

// One PCI segment's ECAM window. `base` is where bus 0's configuration space
// would be (bus n at base + (n << 20)), per the PCI Firmware spec's MCFG.
struct EcamInfo {
  uint64_t base;
  uint8_t start_bus;
  uint8_t end_bus;
};

// An address window [base, base + size).
struct AcpiWindow {
  uint64_t base = 0;
  uint64_t size = 0;
};

// The PCI host bridge to describe as \_SB.PCI0 (PNP0A08, segment 0): the
// bus range and the windows its BARs are assigned from (devices/pci's
// PciRootConfig), and where its INTx lines go. Slot s pin p (0 = INTA)
// reaches GSI intx_gsi_base + (s + p) % 4 (level-triggered, active-low as
// every GSI in a _PRT), the swizzle devices/pci/intx_router.h implements.
// Ports 0xCF8-0xCFF are not listed: the bridge consumes them.
struct PciHostInfo {
  uint8_t bus_start = 0;
  uint8_t bus_end = 0;
  AcpiWindow mmio32;                         // must lie below 4 GiB
  std::optional<AcpiWindow> mmio64;          // 64-bit BARs, if any
  std::optional<AcpiWindow> io;              // I/O BARs, if any
  uint32_t intx_gsi_base = kPciIntxGsiBase;  // the root's INTA-D: 4 GSIs
};

struct AcpiConfig {
  uint32_t num_cpus = 1;  // 1-255: xAPIC IDs, 255 being the broadcast ID
  std::vector<AcpiMmioDevice> virtio_mmio;
  // The MCFG table, and a PNP0C02 device reserving the window so Linux
  // trusts it even without a working port-0xCF8 mechanism.
  std::optional<EcamInfo> pci_ecam;
  std::optional<PciHostInfo> pci_host;  // \_SB.PCI0 with _CRS and _PRT
};

inline constexpr uint32_t kAcpiMaxCpus = 255;
inline constexpr uint64_t kAcpiTableHeaderSize = 36;
inline constexpr uint64_t kRsdpSize = 36;
inline constexpr uint64_t kFadtSize = 276;  // ACPI 6.x FADT, revision 6

// The whole set of tables as one blob to copy to guest address `base_gpa`
// (16-byte aligned; kAcpiTablesAddress in practice). The RSDP sits at
// offset 0, so base_gpa is also the value for boot_params.acpi_rsdp_addr.
absl::StatusOr<std::vector<uint8_t>> BuildAcpiTables(const AcpiConfig& config,
                                                     uint64_t base_gpa);

// The individual tables, each complete with its checksum; exposed for tests.
std::vector<uint8_t> BuildRsdp(uint64_t xsdt_addr);
std::vector<uint8_t> BuildXsdt(std::span<const uint64_t> table_addrs);
std::vector<uint8_t> BuildFadt(uint64_t dsdt_addr);
absl::StatusOr<std::vector<uint8_t>> BuildMadt(uint32_t num_cpus);
absl::StatusOr<std::vector<uint8_t>> BuildDsdt(const AcpiConfig& config);
absl::StatusOr<std::vector<uint8_t>> BuildMcfg(const EcamInfo& ecam);

// The byte that makes `bytes` sum to zero modulo 256, given that the
// checksum byte itself currently holds zero.
uint8_t AcpiChecksum(std::span<const uint8_t> bytes);

}  // namespace skiff::x86

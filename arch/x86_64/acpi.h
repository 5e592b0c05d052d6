// ACPI tables describing the x86 guest platform (ACPI 6.x chapter 5): a
// hardware-reduced machine with a local APIC per vCPU, one I/O APIC, COM1,
// pvpanic, virtio-mmio devices and, optionally, a PCI ECAM window.
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

struct AcpiConfig {
  uint32_t num_cpus = 1;  // 1-255: xAPIC IDs, 255 being the broadcast ID
  std::vector<AcpiMmioDevice> virtio_mmio;
  std::optional<EcamInfo> pci_ecam;
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

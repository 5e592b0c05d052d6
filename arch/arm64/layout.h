// The arm64 guest-physical memory map and interrupt assignments: one table
// of facts. Every other arm64 file takes its addresses from here, and
// MemoryMap() lists them all so start-up can prove no two overlap.
//
//   0x0800_0000  GIC distributor            64 KiB
//   0x0801_0000  GICv2 CPU interface         8 KiB  (GICv2 hosts only)
//   0x0802_0000  GICv2m MSI frame            4 KiB  (GICv2 hosts only)
//   0x0804_0000  GICv3 ITS                 128 KiB
//   0x0810_0000  GICv3 redistributors      128 KiB per vCPU, room for 256
//   0x0b00_0000  UART (16550A, ns16550a)     4 KiB
//   0x0b01_0000  RTC (PL031)                 4 KiB
//   0x0b02_0000  Skiff exit device           4 KiB
//   0x0b03_0000  pvpanic (MMIO)              4 KiB
//   0x0b04_0000  GPIO (PL061), power key     4 KiB
//   0x0c00_0000  virtio-mmio slots           4 KiB each, 32 slots
//   0x0d00_0000  fsl-mc (DPAA2) portals     16 MiB (--device fsl-mc=dprc.N)
//   0x1000_0000  PCI BAR window (MMIO32)   512 MiB
//   0x3000_0000  PCIe ECAM                 256 MiB (buses 0-255)
//   0x4000_0000  RAM                         up to 511 GiB (ends by 512 GiB)
//   0x80_0000_0000  PCI BAR window (MMIO64)  512 GiB, to the 40-bit IPA limit (1 TiB)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace skiff::arm64 {

inline constexpr uint64_t kGicDistBase = 0x08000000;
inline constexpr uint64_t kGicDistSize = 0x10000;  // GICv3 GICD; GICv2 uses the first 4 KiB
inline constexpr uint64_t kGicV2DistSize = 0x1000;
inline constexpr uint64_t kGicCpuBase = 0x08010000;
inline constexpr uint64_t kGicCpuSize = 0x2000;
inline constexpr uint64_t kGicV2mBase = 0x08020000;
inline constexpr uint64_t kGicV2mSize = 0x1000;
inline constexpr uint64_t kGicItsBase = 0x08040000;
inline constexpr uint64_t kGicItsSize = 0x20000;
inline constexpr uint64_t kGicRedistBase = 0x08100000;
inline constexpr uint64_t kGicRedistStride = 0x20000;  // RD_base + SGI_base frames
inline constexpr uint32_t kMaxVcpus = 256;
inline constexpr uint64_t kGicRedistSize = kGicRedistStride * kMaxVcpus;
// GICv2's CPU interface addresses at most 8 CPUs.
inline constexpr uint32_t kGicV2MaxVcpus = 8;

inline constexpr uint64_t kUartBase = 0x0b000000;
inline constexpr uint64_t kUartSize = 0x1000;
inline constexpr uint32_t kUartClockHz = 1843200;  // the classic 16550 crystal
inline constexpr uint64_t kRtcBase = 0x0b010000;
inline constexpr uint64_t kRtcSize = 0x1000;
inline constexpr uint32_t kApbClockHz = 24000000;  // the PL031's APB clock (nominal)
inline constexpr uint64_t kExitDeviceBase = 0x0b020000;
inline constexpr uint64_t kExitDeviceSize = 0x1000;
inline constexpr uint64_t kPvpanicBase = 0x0b030000;
inline constexpr uint64_t kPvpanicSize = 0x1000;
inline constexpr uint64_t kGpioBase = 0x0b040000;
inline constexpr uint64_t kGpioSize = 0x1000;
inline constexpr uint32_t kGpioLines = 8;  // a PL061 has eight
// The PL061 line the power key drives (gpio-keys KEY_POWER in the device
// tree). Line 3, as on QEMU's virt machine, so guest configurations written
// for it carry over.
inline constexpr uint32_t kPowerKeyGpioLine = 3;
static_assert(kPowerKeyGpioLine < kGpioLines);

inline constexpr uint64_t kVirtioMmioBase = 0x0c000000;
inline constexpr uint64_t kVirtioMmioSlotSize = 0x1000;
inline constexpr uint32_t kVirtioMmioSlots = 32;

// An assigned fsl-mc container's MC command portals (trapped) and QBMan
// portals (mapped), docs/fsl-mc.md. 64 KiB-aligned (the portal slot and a
// 64 KiB-page host's page); 16 MiB holds 256 portal slots.
inline constexpr uint64_t kFslMcBase = 0x0d000000;
inline constexpr uint64_t kFslMcSize = 0x01000000;

inline constexpr uint64_t kPciMmio32Base = 0x10000000;
inline constexpr uint64_t kPciMmio32Size = 0x20000000;
inline constexpr uint64_t kPciEcamBase = 0x30000000;
inline constexpr uint64_t kPciEcamSize = 0x10000000;  // 1 MiB per bus, buses 0-255

inline constexpr uint64_t kRamBase = 0x40000000;
// KVM's default stage-2 input range (VM type 0) is 40 bits.
inline constexpr uint64_t kIpaLimit = 1ull << 40;
// 64-bit BARs: the top half of the IPA space, 512 GiB at 512 GiB (where
// QEMU's virt machine puts its high window too). Big BARs (a GPU's 16 GiB
// aperture, a 1 GiB shared-memory BAR) do not fit the 32-bit window; here
// they are naturally aligned up to 512 GiB. RAM ends where it begins.
inline constexpr uint64_t kPciMmio64Base = 0x8000000000;
inline constexpr uint64_t kPciMmio64Size = kIpaLimit - kPciMmio64Base;
inline constexpr uint64_t kMaxRamSize = kPciMmio64Base - kRamBase;  // 511 GiB

// Shared peripheral interrupts, as SPI numbers (GIC INTID - 32). With
// KVM's in-kernel GIC a GSI is the SPI number: irqfd and the routing table
// take it as is, the device tree's <GIC_SPI n flags> too.
inline constexpr uint32_t kGicSpiBase = 32;  // INTID of SPI 0
inline constexpr uint32_t kUartSpi = 0;
inline constexpr uint32_t kRtcSpi = 1;
inline constexpr uint32_t kGpioSpi = 2;
inline constexpr uint32_t kPciIntxSpiBase = 4;  // INTA-INTD: SPIs 4-7
inline constexpr uint32_t kVirtioMmioSpiBase = 8;  // one per slot: SPIs 8-39
// SPIs 0-63 are wired lines (routed GSI = SPI); MSI routes get GSIs from 64.
inline constexpr uint32_t kWiredSpis = 64;
// GICv2m: SPIs 64-127 are MSI targets (the v2m frame's range).
inline constexpr uint32_t kV2mSpiBase = 64;
inline constexpr uint32_t kV2mSpiCount = 64;
// KVM_DEV_ARM_VGIC_GRP_NR_IRQS: 32 private interrupts + every SPI above.
inline constexpr uint32_t kGicNumIrqs = kGicSpiBase + kV2mSpiBase + kV2mSpiCount;

// Private peripheral interrupts of the architected timer (PPI numbers,
// INTID - 16): secure physical, non-secure physical, virtual, hypervisor,
// the order the arm,armv8-timer binding lists them in.
inline constexpr uint32_t kTimerPpis[] = {13, 14, 11, 10};

// The MPIDR affinity KVM gives vCPU `index` (reset_mpidr: Aff0 = the low 4
// bits, Aff1 the next 8, Aff2 the next 8), which is the cpu node's reg.
constexpr uint64_t VcpuMpidr(uint32_t index) {
  return (index & 0xfu) | (((index >> 4) & 0xffull) << 8) | (((index >> 12) & 0xffull) << 16);
}

struct MemoryRegion {
  std::string name;
  uint64_t base = 0;
  uint64_t size = 0;
};

// Every fixed region plus RAM of `ram_size` bytes.
std::vector<MemoryRegion> MemoryMap(uint64_t ram_size);

// Fails naming the first two regions that overlap (or one that wraps).
absl::Status CheckNoOverlap(const std::vector<MemoryRegion>& regions);

// Whether the map can hold `ram_size` bytes of RAM: at least 16 MiB,
// ending at or below the 64-bit PCI window (kMaxRamSize). The error says why.
absl::Status ValidateRamSize(uint64_t ram_size);

}  // namespace skiff::arm64

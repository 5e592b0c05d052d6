// The x86-64 guest-physical memory map and legacy port assignments.
// One table of facts; every other x86 file takes its addresses from here.
#pragma once

#include <cstdint>

namespace skiff::x86 {

// Low memory, below 1 MiB.
inline constexpr uint64_t kGdtAddress = 0x500;          // boot GDT
inline constexpr uint64_t kIdtAddress = 0x520;          // empty boot IDT
inline constexpr uint64_t kBootParamsAddress = 0x7000;  // the "zero page"
inline constexpr uint64_t kPml4Address = 0x9000;        // identity page tables:
inline constexpr uint64_t kPdptAddress = 0xa000;        //   PML4, PDPT and four
inline constexpr uint64_t kPdAddress = 0xb000;          //   PDs (0xb000-0xefff)
inline constexpr uint64_t kCmdlineAddress = 0x20000;
inline constexpr uint64_t kCmdlineMaxSize = 0x10000;    // incl. NUL
inline constexpr uint64_t kEbdaStart = 0x9fc00;         // reserved from here
inline constexpr uint64_t kAcpiTablesAddress = 0xe0000; // RSDP first (BIOS area)
inline constexpr uint64_t kAcpiTablesMaxSize = 0x20000;
inline constexpr uint64_t kHighMemoryStart = 0x100000;  // 1 MiB
inline constexpr uint64_t kKernelLoadAddress = 0x100000;

// The 32-bit MMIO hole: RAM never occupies [kMmioHoleStart, 4 GiB).
inline constexpr uint64_t kMmioHoleStart = 0xc0000000;  // 3 GiB
inline constexpr uint64_t kFourGiB = 0x100000000;
inline constexpr uint64_t kVirtioMmioBase = 0xd0000000;  // 4 KiB per device
inline constexpr uint64_t kVirtioMmioSlotSize = 0x1000;
inline constexpr uint64_t kPciEcamBase = 0xe0000000;     // 256 MiB, buses 0-255
inline constexpr uint64_t kPciEcamSize = 0x10000000;
// PCI BARs are assigned from here (the root's 32-bit MMIO window, the
// DSDT's PCI0 _CRS): the first 256 MiB of the hole, below virtio-mmio.
inline constexpr uint64_t kPciMmio32Base = 0xc0000000;
inline constexpr uint64_t kPciMmio32Size = 0x10000000;
// Skiff's exit device (devices/legacy/exit_device.h, ACPI "SKIF0001"): one
// 32-bit register in a page of its own, between virtio-mmio and ECAM, so a
// guest's /dev/mem mapping of it touches nothing else.
inline constexpr uint64_t kExitDeviceAddress = 0xd8000000;
inline constexpr uint64_t kIoapicAddress = 0xfec00000;
inline constexpr uint64_t kLapicAddress = 0xfee00000;
// KVM needs three pages for the TSS and one for the EPT identity map on
// Intel hosts; they sit just below the BIOS-reset area.
inline constexpr uint64_t kKvmIdentityMapAddress = 0xfeffc000;
inline constexpr uint64_t kKvmTssAddress = 0xfeffd000;

// Legacy I/O ports.
inline constexpr uint16_t kCom1Port = 0x3f8;
inline constexpr uint32_t kCom1Irq = 4;
inline constexpr uint16_t kI8042DataPort = 0x60;
inline constexpr uint16_t kI8042CommandPort = 0x64;
inline constexpr uint16_t kPvpanicPort = 0x505;   // QEMU's pvpanic ISA port
// isa-debug-exit where QEMU users put it (iobase=0xf4,iosize=0x04).
inline constexpr uint16_t kIsaDebugExitPort = 0xf4;
// Hardware-reduced ACPI sleep control/status and reset registers.
inline constexpr uint16_t kAcpiSleepControlPort = 0x600;
inline constexpr uint16_t kAcpiSleepStatusPort = 0x601;
inline constexpr uint16_t kAcpiResetPort = 0x602;
inline constexpr uint8_t kAcpiResetValue = 0x1;
inline constexpr uint8_t kAcpiS5SleepType = 5;   // _S5_ SLP_TYP
inline constexpr uint32_t kAcpiSciIrq = 9;
// The ACPI Generic Event Device's interrupt (edge, active-high): raised for
// the control socket's `shutdown` (the power button). ISA IRQ 14 is free:
// there is no IDE controller, and no virtio-mmio slot takes it.
inline constexpr uint32_t kAcpiGedIrq = 14;
// PCI configuration mechanism #1 (CONFIG_ADDRESS at 0xCF8, data at 0xCFC).
inline constexpr uint16_t kPciConfigIoPort = 0xcf8;
inline constexpr uint16_t kPciConfigIoSize = 8;
// Ports for PCI I/O BARs (a passed-through device's), above every legacy port.
inline constexpr uint32_t kPciIoBase = 0xc000;
inline constexpr uint32_t kPciIoSize = 0x4000;

// PCI INTx: the root's INTA-D are I/O APIC GSIs 20-23 (level, active-low by
// the _PRT convention; KVM ignores polarity). Slot s pin p (0 = INTA) uses
// GSI kPciIntxGsiBase + (s + p) % 4, the swizzle devices/pci/intx_router.h
// implements. 20-23 is the top of KVM's 24-pin I/O APIC, clear of the ISA
// IRQs and of virtio-mmio GSIs counted up from 16.
inline constexpr uint32_t kPciIntxGsiBase = 20;
inline constexpr uint32_t kPciIntxGsiCount = 4;

// Interrupts. The IOAPIC has 24 pins; GSIs from 24 up carry MSI routes.
inline constexpr uint32_t kIoapicPins = 24;
// Level-triggered lines for virtio-mmio devices, one each: the IOAPIC-only
// pins PCI INTx (kPciIntxGsiBase...) leaves free, then ISA IRQs no Skiff
// device uses.
inline constexpr uint32_t kVirtioMmioGsis[] = {16, 17, 18, 19, 5, 6, 7, 10, 11};

}  // namespace skiff::x86

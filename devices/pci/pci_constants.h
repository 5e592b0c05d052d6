// Facts from the PCI Local Bus 3.0 / PCI Express Base specifications that
// the root complex, the config-space helper and the devices share: register
// offsets of the type-0 header, command/status bits, BAR flag bits,
// capability IDs and the BDF packing. Typed constants instead of the
// untyped macros in <linux/pci_regs.h>.
#pragma once

#include <cstdint>

namespace skiff::pci {

// One function's configuration space (PCIe: 4 KiB, the first 256 bytes
// also reachable through ports 0xCF8/0xCFC).
inline constexpr uint32_t kConfigSpaceSize = 4096;
inline constexpr uint32_t kLegacyConfigSpaceSize = 256;

inline constexpr uint8_t kDevicesPerBus = 32;
inline constexpr uint8_t kFunctionsPerDevice = 8;
inline constexpr int kNumBars = 6;

// Type-0 header registers.
inline constexpr uint32_t kVendorId = 0x00;       // 16 bits
inline constexpr uint32_t kDeviceId = 0x02;       // 16 bits
inline constexpr uint32_t kCommand = 0x04;        // 16 bits
inline constexpr uint32_t kStatus = 0x06;         // 16 bits
inline constexpr uint32_t kRevisionId = 0x08;     // 8 bits
inline constexpr uint32_t kClassProgIf = 0x09;    // 8 bits; class code 0x09-0x0b
inline constexpr uint32_t kCacheLineSize = 0x0c;  // 8 bits
inline constexpr uint32_t kHeaderType = 0x0e;     // 8 bits
inline constexpr uint32_t kBar0 = 0x10;           // six 32-bit BARs
inline constexpr uint32_t kBarsEnd = 0x28;
inline constexpr uint32_t kSubsystemVendorId = 0x2c;
inline constexpr uint32_t kSubsystemId = 0x2e;
inline constexpr uint32_t kExpansionRom = 0x30;
inline constexpr uint32_t kCapabilitiesPointer = 0x34;
inline constexpr uint32_t kInterruptLine = 0x3c;
inline constexpr uint32_t kInterruptPin = 0x3d;
inline constexpr uint32_t kHeaderEnd = 0x40;  // capabilities start here

// Command register bits.
inline constexpr uint16_t kCommandIo = 1 << 0;
inline constexpr uint16_t kCommandMemory = 1 << 1;
inline constexpr uint16_t kCommandBusMaster = 1 << 2;
inline constexpr uint16_t kCommandParity = 1 << 6;
inline constexpr uint16_t kCommandSerr = 1 << 8;
inline constexpr uint16_t kCommandIntxDisable = 1 << 10;
// The bits a virtual function implements; the rest read as zero.
inline constexpr uint16_t kCommandWritable = kCommandIo | kCommandMemory | kCommandBusMaster |
                                             kCommandParity | kCommandSerr | kCommandIntxDisable;

// Status register bits (all read-only here: Skiff never signals errors).
inline constexpr uint16_t kStatusInterrupt = 1 << 3;
inline constexpr uint16_t kStatusCapList = 1 << 4;

// BAR low bits.
inline constexpr uint32_t kBarIoSpace = 0x1;
inline constexpr uint32_t kBarMem64 = 0x4;
inline constexpr uint32_t kBarPrefetchable = 0x8;

// Interrupt pin values.
inline constexpr uint8_t kInterruptPinNone = 0;
inline constexpr uint8_t kInterruptPinA = 1;

// Capability IDs.
inline constexpr uint8_t kCapIdVendor = 0x09;
inline constexpr uint8_t kCapIdMsix = 0x11;

// MSI-X capability layout (offsets from the capability) and table format.
inline constexpr uint32_t kMsixMessageControl = 2;
inline constexpr uint32_t kMsixTableOffsetBir = 4;
inline constexpr uint32_t kMsixPbaOffsetBir = 8;
inline constexpr uint32_t kMsixCapabilitySize = 12;
inline constexpr uint16_t kMsixControlTableSizeMask = 0x07ff;
inline constexpr uint16_t kMsixControlFunctionMask = 1 << 14;
inline constexpr uint16_t kMsixControlEnable = 1 << 15;
inline constexpr uint32_t kMsixMaxVectors = 2048;
inline constexpr uint32_t kMsixEntrySize = 16;
inline constexpr uint32_t kMsixEntryVectorControl = 12;
inline constexpr uint32_t kMsixVectorMasked = 1;

// Bus/device/function as one 16-bit requester ID.
constexpr uint16_t Bdf(uint8_t bus, uint8_t device, uint8_t function) {
  return static_cast<uint16_t>(bus << 8 | (device & 0x1f) << 3 | (function & 0x7));
}

}  // namespace skiff::pci

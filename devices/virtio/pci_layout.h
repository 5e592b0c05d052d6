// Where things sit in a virtio-pci device (virtio 1.2 §4.1): the IDs, and
// the layout of its one 64-bit memory BAR. Each structure starts on its own
// page so a guest can map them separately and a BAR move never splits one.
#pragma once

#include <cstdint>

namespace skiff::virtio::pci_layout {

inline constexpr uint16_t kVendorId = 0x1af4;
inline constexpr uint16_t kDeviceIdBase = 0x1040;  // + virtio device ID
inline constexpr uint8_t kRevision = 1;            // non-transitional
// Non-transitional devices "SHOULD have a PCI Subsystem Device ID of 0x40
// or higher" (§4.1.2.1).
inline constexpr uint16_t kSubsystemId = 0x40;

inline constexpr int kBar = 0;
inline constexpr uint64_t kRegionAlign = 0x1000;
inline constexpr uint64_t kCommonOffset = 0x0000;
inline constexpr uint64_t kCommonSize = 0x38;  // struct virtio_pci_common_cfg
inline constexpr uint64_t kIsrOffset = 0x1000;
inline constexpr uint64_t kIsrSize = 1;
inline constexpr uint64_t kDeviceOffset = 0x2000;
inline constexpr uint64_t kDeviceMaxSize = 0x1000;
inline constexpr uint64_t kNotifyOffset = 0x3000;
// Each queue gets its own notify address (queue_notify_off = queue index),
// so one ioeventfd per queue needs no datamatch.
inline constexpr uint32_t kNotifyOffMultiplier = 4;
// The driver writes the 16-bit queue index there (no NOTIFICATION_DATA).
inline constexpr uint32_t kNotifyWriteSize = 2;

// Common configuration register offsets (struct virtio_pci_common_cfg).
inline constexpr uint32_t kDeviceFeatureSelect = 0x00;
inline constexpr uint32_t kDeviceFeature = 0x04;
inline constexpr uint32_t kDriverFeatureSelect = 0x08;
inline constexpr uint32_t kDriverFeature = 0x0c;
inline constexpr uint32_t kMsixConfig = 0x10;
inline constexpr uint32_t kNumQueues = 0x12;
inline constexpr uint32_t kDeviceStatus = 0x14;
inline constexpr uint32_t kConfigGeneration = 0x15;
inline constexpr uint32_t kQueueSelect = 0x16;
inline constexpr uint32_t kQueueSize = 0x18;
inline constexpr uint32_t kQueueMsixVector = 0x1a;
inline constexpr uint32_t kQueueEnable = 0x1c;
inline constexpr uint32_t kQueueNotifyOff = 0x1e;
inline constexpr uint32_t kQueueDesc = 0x20;
inline constexpr uint32_t kQueueDriver = 0x28;
inline constexpr uint32_t kQueueDevice = 0x30;

// Vendor capability layout (struct virtio_pci_cap and friends), offsets
// from the capability start.
inline constexpr uint32_t kCapLength = 2;
inline constexpr uint32_t kCapCfgType = 3;
inline constexpr uint32_t kCapBar = 4;
inline constexpr uint32_t kCapOffset = 8;
inline constexpr uint32_t kCapLengthField = 12;
inline constexpr uint32_t kCapSize = 16;
inline constexpr uint32_t kNotifyCapMultiplier = 16;
inline constexpr uint32_t kPciCfgCapData = 16;
inline constexpr uint32_t kExtendedCapSize = 20;  // notify and PCI_CFG caps

}  // namespace skiff::virtio::pci_layout

#include "devices/pci/host_bridge.h"

#include <algorithm>

namespace skiff::pci {

HostBridge::HostBridge()
    : config_(PciIds{.vendor_id = kHostBridgeVendorId,
                     .device_id = kHostBridgeDeviceId,
                     .class_code = kClassHostBridge,
                     .subsystem_vendor_id = kHostBridgeVendorId,
                     .subsystem_id = kHostBridgeDeviceId}) {}

uint32_t HostBridge::ReadConfig(uint32_t offset, uint32_t size) {
  std::lock_guard lock(mutex_);
  return config_.Read(offset, size);
}

void HostBridge::WriteConfig(uint32_t offset, uint32_t size, uint32_t value) {
  std::lock_guard lock(mutex_);
  config_.Write(offset, size, value);
}

void HostBridge::ReadBar(int, uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);  // never mapped: it has no BARs
}

}  // namespace skiff::pci

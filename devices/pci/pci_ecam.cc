#include "devices/pci/pci_ecam.h"

#include <algorithm>

#include "devices/pci/pci_config_space.h"

namespace skiff::pci {
namespace {

constexpr uint64_t kBuses = 256;

struct EcamAddress {
  uint8_t bus, device, function;
  uint32_t reg;
};

bool Decode(uint64_t offset, size_t size, EcamAddress* out) {
  if (offset >= kBuses * kEcamBytesPerBus) return false;
  out->bus = offset >> 20;
  out->device = (offset >> 15) & 0x1f;
  out->function = (offset >> 12) & 0x7;
  out->reg = offset & 0xfff;
  return PciConfigSpace::ValidAccess(out->reg, size);
}

}  // namespace

void PciEcam::Read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
  EcamAddress a;
  if (!Decode(offset, data.size(), &a)) return;
  const uint32_t value = root_->ReadConfig(a.bus, a.device, a.function, a.reg, data.size());
  for (size_t i = 0; i < data.size(); ++i) data[i] = value >> (8 * i);
}

void PciEcam::Write(uint64_t offset, std::span<const uint8_t> data) {
  EcamAddress a;
  if (!Decode(offset, data.size(), &a)) return;
  uint32_t value = 0;
  for (size_t i = 0; i < data.size(); ++i) value |= uint32_t{data[i]} << (8 * i);
  root_->WriteConfig(a.bus, a.device, a.function, a.reg, data.size(), value);
}

}  // namespace skiff::pci

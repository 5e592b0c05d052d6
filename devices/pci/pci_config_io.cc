#include "devices/pci/pci_config_io.h"

#include <algorithm>

namespace skiff::pci {
namespace {

constexpr uint64_t kDataOffset = 4;

uint32_t Load(std::span<const uint8_t> data) {
  uint32_t value = 0;
  for (size_t i = 0; i < data.size() && i < 4; ++i) value |= uint32_t{data[i]} << (8 * i);
  return value;
}

void Store(uint32_t value, std::span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) data[i] = i < 4 ? value >> (8 * i) : 0xff;
}

// The data-window access `offset` (relative to 0xCF8) and `size` select,
// if it is a valid one.
bool DataAccess(uint64_t offset, size_t size, uint32_t* byte_in_dword) {
  if (offset < kDataOffset || offset >= kDataOffset + 4) return false;
  if (size != 1 && size != 2 && size != 4) return false;
  const uint32_t byte = offset - kDataOffset;
  if (byte + size > 4) return false;
  *byte_in_dword = byte;
  return true;
}

}  // namespace

void PciConfigIo::Read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
  if (offset == 0 && data.size() == 4) {
    Store(address_.load(), data);
    return;
  }
  uint32_t byte;
  if (!DataAccess(offset, data.size(), &byte)) return;
  const uint32_t address = address_.load();
  if (!(address & kEnable)) return;
  const uint32_t reg = (address & 0xfc) | ((address >> 16) & 0xf00);
  Store(root_->ReadConfig((address >> 16) & 0xff, (address >> 11) & 0x1f, (address >> 8) & 0x7,
                          reg + byte, data.size()),
        data);
}

void PciConfigIo::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset == 0 && data.size() == 4) {
    address_.store(Load(data) & kAddressMask);
    return;
  }
  // Byte/word writes to 0xCF8-0xCFB (Linux's mechanism #2 probe) are not
  // CONFIG_ADDRESS accesses: ignored.
  uint32_t byte;
  if (!DataAccess(offset, data.size(), &byte)) return;
  const uint32_t address = address_.load();
  if (!(address & kEnable)) return;
  const uint32_t reg = (address & 0xfc) | ((address >> 16) & 0xf00);
  root_->WriteConfig((address >> 16) & 0xff, (address >> 11) & 0x1f, (address >> 8) & 0x7,
                     reg + byte, data.size(), Load(data));
}

}  // namespace skiff::pci

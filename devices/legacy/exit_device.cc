#include "devices/legacy/exit_device.h"

#include <algorithm>
#include <utility>

#include "devices/legacy/le_value.h"

namespace skiff {

ExitDevice::ExitDevice(Decode decode, std::function<void(uint32_t value)> on_exit)
    : decode_(decode), on_exit_(std::move(on_exit)) {}

void ExitDevice::Read(uint64_t /*offset*/, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
}

void ExitDevice::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (decode_ == Decode::kRegisterAtZero && offset != 0) return;
  if (!IsPortSizedAccess(data.size())) return;
  if (on_exit_) on_exit_(LittleEndianValue(data));
}

}  // namespace skiff

#include "devices/legacy/isa_debug_exit.h"

#include <algorithm>
#include <utility>

#include "devices/legacy/le_value.h"

namespace skiff {

IsaDebugExit::IsaDebugExit(std::function<void(uint32_t value)> on_exit)
    : on_exit_(std::move(on_exit)) {}

void IsaDebugExit::Read(uint64_t /*offset*/, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
}

void IsaDebugExit::Write(uint64_t /*offset*/, std::span<const uint8_t> data) {
  if (!IsPortSizedAccess(data.size())) return;
  if (on_exit_) on_exit_(LittleEndianValue(data));
}

}  // namespace skiff

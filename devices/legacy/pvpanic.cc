#include "devices/legacy/pvpanic.h"

#include <algorithm>
#include <utility>

namespace skiff {

Pvpanic::Pvpanic(std::function<void()> on_panic,
                 std::function<void()> on_crash_loaded)
    : on_panic_(std::move(on_panic)),
      on_crash_loaded_(std::move(on_crash_loaded)) {}

void Pvpanic::Read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  if (offset != 0) {
    std::fill(data.begin(), data.end(), 0xff);
    return;
  }
  std::fill(data.begin(), data.end(), 0);
  data[0] = kSupportedEvents;
}

void Pvpanic::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty() || offset != 0) return;
  uint8_t events = data[0];
  if (events & kPanicked) {
    if (on_panic_) on_panic_();
  } else if (events & kCrashLoaded) {
    if (on_crash_loaded_) on_crash_loaded_();
  }
  // Unknown bits are ignored: a newer guest may offer events we never
  // advertised.
}

}  // namespace skiff

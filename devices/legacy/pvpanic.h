// QEMU's pvpanic I/O port (one byte; x86 port kPvpanicPort). The guest
// reads the events the host understands and writes one when it panics, so
// the VMM can report a crash instead of watching a guest that will never
// make progress. Linux finds it through the ACPI device QEMU0001 (whose _CRS
// names the port) and drives it with the pvpanic driver.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "vmm/bus.h"

namespace skiff {

class Pvpanic : public BusDevice {
 public:
  static constexpr uint64_t kRegisterCount = 1;
  static constexpr uint8_t kPanicked = 1 << 0;
  static constexpr uint8_t kCrashLoaded = 1 << 1;  // kdump takes over next
  static constexpr uint8_t kSupportedEvents = kPanicked | kCrashLoaded;

  // Callbacks run on the writing vCPU's thread. `on_crash_loaded` may be
  // empty: the guest is about to boot its crash kernel and needs nothing.
  explicit Pvpanic(std::function<void()> on_panic,
                   std::function<void()> on_crash_loaded = nullptr);

  // Offset 0 only; the value is the low byte, upper bytes read zero. Reads
  // elsewhere return 0xff, writes there are ignored.
  void Read(uint64_t offset, std::span<uint8_t> data) override;
  // A panic report wins over crash-loaded if a guest sets both bits: the
  // kernel panicked, and that is what the VMM must act on.
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  // Immutable after construction: no lock needed.
  const std::function<void()> on_panic_;
  const std::function<void()> on_crash_loaded_;
};

}  // namespace skiff

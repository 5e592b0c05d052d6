// QEMU's isa-debug-exit convention on x86 port I/O: a guest `out` of a
// byte, word or dword to the port ends the VM with exit status
// (value << 1) | 1, so test suites written for QEMU
// (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`) work under Skiff
// unchanged. Like QEMU, a write anywhere in the device's ports counts.
//
// The device only reports the value; vmm/guest_exit.h maps it to the
// exit status.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "vmm/bus.h"

namespace skiff {

class IsaDebugExit : public BusDevice {
 public:
  static constexpr uint64_t kPortCount = 4;

  // `on_exit` runs on the writing vCPU's thread with the value written.
  explicit IsaDebugExit(std::function<void(uint32_t value)> on_exit);

  // Reads as zero.
  void Read(uint64_t offset, std::span<uint8_t> data) override;
  // A byte, word or dword write is an exit request with that value.
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  const std::function<void(uint32_t)> on_exit_;  // immutable: no lock
};

}  // namespace skiff

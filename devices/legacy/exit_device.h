// A one-register device a guest writes to end the VM with a value of its
// choosing, so a CI job learns from Skiff's exit code what the guest's test
// run found. Two conventions share this shape:
//  - Skiff's exit device: a 32-bit MMIO register at offset 0, reached from
//    guest userspace without a driver through /dev/mem, e.g.
//    `busybox devmem ADDR 32 7`; x86 describes it in the ACPI DSDT (_HID
//    "SKIF0001"), ARM64 in the device tree.
//  - QEMU's isa-debug-exit on x86 ports (`-device isa-debug-exit,iobase=
//    0xf4,iosize=0x04`): like QEMU, a write to any of its ports counts, so
//    test suites written for QEMU work unchanged.
//
// The device only reports the value; what exit code it becomes is the VMM's
// policy (vmm/guest_exit.h).
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "vmm/bus.h"

namespace skiff {

class ExitDevice : public BusDevice {
 public:
  static constexpr uint64_t kRegisterSize = 4;      // Skiff's exit device
  static constexpr uint64_t kIsaDebugExitPorts = 4;  // QEMU's iosize

  enum class Decode {
    kRegisterAtZero,  // only a write at offset 0 is a value
    kAnyOffset,       // isa-debug-exit: every port of the device
  };

  // `on_exit` runs on the writing vCPU's thread with the value written.
  ExitDevice(Decode decode, std::function<void(uint32_t value)> on_exit);

  // Reads as zero.
  void Read(uint64_t offset, std::span<uint8_t> data) override;
  // A write of 1, 2 or 4 bytes where `decode` allows is a request to exit
  // with that value (little-endian, zero-extended). Other widths are
  // ignored: they are not a complete value.
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  const Decode decode_;
  const std::function<void(uint32_t)> on_exit_;  // immutable: no lock
};

}  // namespace skiff

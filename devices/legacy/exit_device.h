// Skiff's exit device: one 32-bit register a guest writes to end the VM
// with an exit status of its choosing, so a CI job learns from Skiff's exit
// code what the guest's test run found. Guest userspace reaches it without
// a driver through /dev/mem, e.g. `busybox devmem ADDR 32 7`.
//
// The device only reports the value; what exit code it becomes is the VMM's
// policy (vmm/guest_exit.h). It is arch-neutral: x86 describes it in the
// ACPI DSDT (_HID "SKIF0001"), ARM64 would in the device tree.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "vmm/bus.h"

namespace skiff {

class ExitDevice : public BusDevice {
 public:
  static constexpr uint64_t kRegisterSize = 4;

  // `on_exit` runs on the writing vCPU's thread with the value written.
  explicit ExitDevice(std::function<void(uint32_t value)> on_exit);

  // Reads as zero.
  void Read(uint64_t offset, std::span<uint8_t> data) override;
  // A write at offset 0 of 1, 2 or 4 bytes is a request to exit with that
  // value (little-endian, zero-extended). Writes elsewhere or of other
  // widths are ignored: they are not a complete value.
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  const std::function<void(uint32_t)> on_exit_;  // immutable: no lock
};

}  // namespace skiff

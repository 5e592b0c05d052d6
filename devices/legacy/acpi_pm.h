// Hardware-reduced ACPI power management: the FADT's sleep control, sleep
// status and reset registers, one byte each at consecutive offsets. Register
// the device as one kRegisterCount-byte range; the FADT must point its
// SLEEP_CONTROL_REG, SLEEP_STATUS_REG and RESET_REG at offsets 0, 1 and 2,
// and the DSDT's _S5_ package must carry the same SLP_TYP as
// Options::s5_sleep_type.
//
// Only soft-off (S5) and reset do anything. Other sleep states are refused
// in the gentlest way the spec allows: the guest "wakes" at once (WAK_STS
// set), so its wait-for-wake loop ends instead of spinning forever.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <span>

#include "vmm/bus.h"

namespace skiff {

class AcpiPm : public BusDevice {
 public:
  static constexpr uint64_t kSleepControlOffset = 0;
  static constexpr uint64_t kSleepStatusOffset = 1;
  static constexpr uint64_t kResetOffset = 2;
  static constexpr uint64_t kRegisterCount = 3;

  struct Options {
    // Values the ACPI tables advertise (x86: kAcpiS5SleepType and
    // kAcpiResetValue from arch/x86_64/layout.h). Passed in so the device
    // stays architecture-neutral and the tables and device share one source.
    uint8_t s5_sleep_type = 0;
    uint8_t reset_value = 0;
    std::function<void()> on_poweroff = nullptr;
    std::function<void()> on_reset = nullptr;
    // Optional: told about refused sleep requests (SLP_TYP), e.g. to log.
    std::function<void(uint8_t sleep_type)> on_unsupported_sleep = nullptr;
  };

  // Callbacks run on the vCPU thread that wrote the register, without the
  // device lock held.
  explicit AcpiPm(Options options);

  // Accesses are byte-wise: byte i of `data` is the register at offset + i
  // (each register is one byte; offsets past the last read 0 and ignore
  // writes).
  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  // Helpers run with mutex_ held.
  enum class Action { kNone, kPoweroff, kReset, kUnsupportedSleep };
  Action WriteRegister(uint64_t offset, uint8_t value, uint8_t* sleep_type);

  const Options options_;
  std::mutex mutex_;  // guards everything below
  bool wake_status_ = false;
};

}  // namespace skiff

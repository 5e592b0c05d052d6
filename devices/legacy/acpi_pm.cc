#include "devices/legacy/acpi_pm.h"

#include <utility>
#include <vector>

namespace skiff {
namespace {

// ACPI 6.x, 4.8.3.7-4.8.3.8: sleep control and status register layouts.
constexpr uint8_t kSleepEnable = 1 << 5;  // SLP_EN
constexpr int kSleepTypeShift = 2;        // SLP_TYP, bits 4:2
constexpr uint8_t kSleepTypeMask = 0x7;
constexpr uint8_t kWakeStatus = 1 << 7;  // WAK_STS, write 1 to clear

}  // namespace

AcpiPm::AcpiPm(Options options) : options_(std::move(options)) {}

void AcpiPm::Read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    // Control and reset registers are write-only in effect (SLP_EN always
    // reads 0); status shows WAK_STS after a refused sleep.
    bool status = offset < kRegisterCount && offset + i == kSleepStatusOffset;
    data[i] = status && wake_status_ ? kWakeStatus : 0;
  }
}

void AcpiPm::Write(uint64_t offset, std::span<const uint8_t> data) {
  std::vector<std::pair<Action, uint8_t>> actions;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i) {
      if (offset >= kRegisterCount || i >= kRegisterCount - offset) break;
      uint8_t sleep_type = 0;
      Action action = WriteRegister(offset + i, data[i], &sleep_type);
      if (action != Action::kNone) actions.emplace_back(action, sleep_type);
    }
  }
  // Outside the lock: the VMM's shutdown path may take its own locks.
  for (auto [action, sleep_type] : actions) {
    switch (action) {
      case Action::kPoweroff:
        if (options_.on_poweroff) options_.on_poweroff();
        break;
      case Action::kReset:
        if (options_.on_reset) options_.on_reset();
        break;
      case Action::kUnsupportedSleep:
        if (options_.on_unsupported_sleep) {
          options_.on_unsupported_sleep(sleep_type);
        }
        break;
      case Action::kNone:
        break;
    }
  }
}

AcpiPm::Action AcpiPm::WriteRegister(uint64_t offset, uint8_t value,
                                     uint8_t* sleep_type) {
  switch (offset) {
    case kSleepControlOffset: {
      // Writing SLP_TYP without SLP_EN only stages the type; nothing happens.
      if (!(value & kSleepEnable)) return Action::kNone;
      *sleep_type = (value >> kSleepTypeShift) & kSleepTypeMask;
      if (*sleep_type == options_.s5_sleep_type) return Action::kPoweroff;
      wake_status_ = true;  // "slept" and woke at once
      return Action::kUnsupportedSleep;
    }
    case kSleepStatusOffset:
      if (value & kWakeStatus) wake_status_ = false;
      return Action::kNone;
    case kResetOffset:
      return value == options_.reset_value ? Action::kReset : Action::kNone;
  }
  return Action::kNone;
}

}  // namespace skiff

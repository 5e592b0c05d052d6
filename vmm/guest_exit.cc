#include "vmm/guest_exit.h"

#include "absl/strings/str_format.h"
#include "vmm/exit_codes.h"

namespace skiff {

ExitStatus ExitDeviceStatus(uint32_t value) {
  if (value == 0 || (value >= kGuestExitCodeMin && value <= kGuestExitCodeMax)) {
    return ExitStatus{static_cast<int>(value),
                      absl::StrFormat("guest chose exit code %u (exit device)", value)};
  }
  return ExitStatus{kExitGuestCrash,
                    absl::StrFormat("guest wrote %u to the exit device; guest exit codes are "
                                    "0 and %d-%d",
                                    value, kGuestExitCodeMin, kGuestExitCodeMax)};
}

ExitStatus IsaDebugExitStatus(uint32_t value) {
  const int code = static_cast<int>(((value << 1) | 1) & 0xff);
  return ExitStatus{code, absl::StrFormat("guest wrote 0x%x to isa-debug-exit: exit code %d "
                                          "((value << 1) | 1)",
                                          value, code)};
}

std::shared_ptr<ExitDevice> MakeExitDevice(Shutdown& shutdown) {
  return std::make_shared<ExitDevice>(ExitDevice::Decode::kRegisterAtZero,
                                      [&shutdown](uint32_t value) {
                                        ExitStatus status = ExitDeviceStatus(value);
                                        shutdown.Request(status.code, std::move(status.reason));
                                      });
}

std::shared_ptr<ExitDevice> MakeIsaDebugExit(Shutdown& shutdown) {
  return std::make_shared<ExitDevice>(ExitDevice::Decode::kAnyOffset,
                                      [&shutdown](uint32_t value) {
                                        ExitStatus status = IsaDebugExitStatus(value);
                                        shutdown.Request(status.code, std::move(status.reason));
                                      });
}

}  // namespace skiff

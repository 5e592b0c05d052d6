// The control socket's protocol (docs/control.md): one JSON object per line
// each way. A request names a command, e.g. {"command": "pause"}; the answer
// is {"ok": true, "command": "pause", "result": {...}} or {"ok": false,
// "error": "one line"}. An "id" in the request is echoed in the answer.
//
// Pure functions over text and a VmControl, so the parsing, the dispatch
// and every error are unit-tested with a fake VM.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace skiff {

// What the control socket may ask of a running VM. Calls come from the
// thread that serves the socket (the I/O thread).
class VmControl {
 public:
  virtual ~VmControl() = default;
  // {"state": "running"|"paused", "uptime_s": ..., ...}
  virtual nlohmann::json Status() = 0;
  // Every vCPU out of KVM_RUN and parked; returns once they all are.
  virtual absl::Status Pause() = 0;
  virtual absl::Status Resume() = 0;
  // Asks the guest for an orderly poweroff (its power button), or with
  // `force` stops the VM at once. Returns what was done, for the answer's
  // "requested": "stop", or which button was pressed ("acpi power button",
  // "gpio power key").
  virtual absl::StatusOr<std::string> Shutdown(bool force) = 0;
  virtual absl::Status Reboot() = 0;
  // Devices, memory, vCPUs with their host thread ids.
  virtual nlohmann::json Info() = 0;
};

enum class ControlCommand { kStatus, kPause, kResume, kShutdown, kReboot, kInfo };

struct ControlRequest {
  ControlCommand command = ControlCommand::kStatus;
  bool force = false;                // shutdown only
  std::optional<nlohmann::json> id;  // echoed back
};

// Longest request line the server reads; longer ones are refused.
inline constexpr size_t kMaxControlLine = 4096;

std::string_view ControlCommandName(ControlCommand command);
absl::StatusOr<ControlCommand> ParseControlCommand(std::string_view name);

// One request line (without its newline). Errors are one line.
absl::StatusOr<ControlRequest> ParseControlRequest(std::string_view line);

// The request line `skiff ctl` sends (without the newline).
std::string MakeControlRequest(std::string_view command, bool force);

// Parses `line`, runs it on `vm`, returns the answer line (no newline).
std::string HandleControlLine(std::string_view line, VmControl& vm);

// An error answer, for failures before a request could be handled.
std::string ControlErrorLine(std::string_view message);

}  // namespace skiff

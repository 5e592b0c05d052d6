// The control socket's view of a Machine: VmControl's commands mapped onto
// the machine's pause gate, power button, shutdown and state.
#pragma once

#include "vmm/control_protocol.h"

namespace skiff {

class Machine;

class MachineControl : public VmControl {
 public:
  explicit MachineControl(Machine& machine) : machine_(machine) {}

  nlohmann::json Status() override;
  absl::Status Pause() override;
  absl::Status Resume() override;
  absl::StatusOr<std::string> Shutdown(bool force) override;
  absl::Status Reboot() override;
  nlohmann::json Info() override;

 private:
  Machine& machine_;
};

}  // namespace skiff

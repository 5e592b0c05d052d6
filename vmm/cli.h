// The command line: `skiff run ...`, `skiff ctl ...`, `skiff --help`, `skiff --version`.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "vmm/config.h"

namespace skiff {

struct CliCommand {
  // kPrintCmdline: build the machine as for kRun, print the kernel command
  // line the guest would get, and exit without starting it.
  // kCtl: `skiff ctl`, a client of a running Skiff's --api-socket.
  enum class Kind { kHelp, kVersion, kRun, kPrintCmdline, kCtl };
  Kind kind = Kind::kHelp;
  std::string text;   // help or version text to print
  VmConfig config;    // for kRun and kPrintCmdline
  // For kCtl: the socket, the command word (not checked here: the server
  // names unknown commands) and shutdown's --force.
  std::string api_socket;
  std::string ctl_command;
  bool ctl_force = false;
};

// Errors are usage errors (exit code 2); their message is one line.
absl::StatusOr<CliCommand> ParseCli(const std::vector<std::string>& args);

}  // namespace skiff

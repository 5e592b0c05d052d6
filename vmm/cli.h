// The command line: `skiff run ...`, `skiff --help`, `skiff --version`.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "vmm/config.h"

namespace skiff {

struct CliCommand {
  // kPrintCmdline: build the machine as for kRun, print the kernel command
  // line the guest would get, and exit without starting it.
  enum class Kind { kHelp, kVersion, kRun, kPrintCmdline };
  Kind kind = Kind::kHelp;
  std::string text;   // help or version text to print
  VmConfig config;    // for kRun and kPrintCmdline
};

// Errors are usage errors (exit code 2); their message is one line.
absl::StatusOr<CliCommand> ParseCli(const std::vector<std::string>& args);

}  // namespace skiff

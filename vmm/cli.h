// The command line: `skiff run ...`, `skiff --help`, `skiff --version`.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "vmm/config.h"

namespace skiff {

struct CliCommand {
  enum class Kind { kHelp, kVersion, kRun };
  Kind kind = Kind::kHelp;
  std::string text;   // help or version text to print
  VmConfig config;    // for kRun
};

// Errors are usage errors (exit code 2); their message is one line.
absl::StatusOr<CliCommand> ParseCli(const std::vector<std::string>& args);

}  // namespace skiff

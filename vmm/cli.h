// The command line: `skiff run ...`, `skiff ctl ...`, `skiff --help`, `skiff --version`.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "vmm/config.h"
#include "vmm/config_file.h"

namespace skiff {

struct CliCommand {
  // kPrintCmdline: build the machine as for kRun, print the kernel command
  // line the guest would get, and exit without starting it.
  // kCtl: `skiff ctl`, a client of a running Skiff's --api-socket.
  // kDumpConfig: print `text`, the effective configuration (--dump-config).
  enum class Kind { kHelp, kVersion, kRun, kPrintCmdline, kDumpConfig, kCtl };
  Kind kind = Kind::kHelp;
  std::string text;   // help, version or configuration text to print
  VmConfig config;    // for kRun, kPrintCmdline and kDumpConfig
  // For kCtl: the socket, the command word (not checked here: the server
  // names unknown commands) and shutdown's --force.
  std::string api_socket;
  std::string ctl_command;
  bool ctl_force = false;
};

// Errors are usage errors (exit code 2); their message is one line.
// Reads the --config file, if one is named.
absl::StatusOr<CliCommand> ParseCli(const std::vector<std::string>& args);

// Every `skiff run` option a --config file may name (all but --help,
// --config, --dump-config and --print-cmdline), derived from the option
// table: an option added there is a config key with no further work.
// Conventions the derivation reads from an option's argument name: FILE,
// PATH, DIR or SOCKET is a path (resolved against the config file's
// directory), SPEC a "k=v,..." list (an object in JSON; its path= and
// file= items are paths), N a count (dumped as a number).
std::vector<OptionSpec> RunOptionSpecs();

}  // namespace skiff

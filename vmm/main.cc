// skiff: parse the command line, build the machine, run it, exit with a code
// that says how the guest ended (see vmm/exit_codes.h).
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "vmm/cli.h"
#include "vmm/exit_codes.h"
#include "vmm/log.h"
#include "vmm/machine.h"

int main(int argc, char** argv) {
  using namespace skiff;
  // A closed stdout (a CI runner that went away) must not kill us mid-run.
  signal(SIGPIPE, SIG_IGN);

  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<CliCommand> command = ParseCli(args);
  if (!command.ok()) {
    std::fprintf(stderr, "skiff: %s\n", std::string(command.status().message()).c_str());
    return kExitUsage;
  }
  if (command->kind != CliCommand::Kind::kRun) {
    std::fputs(command->text.c_str(), stdout);
    return kExitOk;
  }

  SetLogLevel(command->config.log_level);
  LOG_INFO("vmm", "skiff starting");
  absl::StatusOr<std::unique_ptr<Machine>> machine = Machine::Create(command->config);
  if (!machine.ok()) {
    std::fprintf(stderr, "skiff: %s\n", std::string(machine.status().message()).c_str());
    return machine.status().code() == absl::StatusCode::kInvalidArgument
               ? kExitUsage
               : kExitVmmError;
  }
  ExitStatus status = (*machine)->Run();
  machine->reset();  // restores the terminal before we print
  if (status.code != kExitOk) {
    std::fprintf(stderr, "skiff: %s\n", status.reason.c_str());
  }
  return status.code;
}

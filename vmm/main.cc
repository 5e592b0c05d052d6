// skiff: parse the command line, build the machine, run it, exit with a code
// that says how the guest ended (see vmm/exit_codes.h).
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "vmm/boot_timeline.h"
#include "nlohmann/json.hpp"
#include "vmm/cli.h"
#include "vmm/control_server.h"
#include "vmm/exit_codes.h"
#include "vmm/fatal_signal_report.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/run_monitor.h"

namespace {

using namespace skiff;

void PrintError(const absl::Status& status) {
  std::fprintf(stderr, "skiff: %s\n", std::string(status.message()).c_str());
}

// Operator mistakes (bad values, missing files) are usage errors.
int SetupExitCode(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitVmmError;
}

// `skiff ctl`: one request, its answer on stdout; 0 only if Skiff says ok.
int Ctl(const CliCommand& command) {
  absl::StatusOr<std::string> answer = SendControlRequest(
      command.api_socket, MakeControlRequest(command.ctl_command, command.ctl_force));
  if (!answer.ok()) {
    PrintError(answer.status());
    return kExitVmmError;
  }
  std::printf("%s\n", answer->c_str());
  nlohmann::json parsed = nlohmann::json::parse(*answer, nullptr, /*allow_exceptions=*/false);
  const bool ok = parsed.is_object() && parsed.contains("ok") && parsed["ok"].is_boolean() &&
                  parsed["ok"].get<bool>();
  if (!ok && parsed.is_object() && parsed.contains("error") && parsed["error"].is_string()) {
    std::fprintf(stderr, "skiff: %s\n", parsed["error"].get<std::string>().c_str());
  }
  return ok ? kExitOk : kExitVmmError;
}

int PrintCmdline(VmConfig config) {
  config.api_socket.reset();  // nothing will be served: claim no socket
  // The command line is only final once every device is placed, so build
  // the machine (without starting it) rather than guess.
  absl::StatusOr<std::unique_ptr<Machine>> machine = Machine::Create(config);
  if (!machine.ok()) {
    PrintError(machine.status());
    return SetupExitCode(machine.status());
  }
  std::string cmdline = (*machine)->KernelCmdline(config.cmdline);
  machine->reset();  // restores the terminal before we print
  std::printf("%s\n", cmdline.c_str());
  return kExitOk;
}

int Run(const VmConfig& config) {
  // The monitor opens the operator's output files first: a typo in a path
  // should not cost a KVM set-up.
  absl::StatusOr<std::unique_ptr<RunMonitor>> monitor = RunMonitor::Create(config);
  if (!monitor.ok()) {
    PrintError(monitor.status());
    return SetupExitCode(monitor.status());
  }
  // Declared before the machine, which calls into it, so it outlives it.
  absl::StatusOr<std::unique_ptr<BootTimeline>> timeline =
      BootTimeline::Create(ProcessStartSeconds(), config.userspace_marker, MonotonicSeconds);
  if (!timeline.ok()) {
    PrintError(timeline.status());
    return SetupExitCode(timeline.status());
  }
  (*timeline)->Started();
  ExitStatus status;
  absl::StatusOr<std::unique_ptr<Machine>> machine = Machine::Create(config);
  // At warn and error the timeline would log nothing: leave the console
  // and the vCPU unwatched.
  if (machine.ok() && GetLogLevel() >= LogLevel::kInfo) (*timeline)->Attach(**machine);
  absl::Status attached = machine.ok() ? (*monitor)->Attach(**machine) : machine.status();
  if (attached.ok()) {
    status = (*monitor)->Finish((*machine)->Run());
  } else {
    status = ExitStatus{SetupExitCode(attached), std::string(attached.message())};
  }
  if (machine.ok()) machine->reset();  // restores the terminal before we print
  if (status.code != kExitOk) {
    std::fprintf(stderr, "skiff: %s\n", status.reason.c_str());
  }
  absl::Status reported = (*monitor)->WriteReport(status);
  if (!reported.ok()) {
    PrintError(reported);
    if (status.code == kExitOk) return kExitVmmError;  // CI must not miss its report
  }
  return status.code;
}

}  // namespace

int main(int argc, char** argv) {
  // A closed stdout (a CI runner that went away) must not kill us mid-run.
  signal(SIGPIPE, SIG_IGN);
  // A crash says where (signal, address, thread, backtrace) instead of
  // leaving only the shell's "Segmentation fault".
  absl::Status report = InstallFatalSignalReport();
  if (!report.ok()) {
    PrintError(report);
    return kExitVmmError;
  }

  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<CliCommand> command = ParseCli(args);
  if (!command.ok()) {
    PrintError(command.status());
    return kExitUsage;
  }
  switch (command->kind) {
    case CliCommand::Kind::kHelp:
    case CliCommand::Kind::kVersion:
    case CliCommand::Kind::kDumpConfig:
      std::fputs(command->text.c_str(), stdout);
      return kExitOk;
    case CliCommand::Kind::kCtl:
      return Ctl(*command);
    case CliCommand::Kind::kPrintCmdline:
    case CliCommand::Kind::kRun:
      break;
  }
  SetLogLevel(command->config.log_level);
  if (command->config.log_file) {
    absl::Status opened = OpenLogFile(*command->config.log_file);
    if (!opened.ok()) {
      PrintError(opened);
      return kExitUsage;
    }
  }
  if (command->kind == CliCommand::Kind::kPrintCmdline) return PrintCmdline(command->config);
  return Run(command->config);
}

// The CI side of one run (CiOptions in vmm/config.h): watches the guest
// console for --expect / --expect-fail, keeps --serial-log, enforces
// --timeout, remembers the console tail, and writes --junit at the end.
//
//   monitor = RunMonitor::Create(config)   // files opened, patterns compiled
//   machine = Machine::Create(config)
//   monitor->Attach(*machine)              // the run's clock starts
//   status = monitor->Finish(machine->Run())
//   machine.reset(); monitor->WriteReport(status)
//
// The machine's console and event loop call into the monitor, so the
// machine must be destroyed first.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "vmm/config.h"
#include "vmm/console_matcher.h"
#include "vmm/line_splitter.h"
#include "vmm/serial_log.h"
#include "vmm/shutdown.h"
#include "vmm/unique_fd.h"

namespace skiff {

class Console;
class EventLoop;
class Machine;

class RunMonitor {
 public:
  // The console tail kept for the JUnit report.
  static constexpr size_t kConsoleTailBytes = 16 * 1024;

  // Opens --serial-log and --junit (created or truncated) and compiles the
  // patterns, so operator mistakes fail before any KVM set-up.
  static absl::StatusOr<std::unique_ptr<RunMonitor>> Create(const VmConfig& config);
  RunMonitor(const VmConfig& config, ConsoleMatcher matcher, std::optional<SerialLog> serial_log,
             UniqueFd junit);
  ~RunMonitor();

  // Watches `machine`'s console output and arms --timeout on its event
  // loop; the run's clock starts now. Call right before Machine::Run.
  absl::Status Attach(Machine& machine);
  // The same with the parts spelled out (for tests): stop requests go to
  // `shutdown`, output comes from `console`, the timer runs on `loop`.
  absl::Status Attach(Shutdown& shutdown, Console& console, EventLoop& loop,
                      std::string kernel_cmdline);

  // Guest console output; the console serializes calls.
  void OnOutput(std::span<const uint8_t> bytes);

  // The run's final status: `status` as the machine ended, except that an
  // end with 0 is a console check failure (kExitConsoleCheck) when an
  // --expect pattern was never seen or an --expect-fail pattern was.
  ExitStatus Finish(const ExitStatus& status);

  // Writes --junit, if asked, for a run that ended with `status`.
  absl::Status WriteReport(const ExitStatus& status);

  // Guest output seen so far, at most the last kConsoleTailBytes, cut at a
  // line start and without CRs.
  std::string ConsoleTail() const;

 private:
  absl::Duration Elapsed() const;
  // Matches the lines completed by `bytes`, which arrived `at`; with
  // mutex_ held.
  void MatchLines(std::span<const uint8_t> bytes, absl::Duration at);

  const VmConfig config_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  absl::Time wall_start_ = absl::Now();
  Shutdown* shutdown_ = nullptr;
  UniqueFd timer_;
  UniqueFd junit_;
  std::string kernel_cmdline_;
  std::optional<absl::Duration> duration_;  // set by Finish

  mutable std::mutex mutex_;
  ConsoleMatcher matcher_;
  std::optional<SerialLog> serial_log_;
  LineSplitter lines_;
  std::string tail_;
  bool tail_truncated_ = false;
};

}  // namespace skiff

// The boot's milestones, logged at info as they happen (docs/logging.md):
//   VMM start                  the process started
//   first KVM_RUN              vCPU 0 enters the guest for the first time
//   first guest console output the first byte on the console
//   guest userspace            the first console line matching
//                              --userspace-marker
// each with the time since the milestone before it and since VMM start.
//
// Only attached at --log-level info or debug. Console output arrives on
// vCPU threads (a UART write is a vCPU exit), so the watcher costs one
// relaxed atomic load per output once userspace has been seen (or when no
// marker is set and the first output was logged), and a line split and an
// RE2 match per console line before that.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "vmm/line_splitter.h"

namespace re2 {
class RE2;
}

namespace skiff {

class Machine;

class BootTimeline {
 public:
  using Clock = std::function<double()>;  // seconds, on the log's clock

  // `vmm_start` on `clock`'s scale; `userspace_marker` is RE2 (empty: the
  // userspace milestone is never logged).
  static absl::StatusOr<std::unique_ptr<BootTimeline>> Create(double vmm_start,
                                                              const std::string& userspace_marker,
                                                              Clock clock);
  BootTimeline(double vmm_start, std::unique_ptr<re2::RE2> marker, Clock clock);
  ~BootTimeline();

  // Logs "VMM start".
  void Started();
  // Watches `machine`'s console and its first KVM_RUN. The timeline must
  // outlive the machine.
  void Attach(Machine& machine);

  // The hooks Attach installs, for tests.
  void OnFirstKvmRun();
  void OnConsoleOutput(std::span<const uint8_t> bytes);

 private:
  // Logs `what` at `now` with the time since the last milestone, then
  // `detail`.
  void Milestone(const std::string& what, double now, std::string_view detail = "");
  void MatchLines(std::span<const uint8_t> bytes, double now);

  const double vmm_start_;
  const std::unique_ptr<re2::RE2> marker_;
  const Clock clock_;
  std::atomic<bool> kvm_run_seen_{false};
  // True once the console needs no more watching.
  std::atomic<bool> console_done_{false};

  std::mutex mutex_;  // the fields below
  bool output_seen_ = false;
  double last_time_;
  std::string last_name_ = "VMM start";
  LineSplitter lines_;
};

}  // namespace skiff

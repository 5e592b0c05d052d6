#include "vmm/boot_timeline.h"

#include "absl/strings/str_format.h"
#include "re2/re2.h"
#include "vmm/console_matcher.h"
#include "vmm/log.h"
#include "vmm/machine.h"

namespace skiff {

absl::StatusOr<std::unique_ptr<BootTimeline>> BootTimeline::Create(
    double vmm_start, const std::string& userspace_marker, Clock clock) {
  std::unique_ptr<re2::RE2> marker;
  if (!userspace_marker.empty()) {
    absl::Status valid = ValidateConsolePattern("--userspace-marker", userspace_marker);
    if (!valid.ok()) return valid;
    marker = std::make_unique<re2::RE2>(userspace_marker, RE2::Quiet);
  }
  return std::make_unique<BootTimeline>(vmm_start, std::move(marker), std::move(clock));
}

BootTimeline::BootTimeline(double vmm_start, std::unique_ptr<re2::RE2> marker, Clock clock)
    : vmm_start_(vmm_start),
      marker_(std::move(marker)),
      clock_(std::move(clock)),
      last_time_(vmm_start) {}

BootTimeline::~BootTimeline() = default;

void BootTimeline::Started() { LOG_INFO("boot", "VMM start"); }

void BootTimeline::Attach(Machine& machine) {
  machine.SetFirstKvmRunHook([this] { OnFirstKvmRun(); });
  machine.console().AddOutputObserver(
      [this](std::span<const uint8_t> bytes) { OnConsoleOutput(bytes); });
}

void BootTimeline::Milestone(const std::string& what, double now, std::string_view detail) {
  if (last_name_ == "VMM start") {
    LOG_INFO("boot", "%s: %.6f s after VMM start%s", what, now - vmm_start_, detail);
  } else {
    LOG_INFO("boot", "%s: %.6f s after %s (%.6f s after VMM start)%s", what, now - last_time_,
             last_name_, now - vmm_start_, detail);
  }
  last_time_ = now;
  last_name_ = what;
}

void BootTimeline::OnFirstKvmRun() {
  if (kvm_run_seen_.exchange(true)) return;
  const double now = clock_();
  std::lock_guard lock(mutex_);
  Milestone("first KVM_RUN", now);
}

void BootTimeline::OnConsoleOutput(std::span<const uint8_t> bytes) {
  if (console_done_.load(std::memory_order_relaxed) || bytes.empty()) return;
  const double now = clock_();
  std::lock_guard lock(mutex_);
  if (!output_seen_) {
    output_seen_ = true;
    Milestone("first guest console output", now);
    if (!marker_) console_done_ = true;
  }
  if (marker_) MatchLines(bytes, now);
}

void BootTimeline::MatchLines(std::span<const uint8_t> bytes, double now) {
  lines_.Feed(bytes, [&](std::string_view line) {
    if (console_done_.load(std::memory_order_relaxed)) return;
    if (!RE2::PartialMatch(re2::StringPiece(line.data(), line.size()), *marker_)) return;
    console_done_ = true;
    constexpr size_t kMaxQuoted = 120;
    Milestone("guest userspace", now,
              absl::StrFormat("; console: \"%s%s\"", line.substr(0, kMaxQuoted),
                              line.size() > kMaxQuoted ? "..." : ""));
  });
}

}  // namespace skiff

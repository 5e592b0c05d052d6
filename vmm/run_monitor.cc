#include "vmm/run_monitor.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "vmm/exit_codes.h"
#include "vmm/junit_report.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/output_file.h"

namespace skiff {
namespace {

// A console line quoted in a one-line message.
std::string Quote(std::string_view line) {
  constexpr size_t kMax = 200;
  std::string text(line.substr(0, kMax));
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return line.size() > kMax ? absl::StrCat(text, "...") : text;
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::vector<JunitPattern> ToJunit(const std::vector<ConsoleMatcher::Pattern>& patterns) {
  std::vector<JunitPattern> out;
  for (const ConsoleMatcher::Pattern& p : patterns) {
    out.push_back({p.regex, p.seen, p.line, absl::ToDoubleSeconds(p.seen_at)});
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RunMonitor>> RunMonitor::Create(const VmConfig& config) {
  const CiOptions& ci = config.ci;
  absl::StatusOr<ConsoleMatcher> matcher = ConsoleMatcher::Create(ci.expect, ci.expect_fail);
  if (!matcher.ok()) return matcher.status();
  std::optional<SerialLog> serial_log;
  if (ci.serial_log) {
    absl::StatusOr<SerialLog> log = SerialLog::Open(*ci.serial_log, ci.serial_log_timestamps);
    if (!log.ok()) return log.status();
    serial_log.emplace(*std::move(log));
  }
  UniqueFd junit;
  if (ci.junit) {
    absl::StatusOr<UniqueFd> fd = CreateOutputFile("--junit", *ci.junit);
    if (!fd.ok()) return fd.status();
    junit = *std::move(fd);
  }
  return std::make_unique<RunMonitor>(config, *std::move(matcher), std::move(serial_log),
                                      std::move(junit));
}

RunMonitor::RunMonitor(const VmConfig& config, ConsoleMatcher matcher,
                       std::optional<SerialLog> serial_log, UniqueFd junit)
    : config_(config),
      junit_(std::move(junit)),
      matcher_(std::move(matcher)),
      serial_log_(std::move(serial_log)) {}

RunMonitor::~RunMonitor() = default;

absl::Duration RunMonitor::Elapsed() const {
  return absl::FromChrono(std::chrono::steady_clock::now() - start_);
}

absl::Status RunMonitor::Attach(Machine& machine) {
  return Attach(machine.shutdown(), machine.console(), machine.event_loop(),
                machine.KernelCmdline(config_.cmdline));
}

absl::Status RunMonitor::Attach(Shutdown& shutdown, Console& console, EventLoop& loop,
                                std::string kernel_cmdline) {
  start_ = std::chrono::steady_clock::now();
  wall_start_ = absl::Now();
  shutdown_ = &shutdown;
  kernel_cmdline_ = std::move(kernel_cmdline);
  const bool has_patterns = !config_.ci.expect.empty() || !config_.ci.expect_fail.empty();
  if (serial_log_ || junit_ || has_patterns) {
    console.AddOutputObserver([this](std::span<const uint8_t> bytes) { OnOutput(bytes); });
  }
  if (!config_.ci.timeout) return absl::OkStatus();

  timer_ = UniqueFd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!timer_) {
    return absl::InternalError(absl::StrFormat("--timeout: timerfd: %s", std::strerror(errno)));
  }
  const absl::Duration timeout = *config_.ci.timeout;
  itimerspec spec{};
  spec.it_value = absl::ToTimespec(timeout);
  if (::timerfd_settime(timer_.get(), 0, &spec, nullptr) != 0) {
    return absl::InternalError(
        absl::StrFormat("--timeout: timerfd_settime: %s", std::strerror(errno)));
  }
  return loop.Add(timer_.get(), EPOLLIN, [this, timeout](uint32_t) {
    uint64_t expirations;
    if (::read(timer_.get(), &expirations, sizeof(expirations)) != sizeof(expirations)) return;
    shutdown_->Request(kExitTimeout, absl::StrFormat("timeout: the guest was still running after "
                                                     "%s (--timeout)",
                                                     absl::FormatDuration(timeout)));
  });
}

void RunMonitor::OnOutput(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mutex_);
  const absl::Duration at = Elapsed();
  if (serial_log_) serial_log_->Write(bytes, at);
  tail_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (tail_.size() > 2 * kConsoleTailBytes) {
    tail_.erase(0, tail_.size() - kConsoleTailBytes);
    tail_truncated_ = true;
  }
  MatchLines(bytes, at);
}

void RunMonitor::MatchLines(std::span<const uint8_t> bytes, absl::Duration at) {
  if (matcher_.expected().empty() && matcher_.fail_patterns().empty()) return;
  lines_.Feed(bytes, [&](std::string_view line) {
    ConsoleMatcher::Verdict before = matcher_.verdict();
    ConsoleMatcher::Verdict verdict = matcher_.OnLine(line, at);
    if (verdict == before || shutdown_ == nullptr) return;
    if (verdict == ConsoleMatcher::Verdict::kFailSeen) {
      shutdown_->Request(kExitConsoleCheck,
                         absl::StrFormat("the console matched --expect-fail '%s': %s",
                                         matcher_.failed_by()->regex, Quote(line)));
    } else if (verdict == ConsoleMatcher::Verdict::kAllExpectedSeen) {
      shutdown_->Request(kExitOk, absl::StrFormat("every --expect pattern was seen (%d)",
                                                  matcher_.expected().size()));
    }
  });
}

ExitStatus RunMonitor::Finish(const ExitStatus& status) {
  std::lock_guard lock(mutex_);
  duration_ = Elapsed();
  // A last line the guest never ended still counts.
  std::string partial(lines_.partial());
  if (!partial.empty()) {
    if (partial.back() == '\r') partial.pop_back();
    matcher_.OnLine(partial, Elapsed());
  }
  if (status.code != kExitOk) return status;
  if (const ConsoleMatcher::Pattern* failed = matcher_.failed_by()) {
    return ExitStatus{kExitConsoleCheck,
                      absl::StrFormat("the console matched --expect-fail '%s': %s", failed->regex,
                                      Quote(failed->line))};
  }
  std::vector<std::string> missing;
  for (const ConsoleMatcher::Pattern& p : matcher_.expected()) {
    if (!p.seen) missing.push_back(absl::StrCat("'", p.regex, "'"));
  }
  if (!missing.empty()) {
    return ExitStatus{kExitConsoleCheck,
                      absl::StrFormat("%s, but --expect %s never matched", status.reason,
                                      absl::StrJoin(missing, ", "))};
  }
  return status;
}

std::string RunMonitor::ConsoleTail() const {
  std::lock_guard lock(mutex_);
  std::string_view tail = tail_;
  bool cut = tail_truncated_;
  if (tail.size() > kConsoleTailBytes) {
    tail.remove_prefix(tail.size() - kConsoleTailBytes);
    cut = true;
  }
  if (cut) {
    size_t newline = tail.find('\n');
    if (newline != std::string_view::npos) tail.remove_prefix(newline + 1);
  }
  std::string out;
  out.reserve(tail.size());
  std::copy_if(tail.begin(), tail.end(), std::back_inserter(out), [](char c) { return c != '\r'; });
  return out;
}

absl::Status RunMonitor::WriteReport(const ExitStatus& status) {
  if (!junit_) return absl::OkStatus();
  JunitRun run;
  run.run_name = absl::StrCat("boot ", Basename(config_.kernel_path));
  run.timestamp = absl::FormatTime("%Y-%m-%dT%H:%M:%S", wall_start_, absl::UTCTimeZone());
  run.duration_seconds = absl::ToDoubleSeconds(duration_.value_or(Elapsed()));
  run.exit_code = status.code;
  run.exit_reason = status.reason;
  run.properties.push_back({"kernel", config_.kernel_path});
  if (config_.initramfs_path) run.properties.push_back({"initramfs", *config_.initramfs_path});
  run.properties.push_back({"kernel_cmdline", kernel_cmdline_});
  if (config_.ci.timeout) {
    run.properties.push_back({"timeout", absl::FormatDuration(*config_.ci.timeout)});
  }
  run.console_tail = ConsoleTail();
  {
    std::lock_guard lock(mutex_);
    run.expected = ToJunit(matcher_.expected());
    run.fail_patterns = ToJunit(matcher_.fail_patterns());
  }
  return WriteJunitFile(junit_.get(), *config_.ci.junit, run);
}

}  // namespace skiff

// One line per event on stderr (or --log-file):
//   <CLOCK_MONOTONIC seconds.microseconds> <level> <subsystem>: <message>
// e.g. "8812.044310 info boot: first KVM_RUN: 0.004107 s after VMM start".
// Each line is a single write(), so lines from different threads never
// interleave and nothing is buffered if Skiff dies (docs/logging.md).
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "vmm/unique_fd.h"

namespace skiff {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

// Process-wide log settings: the one piece of global state Skiff keeps,
// because every thread logs and threading a logger everywhere buys nothing.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool ParseLogLevel(std::string_view text, LogLevel* level);
const char* LogLevelName(LogLevel level);
// Where lines go from now on; an invalid fd means stderr. Call before
// starting threads: the previous fd is closed.
void SetLogFd(UniqueFd fd);
// Takes ownership of `file` (nullptr means stderr).
void SetLogFile(std::FILE* file);
// Opens `path` for appending (created 0644) and logs there. A path we cannot
// open is the operator's error (InvalidArgument naming --log-file).
absl::Status OpenLogFile(const std::string& path);
void LogLine(LogLevel level, std::string_view subsystem, std::string_view message);
// The line LogLine writes for an event at `seconds` (CLOCK_MONOTONIC);
// control characters in the message become spaces so it stays one line.
std::string FormatLogLine(double seconds, LogLevel level, std::string_view subsystem,
                          std::string_view message);
// CLOCK_MONOTONIC in seconds, the clock of the log lines.
double MonotonicSeconds();
// When the process started (its static initialization), on that clock.
double ProcessStartSeconds();
// Seconds since the process started.
double SecondsSinceStart();

#define SKIFF_LOG(level, subsystem, ...)                                  \
  do {                                                                    \
    if (static_cast<int>(level) <= static_cast<int>(::skiff::GetLogLevel())) \
      ::skiff::LogLine(level, subsystem, ::absl::StrFormat(__VA_ARGS__)); \
  } while (0)
#define LOG_ERROR(subsystem, ...) SKIFF_LOG(::skiff::LogLevel::kError, subsystem, __VA_ARGS__)
#define LOG_WARN(subsystem, ...) SKIFF_LOG(::skiff::LogLevel::kWarn, subsystem, __VA_ARGS__)
#define LOG_INFO(subsystem, ...) SKIFF_LOG(::skiff::LogLevel::kInfo, subsystem, __VA_ARGS__)
#define LOG_DEBUG(subsystem, ...) SKIFF_LOG(::skiff::LogLevel::kDebug, subsystem, __VA_ARGS__)

}  // namespace skiff

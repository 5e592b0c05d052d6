// One line per event on stderr (or a file): monotonic time, level, subsystem.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

#include "absl/strings/str_format.h"

namespace skiff {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

// Process-wide log settings: the one piece of global state Skiff keeps,
// because every thread logs and threading a logger everywhere buys nothing.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool ParseLogLevel(std::string_view text, LogLevel* level);
// Takes ownership of `file` (nullptr means stderr).
void SetLogFile(std::FILE* file);
void LogLine(LogLevel level, std::string_view subsystem, std::string_view message);
// Seconds since the process started (CLOCK_MONOTONIC), as logged.
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

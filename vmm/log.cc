#include "vmm/log.h"

#include <time.h>

#include <atomic>
#include <mutex>

namespace skiff {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kWarn)};
std::mutex g_mutex;
std::FILE* g_file = nullptr;  // guarded by g_mutex; nullptr = stderr

double MonotonicSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}
const double g_start = MonotonicSeconds();

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "error";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kInfo: return "info";
    case LogLevel::kDebug: return "debug";
  }
  return "?";
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  for (LogLevel l : {LogLevel::kError, LogLevel::kWarn, LogLevel::kInfo,
                     LogLevel::kDebug}) {
    if (text == LevelName(l)) {
      *level = l;
      return true;
    }
  }
  return false;
}

void SetLogFile(std::FILE* file) {
  std::lock_guard lock(g_mutex);
  if (g_file != nullptr) std::fclose(g_file);
  g_file = file;
}

double SecondsSinceStart() { return MonotonicSeconds() - g_start; }

void LogLine(LogLevel level, std::string_view subsystem,
             std::string_view message) {
  std::string line = absl::StrFormat("[%10.6f] skiff %s %s: %s\n",
                                     SecondsSinceStart(), LevelName(level),
                                     subsystem, message);
  std::lock_guard lock(g_mutex);
  std::FILE* out = g_file != nullptr ? g_file : stderr;
  std::fwrite(line.data(), 1, line.size(), out);
  std::fflush(out);
}

}  // namespace skiff

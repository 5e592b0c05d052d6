#include "vmm/log.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>

namespace skiff {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kWarn)};
// The log's fd; -1 means stderr. No lock: each line is one write(), which
// the kernel keeps whole (O_APPEND files, pipes up to PIPE_BUF, and a file
// description's position is locked per write).
std::atomic<int> g_fd{-1};
const double g_start = MonotonicSeconds();

}  // namespace

double MonotonicSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double ProcessStartSeconds() { return g_start; }
double SecondsSinceStart() { return MonotonicSeconds() - g_start; }

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kDebug:
      return "debug";
  }
  return "?";
}

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  for (LogLevel l : {LogLevel::kError, LogLevel::kWarn, LogLevel::kInfo, LogLevel::kDebug}) {
    if (text == LogLevelName(l)) {
      *level = l;
      return true;
    }
  }
  return false;
}

void SetLogFd(UniqueFd fd) {
  const int old = g_fd.exchange(fd.valid() ? fd.Release() : -1);
  if (old >= 0) ::close(old);
}

void SetLogFile(std::FILE* file) {
  if (file == nullptr) {
    SetLogFd(UniqueFd());
    return;
  }
  SetLogFd(UniqueFd(::fcntl(::fileno(file), F_DUPFD_CLOEXEC, 0)));
  std::fclose(file);
}

absl::Status OpenLogFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!fd) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--log-file %s: %s", path, std::strerror(errno)));
  }
  SetLogFd(std::move(fd));
  return absl::OkStatus();
}

std::string FormatLogLine(double seconds, LogLevel level, std::string_view subsystem,
                          std::string_view message) {
  // Whole microseconds, rounded down, so a line never claims a later time.
  const double whole = std::floor(seconds);
  const long long micros = static_cast<long long>((seconds - whole) * 1e6);
  std::string line = absl::StrFormat("%d.%06d %s %s: %s\n", static_cast<long long>(whole), micros,
                                     LogLevelName(level), subsystem, message);
  for (size_t i = 0; i + 1 < line.size(); ++i) {
    if (static_cast<unsigned char>(line[i]) < 0x20) line[i] = ' ';
  }
  return line;
}

void LogLine(LogLevel level, std::string_view subsystem, std::string_view message) {
  const std::string line = FormatLogLine(MonotonicSeconds(), level, subsystem, message);
  const int fd = g_fd.load();
  const int out = fd >= 0 ? fd : STDERR_FILENO;
  ssize_t n;
  do {
    n = ::write(out, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
}

}  // namespace skiff

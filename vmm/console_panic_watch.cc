#include "vmm/console_panic_watch.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "vmm/exit_codes.h"

namespace skiff {
namespace {

constexpr std::string_view kPanicMessage = "Kernel panic - not syncing";

// Drops a leading printk timestamp "[ 1234.567890] ".
std::string_view WithoutTimestamp(std::string_view line) {
  if (line.empty() || line[0] != '[') return line;
  const size_t close = line.find(']');
  if (close == std::string_view::npos) return line;
  for (size_t i = 1; i < close; ++i) {
    const char c = line[i];
    if (c != ' ' && c != '.' && (c < '0' || c > '9')) return line;
  }
  line.remove_prefix(close + 1);
  if (!line.empty() && line[0] == ' ') line.remove_prefix(1);
  return line;
}

}  // namespace

bool ConsolePanicWatch::IsPanicLine(std::string_view line) {
  return WithoutTimestamp(line).substr(0, kPanicMessage.size()) == kPanicMessage;
}

void ConsolePanicWatch::OnOutput(std::span<const uint8_t> bytes) {
  if (fired_) return;
  lines_.Feed(bytes, [this](std::string_view line) {
    if (fired_ || !IsPanicLine(line)) return;
    fired_ = true;
    shutdown_->Request(kExitGuestPanic,
                       absl::StrCat("guest kernel panic (console: \"",
                                    std::string(line.substr(0, 200)), "\")"));
  });
}

}  // namespace skiff

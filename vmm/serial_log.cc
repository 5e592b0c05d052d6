#include "vmm/serial_log.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/log.h"
#include "vmm/output_file.h"

namespace skiff {

absl::StatusOr<SerialLog> SerialLog::Open(const std::string& path, bool timestamps) {
  absl::StatusOr<UniqueFd> fd = CreateOutputFile("--serial-log", path);
  if (!fd.ok()) return fd.status();
  return SerialLog(*std::move(fd), path, timestamps);
}

std::string SerialLogTimestamp(absl::Duration at) {
  return absl::StrFormat("[%11.6f] ", absl::ToDoubleSeconds(at));
}

void SerialLog::Write(std::span<const uint8_t> bytes, absl::Duration at) {
  if (failed_ || bytes.empty()) return;
  bool ok;
  if (!timestamps_) {
    ok = WriteAll(fd_.get(), bytes);
  } else {
    std::string out;
    out.reserve(bytes.size() + 16);
    const std::string stamp = SerialLogTimestamp(at);
    for (uint8_t b : bytes) {
      if (at_line_start_) out += stamp;
      out.push_back(static_cast<char>(b));
      at_line_start_ = b == '\n';
    }
    ok = WriteAll(fd_.get(), std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(out.data()),
                                                      out.size()));
  }
  if (!ok) {
    failed_ = true;
    LOG_WARN("console", "--serial-log %s: write failed (%s); the log stops here", path_,
             std::strerror(errno));
  }
}

}  // namespace skiff

// --serial-log FILE: every byte of guest console output, written as it
// arrives (no user-space buffering), so the file holds everything up to
// the moment Skiff stopped, however it stopped. With timestamps each line
// starts with "[   12.345678] ": seconds since the run began, taken when
// the line's first byte arrived.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "vmm/unique_fd.h"

namespace skiff {

class SerialLog {
 public:
  // Creates or truncates `path` (see CreateOutputFile).
  static absl::StatusOr<SerialLog> Open(const std::string& path, bool timestamps);
  SerialLog(UniqueFd fd, std::string path, bool timestamps)
      : fd_(std::move(fd)), path_(std::move(path)), timestamps_(timestamps) {}

  // Appends guest output that arrived `at` since the run began. Callers
  // serialize. A failing write (full disk) is reported once and then the
  // log stops; the guest keeps running.
  void Write(std::span<const uint8_t> bytes, absl::Duration at);

 private:
  UniqueFd fd_;
  std::string path_;
  bool timestamps_;
  bool at_line_start_ = true;
  bool failed_ = false;
};

// "[   12.345678] ": the prefix of a timestamped line.
std::string SerialLogTimestamp(absl::Duration at);

}  // namespace skiff

// A file Skiff writes for the operator (--serial-log, --junit): created or
// truncated at start-up, so a typo in the path fails before any KVM set-up.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "vmm/unique_fd.h"

namespace skiff {

// Creates or truncates `path` (mode 0644). A missing directory or a place
// we may not write is the operator's error (InvalidArgument), named after
// `option`.
absl::StatusOr<UniqueFd> CreateOutputFile(std::string_view option, const std::string& path);

// Writes all of `bytes`, retrying short writes and EINTR; false on error.
bool WriteAll(int fd, std::span<const uint8_t> bytes);

}  // namespace skiff

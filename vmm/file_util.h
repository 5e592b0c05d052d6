// Reading operator-supplied files with errors that name them.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "vmm/guest_memory.h"
#include "vmm/mapping.h"

namespace skiff {

// Maps a whole non-empty regular file read-only: parsing a kernel image in
// place saves a copy of it (and the page faults of a fresh buffer).
absl::StatusOr<Mapping> MapWholeFile(const std::string& path,
                                     const std::string& what);
// The size of a regular file, or an error naming it.
absl::StatusOr<uint64_t> RegularFileSize(const std::string& path,
                                         const std::string& what);
// Reads a whole regular file straight into guest memory at `gpa`.
absl::Status ReadFileIntoGuest(const std::string& path, const std::string& what,
                               const GuestMemory& memory, uint64_t gpa,
                               uint64_t expected_size);

}  // namespace skiff

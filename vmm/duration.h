// Durations on the command line: "30s", "2m", "500ms", "1h30m", "1.5s"; a
// bare number is seconds, as timeout(1) reads it.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace skiff {

// Positive and finite, at most kMaxDuration; anything else is an error
// whose message quotes the text.
absl::StatusOr<absl::Duration> ParseDuration(std::string_view text);

// Far beyond any CI job, and small enough for any clock arithmetic.
inline constexpr absl::Duration kMaxDuration = absl::Hours(24 * 365);

}  // namespace skiff

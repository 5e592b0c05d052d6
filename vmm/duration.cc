#include "vmm/duration.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace skiff {

absl::StatusOr<absl::Duration> ParseDuration(std::string_view text) {
  std::string trimmed(absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size())));
  absl::Duration duration;
  double seconds;
  bool parsed;
  if (!trimmed.empty() && (absl::ascii_isdigit(trimmed.back()) || trimmed.back() == '.')) {
    // A bare number: seconds. SimpleAtod also takes "inf", "nan" and
    // exponents; only plain decimals are meant here.
    parsed = trimmed.find_first_not_of("0123456789.") == std::string::npos &&
             absl::SimpleAtod(trimmed, &seconds);
    if (parsed) duration = absl::Seconds(seconds);
  } else {
    parsed = absl::ParseDuration(trimmed, &duration);
  }
  if (!parsed || duration == absl::InfiniteDuration() || duration == -absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("'%s' is not a duration (use e.g. 30s, 2m, 500ms or 1h30m)", text));
  }
  if (duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrFormat("duration '%s' is not positive", text));
  }
  if (duration > kMaxDuration) {
    return absl::InvalidArgumentError(absl::StrFormat("duration '%s' is longer than a year", text));
  }
  return duration;
}

}  // namespace skiff

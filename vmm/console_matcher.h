// --expect / --expect-fail: regular expressions watched for on the guest
// console, one line at a time. The run succeeds once every expected
// pattern was seen and fails at once on any fail pattern.
//
// RE2, not std::regex: the text comes from the guest, which is hostile, and
// RE2 matches in time linear in the line with bounded memory, where
// libstdc++'s backtracking std::regex can take exponential time or overflow
// the stack on a long line (and so hang or crash the VMM). RE2 syntax is
// the familiar Perl-like one without backreferences.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace re2 {
class RE2;
}

namespace skiff {

// Checks that `pattern` compiles; the error names `option` (e.g.
// "--expect") and quotes the pattern.
absl::Status ValidateConsolePattern(std::string_view option, const std::string& pattern);

class ConsoleMatcher {
 public:
  struct Pattern {
    std::string regex;
    bool seen = false;
    std::string line;        // the first line it matched
    absl::Duration seen_at;  // when, as given to OnLine
  };
  enum class Verdict { kUndecided, kAllExpectedSeen, kFailSeen };

  static absl::StatusOr<ConsoleMatcher> Create(const std::vector<std::string>& expect,
                                               const std::vector<std::string>& expect_fail);
  ConsoleMatcher(ConsoleMatcher&&) noexcept;
  ConsoleMatcher& operator=(ConsoleMatcher&&) noexcept;
  ~ConsoleMatcher();

  // Matches one console line (without its newline), seen `at` since the
  // run began. Once decided, the verdict stays and lines are not matched.
  // A line matching a fail pattern fails even if it also completes the
  // expected set: a failure report must not be lost.
  Verdict OnLine(std::string_view line, absl::Duration at);

  Verdict verdict() const { return verdict_; }
  bool all_expected_seen() const;
  const std::vector<Pattern>& expected() const { return expected_; }
  const std::vector<Pattern>& fail_patterns() const { return fail_; }
  // The fail pattern that decided the run, if one did.
  const Pattern* failed_by() const;

 private:
  ConsoleMatcher() = default;

  std::vector<Pattern> expected_;
  std::vector<Pattern> fail_;
  std::vector<std::unique_ptr<re2::RE2>> expected_re_;
  std::vector<std::unique_ptr<re2::RE2>> fail_re_;
  size_t expected_left_ = 0;
  std::optional<size_t> failed_by_;
  Verdict verdict_ = Verdict::kUndecided;
};

}  // namespace skiff

#include "vmm/console_matcher.h"

#include "absl/strings/str_format.h"
#include "re2/re2.h"

namespace skiff {
namespace {

absl::StatusOr<std::unique_ptr<re2::RE2>> Compile(std::string_view option,
                                                  const std::string& pattern) {
  if (pattern.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s '': an empty pattern matches every line", option));
  }
  re2::RE2::Options options;
  options.set_log_errors(false);  // the error becomes our one-line message
  auto re = std::make_unique<re2::RE2>(pattern, options);
  if (!re->ok()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s '%s': not a valid regular expression (RE2 syntax): %s", option, pattern, re->error()));
  }
  return re;
}

}  // namespace

absl::Status ValidateConsolePattern(std::string_view option, const std::string& pattern) {
  return Compile(option, pattern).status();
}

absl::StatusOr<ConsoleMatcher> ConsoleMatcher::Create(const std::vector<std::string>& expect,
                                                      const std::vector<std::string>& expect_fail) {
  ConsoleMatcher matcher;
  for (const std::string& pattern : expect) {
    auto re = Compile("--expect", pattern);
    if (!re.ok()) return re.status();
    matcher.expected_re_.push_back(*std::move(re));
    matcher.expected_.push_back(Pattern{pattern});
  }
  for (const std::string& pattern : expect_fail) {
    auto re = Compile("--expect-fail", pattern);
    if (!re.ok()) return re.status();
    matcher.fail_re_.push_back(*std::move(re));
    matcher.fail_.push_back(Pattern{pattern});
  }
  matcher.expected_left_ = matcher.expected_.size();
  return matcher;
}

ConsoleMatcher::ConsoleMatcher(ConsoleMatcher&&) noexcept = default;
ConsoleMatcher& ConsoleMatcher::operator=(ConsoleMatcher&&) noexcept = default;
ConsoleMatcher::~ConsoleMatcher() = default;

ConsoleMatcher::Verdict ConsoleMatcher::OnLine(std::string_view line, absl::Duration at) {
  if (verdict_ != Verdict::kUndecided) return verdict_;
  const re2::StringPiece text(line.data(), line.size());
  for (size_t i = 0; i < fail_.size(); ++i) {
    if (re2::RE2::PartialMatch(text, *fail_re_[i])) {
      fail_[i].seen = true;
      fail_[i].line = std::string(line);
      fail_[i].seen_at = at;
      failed_by_ = i;
      verdict_ = Verdict::kFailSeen;
      return verdict_;
    }
  }
  for (size_t i = 0; i < expected_.size(); ++i) {
    if (expected_[i].seen || !re2::RE2::PartialMatch(text, *expected_re_[i])) continue;
    expected_[i].seen = true;
    expected_[i].line = std::string(line);
    expected_[i].seen_at = at;
    --expected_left_;
  }
  if (!expected_.empty() && expected_left_ == 0) verdict_ = Verdict::kAllExpectedSeen;
  return verdict_;
}

bool ConsoleMatcher::all_expected_seen() const { return expected_left_ == 0; }

const ConsoleMatcher::Pattern* ConsoleMatcher::failed_by() const {
  return failed_by_ ? &fail_[*failed_by_] : nullptr;
}

}  // namespace skiff

// --junit FILE: a JUnit XML report of one run, in the shape CI systems
// (GitLab, Jenkins, GitHub test reporters) read: <testsuites> holding one
// <testsuite> with a test case for the run itself (failing unless Skiff
// exits 0), one per --expect pattern (failing unless seen) and one per
// --expect-fail pattern (failing if seen). The console tail goes in the run
// case's <system-out>. Pure: the caller supplies every fact, times
// included, so the output is testable byte for byte.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace skiff {

struct JunitPattern {
  std::string regex;
  bool seen = false;
  std::string line;  // the first matching line, if seen
  double seen_at_seconds = 0;
};

struct JunitRun {
  std::string suite_name = "skiff";
  std::string run_name = "run";  // the run's test case
  std::string timestamp;         // start, "YYYY-MM-DDTHH:MM:SS" (UTC)
  double duration_seconds = 0;
  int exit_code = 0;
  std::string exit_reason;
  std::vector<std::pair<std::string, std::string>> properties;  // kernel, cmdline...
  std::vector<JunitPattern> expected;
  std::vector<JunitPattern> fail_patterns;
  std::string console_tail;  // raw guest bytes; made valid XML here
};

std::string JunitXml(const JunitRun& run);

// `text` (any bytes) as XML 1.0 attribute content: markup characters,
// tab, CR and LF escaped, invalid UTF-8 replaced by U+FFFD, and characters
// XML forbids even as references (most C0 controls, e.g. the ESC of a
// colour sequence) written visibly as \xNN.
std::string XmlEscape(std::string_view text);
// The same for character data, where tabs and line feeds stay as they are.
std::string XmlEscapeText(std::string_view text);

// Writes the report to `fd` from its start, replacing what was there.
absl::Status WriteJunitFile(int fd, const std::string& path, const JunitRun& run);

}  // namespace skiff

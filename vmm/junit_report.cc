#include "vmm/junit_report.h"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "vmm/exit_codes.h"
#include "vmm/output_file.h"

namespace skiff {
namespace {

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

constexpr uint32_t kReplacement = 0xfffd;

// Decodes one UTF-8 sequence at text[*i]; advances *i. A malformed,
// overlong or surrogate sequence yields kReplacement and consumes one byte.
uint32_t DecodeUtf8(std::string_view text, size_t* i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t lead = byte(*i);
  if (lead < 0x80) {
    ++*i;
    return lead;
  }
  size_t length;
  uint32_t cp, min;
  if ((lead & 0xe0) == 0xc0) {
    length = 2, cp = lead & 0x1f, min = 0x80;
  } else if ((lead & 0xf0) == 0xe0) {
    length = 3, cp = lead & 0x0f, min = 0x800;
  } else if ((lead & 0xf8) == 0xf0) {
    length = 4, cp = lead & 0x07, min = 0x10000;
  } else {
    ++*i;
    return kReplacement;
  }
  if (text.size() - *i < length) {
    ++*i;
    return kReplacement;
  }
  for (size_t k = 1; k < length; ++k) {
    if ((byte(*i + k) & 0xc0) != 0x80) {
      ++*i;
      return kReplacement;
    }
    cp = (cp << 6) | (byte(*i + k) & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    ++*i;
    return kReplacement;
  }
  *i += length;
  return cp;
}

// XML 1.0's Char production, less what we escape by reference anyway.
bool XmlAllows(uint32_t cp) {
  return cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
         (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

std::string Seconds(double seconds) { return absl::StrFormat("%.3f", seconds); }

void AppendPatternCase(std::string& out, const char* kind, const JunitPattern& p,
                       bool fails_when_seen, double run_seconds) {
  const bool failed = p.seen == fails_when_seen;
  absl::StrAppend(&out, "    <testcase classname=\"skiff.", kind, "\" name=\"", XmlEscape(p.regex),
                  "\" time=\"", Seconds(p.seen ? p.seen_at_seconds : run_seconds), "\"");
  if (!failed) {
    absl::StrAppend(&out, "/>\n");
    return;
  }
  std::string message = p.seen ? absl::StrCat("seen on the console: ", p.line)
                               : std::string("not seen on the console");
  absl::StrAppend(&out, ">\n      <failure type=\"", kind, "\" message=\"", XmlEscape(message),
                  "\">", XmlEscapeText(message), "</failure>\n", "    </testcase>\n");
}

}  // namespace

namespace {

std::string Escape(std::string_view text, bool attribute) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const uint32_t cp = DecodeUtf8(text, &i);
    switch (cp) {
      case '&':
        out += "&amp;";
        continue;
      case '<':
        out += "&lt;";
        continue;
      case '>':
        out += "&gt;";
        continue;
      case '"':
        out += "&quot;";
        continue;
      case '\'':
        out += "&apos;";
        continue;
      // References keep these exact in attributes (which parsers would
      // turn into spaces) and CR through parsers' line-end normalization.
      case '\t':
        out += attribute ? "&#9;" : "\t";
        continue;
      case '\n':
        out += attribute ? "&#10;" : "\n";
        continue;
      case '\r':
        out += "&#13;";
        continue;
      default:
        break;
    }
    if (XmlAllows(cp)) {
      AppendUtf8(out, cp);  // malformed bytes arrive here as U+FFFD
    } else if (cp < 0x100) {
      absl::StrAppendFormat(&out, "\\x%02x", cp);
    } else {
      absl::StrAppendFormat(&out, "\\u%04x", cp);  // U+FFFE, U+FFFF
    }
  }
  return out;
}

}  // namespace

std::string XmlEscape(std::string_view text) { return Escape(text, /*attribute=*/true); }
std::string XmlEscapeText(std::string_view text) { return Escape(text, /*attribute=*/false); }

std::string JunitXml(const JunitRun& run) {
  int failures = 0;
  int errors = 0;
  const bool run_failed = run.exit_code != kExitOk;
  // Skiff's own failures are errors of the harness, not of the guest.
  const bool run_error = run.exit_code == kExitVmmError || run.exit_code == kExitUsage;
  if (run_failed) ++(run_error ? errors : failures);
  for (const JunitPattern& p : run.expected) failures += p.seen ? 0 : 1;
  for (const JunitPattern& p : run.fail_patterns) failures += p.seen ? 1 : 0;
  const size_t tests = 1 + run.expected.size() + run.fail_patterns.size();
  const std::string time = Seconds(run.duration_seconds);
  const std::string counts =
      absl::StrFormat("tests=\"%d\" failures=\"%d\" errors=\"%d\" skipped=\"0\" time=\"%s\"", tests,
                      failures, errors, time);

  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  absl::StrAppend(&out, "<testsuites name=\"", XmlEscape(run.suite_name), "\" ", counts, ">\n");
  absl::StrAppend(&out, "  <testsuite name=\"", XmlEscape(run.suite_name), "\" ", counts);
  if (!run.timestamp.empty()) {
    absl::StrAppend(&out, " timestamp=\"", XmlEscape(run.timestamp), "\"");
  }
  absl::StrAppend(&out, ">\n    <properties>\n");
  std::vector<std::pair<std::string, std::string>> properties = {
      {"exit_code", absl::StrCat(run.exit_code)}, {"exit_reason", run.exit_reason}};
  properties.insert(properties.end(), run.properties.begin(), run.properties.end());
  for (const auto& [name, value] : properties) {
    absl::StrAppend(&out, "      <property name=\"", XmlEscape(name), "\" value=\"",
                    XmlEscape(value), "\"/>\n");
  }
  absl::StrAppend(&out, "    </properties>\n");

  absl::StrAppend(&out, "    <testcase classname=\"skiff\" name=\"", XmlEscape(run.run_name),
                  "\" time=\"", time, "\">\n");
  if (run_failed) {
    const char* element = run_error ? "error" : "failure";
    const std::string message = absl::StrFormat("exit code %d: %s", run.exit_code, run.exit_reason);
    absl::StrAppend(&out, "      <", element, " type=\"exit code ", run.exit_code, "\" message=\"",
                    XmlEscape(message), "\">", XmlEscapeText(message), "</", element, ">\n");
  }
  absl::StrAppend(&out, "      <system-out>", XmlEscapeText(run.console_tail), "</system-out>\n",
                  "    </testcase>\n");
  for (const JunitPattern& p : run.expected) {
    AppendPatternCase(out, "expect", p, /*fails_when_seen=*/false, run.duration_seconds);
  }
  for (const JunitPattern& p : run.fail_patterns) {
    AppendPatternCase(out, "expect-fail", p, /*fails_when_seen=*/true, run.duration_seconds);
  }
  absl::StrAppend(&out, "  </testsuite>\n</testsuites>\n");
  return out;
}

absl::Status WriteJunitFile(int fd, const std::string& path, const JunitRun& run) {
  const std::string xml = JunitXml(run);
  if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0 ||
      !WriteAll(
          fd, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(xml.data()), xml.size()))) {
    return absl::InternalError(
        absl::StrFormat("--junit %s: write failed (%s)", path, std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace skiff
